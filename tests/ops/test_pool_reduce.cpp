#include "gcl/ops/finite.hpp"
#include "gcl/ops/pooling.hpp"
#include "gcl/ops/reduce.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

#include <limits>

using namespace gcl_test;
namespace ops = gcl::ops;
using gcl::ConstView;
using gcl::TensorView;

// ---------------------------------------------------------------------------------------------
// Max pooling and global average pooling

namespace {

struct PoolCase {
    Shape x;
    gcl::Pool2dParams params;
};

const PoolCase pool_cases[] = {
    {{2, 3, 8, 6}, {}},                                                          // 2x2, stride 2
    {{1, 2, 7, 5}, {}},                                                          // odd sizes: last row/column dropped
    {{2, 2, 9, 8}, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}},     // padded
    {{1, 1, 5, 5}, {.kernel = {3, 3}, .stride = {1, 1}}},                        // overlapping windows
    {{2, 1, 6, 7}, {.kernel = {2, 3}, .stride = {1, 2}, .padding = {1, 1}}},
    {{4, 8, 16, 16}, {}},                                                        // enough work for threads
};

struct PoolReference {
    Tensor<double> y, dx;
    Tensor<index_t> indices;
};

// Window maxima by definition (first maximum in row-major order), and the gradient for dy.
PoolReference naive_max_pool(const Tensor<double>& x, const gcl::Pool2dParams& p, const Tensor<double>& dy) {
    const index_t H = x.dim(2), W = x.dim(3);
    const index_t OH = (H + 2 * p.padding[0] - p.kernel[0]) / p.stride[0] + 1;
    const index_t OW = (W + 2 * p.padding[1] - p.kernel[1]) / p.stride[1] + 1;
    const Shape ys{x.dim(0), x.dim(1), OH, OW};
    PoolReference r{Tensor<double>(ys), Tensor<double>(x.shape()), Tensor<index_t>(ys)};
    for (index_t n = 0; n < x.dim(0); ++n)
        for (index_t c = 0; c < x.dim(1); ++c)
            for (index_t i = 0; i < OH; ++i)
                for (index_t j = 0; j < OW; ++j) {
                    double best = -std::numeric_limits<double>::infinity();
                    index_t arg = -1;
                    for (index_t a = 0; a < p.kernel[0]; ++a)
                        for (index_t b = 0; b < p.kernel[1]; ++b) {
                            const index_t h = i * p.stride[0] - p.padding[0] + a;
                            const index_t w = j * p.stride[1] - p.padding[1] + b;
                            if (h < 0 || h >= H || w < 0 || w >= W) continue;
                            if (arg < 0 || x(n, c, h, w) > best) {
                                best = x(n, c, h, w);
                                arg = h * W + w;
                            }
                        }
                    r.y(n, c, i, j) = best;
                    r.indices(n, c, i, j) = arg;
                    if (dy.numel() == r.y.numel()) r.dx(n, c, arg / W, arg % W) += dy(n, c, i, j);
                }
    return r;
}

}  // namespace

TEMPLATE_TEST_CASE("max pooling matches the definition, with PyTorch's indices", "[ops][pooling]", float, double) {
    using T = TestType;
    gcl::Rng rng(401);
    int index = 0;
    for (const auto& c : pool_cases) {
        DYNAMIC_SECTION("case " << index++ << ": x " << c.x) {
            const Shape ys = ops::max_pool2d_output_shape(c.x, c.params);
            const auto x = random<T>(c.x, rng);
            const auto dy = random<T>(ys, rng);
            const auto ref = naive_max_pool(cast<double>(x), c.params, cast<double>(dy));
            REQUIRE(ys == ref.y.shape());
            Tensor<T> y(ys), dx(c.x, T(5));
            Tensor<index_t> indices(ys);
            ops::max_pool2d_forward(x, y.view(), indices.view(), c.params);
            require_close(y, ref.y);
            require_equal(indices, ref.indices);
            ops::max_pool2d_backward(dy, indices, dx.view(), c.params);
            require_close(dx, ref.dx);
        }
    }
}

TEMPLATE_TEST_CASE("max pooling breaks ties towards the first element and propagates NaN", "[ops][pooling]", float,
                   double) {
    using T = TestType;
    const Tensor<T> flat(Shape{1, 1, 4, 4}, T(2));
    Tensor<T> y(Shape{1, 1, 2, 2});
    Tensor<index_t> indices(Shape{1, 1, 2, 2});
    ops::max_pool2d_forward(flat, y.view(), indices.view());
    CHECK(indices(0, 0, 0, 0) == 0);
    CHECK(indices(0, 0, 0, 1) == 2);
    CHECK(indices(0, 0, 1, 0) == 8);
    CHECK(indices(0, 0, 1, 1) == 10);

    auto x = flat;
    x(0, 0, 1, 1) = std::numeric_limits<T>::quiet_NaN();
    x(0, 0, 0, 0) = T(9);
    ops::max_pool2d_forward(x, y.view(), indices.view());
    CHECK(std::isnan(y(0, 0, 0, 0)));
    CHECK(indices(0, 0, 0, 0) == 5);

    // A window of -infinity still points at a real element.
    const Tensor<T> ninf(Shape{1, 1, 2, 2}, -std::numeric_limits<T>::infinity());
    Tensor<T> y1(Shape{1, 1, 1, 1});
    Tensor<index_t> i1(Shape{1, 1, 1, 1});
    ops::max_pool2d_forward(ninf, y1.view(), i1.view());
    CHECK(i1(0, 0, 0, 0) == 0);
}

TEST_CASE("max pooling gradient passes the finite-difference check", "[ops][pooling][gradcheck]") {
    gcl::Rng rng(402);
    for (int i : {0, 2, 3, 4}) {
        const auto& c = pool_cases[i];
        DYNAMIC_SECTION("case " << i) {
            auto x = random<double>(c.x, rng);
            const Shape ys = ops::max_pool2d_output_shape(c.x, c.params);
            Tensor<double> y(ys);
            Tensor<index_t> indices(ys);
            require_gradient(x, ys, [&](TensorView<double> out) {
                ops::max_pool2d_forward(x, out, indices.view(), c.params);
            }, [&](ConstView<double> dy, TensorView<double> dx) {
                ops::max_pool2d_forward(x, y.view(), indices.view(), c.params);
                ops::max_pool2d_backward(dy, indices, dx, c.params);
            }, rng);
        }
    }
}

TEMPLATE_TEST_CASE("global average pooling matches the definition", "[ops][pooling]", float, double) {
    using T = TestType;
    gcl::Rng rng(403);
    const auto x = random<T>(Shape{3, 4, 5, 7}, rng);
    Tensor<double> expected(Shape{3, 4});
    for (index_t n = 0; n < 3; ++n)
        for (index_t c = 0; c < 4; ++c) {
            for (index_t h = 0; h < 5; ++h)
                for (index_t w = 0; w < 7; ++w) expected(n, c) += static_cast<double>(x(n, c, h, w));
            expected(n, c) /= 35;
        }
    Tensor<T> y(Shape{3, 4}), y4(Shape{3, 4, 1, 1});
    ops::global_avg_pool2d_forward(x, y.view());
    ops::global_avg_pool2d_forward(x, y4.view());
    require_close(y, expected);
    y4.reshape(Shape{3, 4});
    require_close(y4, expected);

    const auto dy = random<T>(Shape{3, 4}, rng);
    Tensor<T> dx(x.shape());
    ops::global_avg_pool2d_backward(dy, dx.view());
    Tensor<double> edx(x.shape());
    for (index_t i = 0; i < edx.numel(); ++i) edx.data()[i] = static_cast<double>(dy.data()[i / 35]) / 35;
    require_close(dx, edx);
}

TEST_CASE("global average pooling gradient passes the finite-difference check", "[ops][pooling][gradcheck]") {
    gcl::Rng rng(404);
    auto x = random<double>(Shape{2, 3, 4, 5}, rng);
    require_gradient(x, Shape{2, 3}, [&](TensorView<double> y) { ops::global_avg_pool2d_forward(x, y); },
                     [&](ConstView<double> dy, TensorView<double> dx) { ops::global_avg_pool2d_backward(dy, dx); }, rng);
}

TEST_CASE("pooling rejects bad shapes, parameters and indices naming them", "[ops][pooling][errors]") {
    Tensor<float> x(Shape{2, 3, 8, 8}), y(Shape{2, 3, 4, 5});
    Tensor<index_t> indices(Shape{2, 3, 4, 4});
    require_error([&] { ops::max_pool2d_forward(x, y.view(), indices.view()); },
                  {"ops::max_pool2d_forward", "[2, 3, 4, 5]", "[2, 3, 8, 8]", "[2, 3, 4, 4]"});
    Tensor<float> y_ok(Shape{2, 3, 4, 4});
    Tensor<index_t> bad_indices(Shape{2, 3, 4});
    require_error([&] { ops::max_pool2d_forward(x, y_ok.view(), bad_indices.view()); },
                  {"ops::max_pool2d_forward", "[2, 3, 4]", "[2, 3, 4, 4]"});
    require_error([] { (void)ops::max_pool2d_output_shape({1, 1, 4, 4}, {.kernel = {2, 2}, .padding = {2, 2}}); },
                  {"padding", "2x2"});
    require_error([] { (void)ops::max_pool2d_output_shape({1, 1, 1, 4}, {}); }, {"[1, 1, 1, 4]", "2x2"});
    require_error([] { (void)ops::max_pool2d_output_shape({1, 4, 4}, {}); }, {"[1, 4, 4]"});
    Tensor<float> dx_bad(Shape{2, 3, 10, 10});
    require_error([&] { ops::max_pool2d_backward(y_ok, indices, dx_bad.view()); },
                  {"ops::max_pool2d_backward", "[2, 3, 4, 4]", "[2, 3, 10, 10]"});
    Tensor<index_t> out_of_range(Shape{2, 3, 4, 4}, 64);
    Tensor<float> dx(Shape{2, 3, 8, 8});
    require_error([&] { ops::max_pool2d_backward(y_ok, out_of_range, dx.view()); },
                  {"ops::max_pool2d_backward", "outside", "8x8"});
    Tensor<float> gy_bad(Shape{2, 4});
    require_error([&] { ops::global_avg_pool2d_forward(x, gy_bad.view()); },
                  {"ops::global_avg_pool2d_forward", "[2, 4]", "[2, 3, 8, 8]"});
    require_error([&] { ops::global_avg_pool2d_backward(gy_bad, dx.view()); },
                  {"ops::global_avg_pool2d_backward", "[2, 4]", "[2, 3, 8, 8]"});
}

// ---------------------------------------------------------------------------------------------
// Reductions

TEMPLATE_TEST_CASE("total reductions match plain loops and do not depend on threads", "[ops][reduce]", float, double) {
    using T = TestType;
    gcl::Rng rng(411);
    for (index_t n : {1, 7, 8192, 100003}) {
        DYNAMIC_SECTION("n = " << n) {
            const auto a = random<T>(Shape{n}, rng);
            const auto b = random<T>(Shape{n}, rng);
            double s = 0, d = 0, m = -std::numeric_limits<double>::infinity();
            for (index_t i = 0; i < n; ++i) {
                s += static_cast<double>(a(i));
                d += static_cast<double>(a(i)) * static_cast<double>(b(i));
                m = std::max(m, static_cast<double>(a(i)));
            }
            CHECK(gcl::testing::close<T>(ops::sum(a), s));
            CHECK(gcl::testing::close<T>(ops::mean(a.view()), s / n));
            CHECK(ops::max(a.cview()) == static_cast<T>(m));
            CHECK(gcl::testing::close<T>(ops::dot(a, b.view()), d));
            // In double, not rounded to T (a float result would be 1e-7 away).
            CHECK(ops::dot_double(a, b.view()) == Approx(d).epsilon(1e-13));
            CHECK(ops::sum(a) == ops::sum(a));  // repeats exactly
        }
    }
    auto with_nan = random<T>(Shape{20000}, rng);
    with_nan(15000) = std::numeric_limits<T>::quiet_NaN();
    CHECK(std::isnan(ops::max(with_nan)));
    CHECK(std::isnan(ops::sum(with_nan)));
    CHECK(ops::sum(Tensor<T>(Shape{0})) == T(0));
}

namespace {

struct DimReference {
    Tensor<double> sum, max;
    Tensor<index_t> argmax;
};

DimReference naive_reduce(const Tensor<double>& x, int d) {
    Shape rs;
    for (int i = 0; i < x.rank(); ++i)
        if (i != d) rs.push_back(x.dim(i));
    DimReference r{Tensor<double>(rs), Tensor<double>(rs), Tensor<index_t>(rs)};
    for (index_t a = 0; a < x.dim(0); ++a)
        for (index_t b = 0; b < x.dim(1); ++b)
            for (index_t c = 0; c < x.dim(2); ++c) {
                const index_t idx[] = {a, b, c};
                index_t ri[2], k = 0;
                for (int i = 0; i < 3; ++i)
                    if (i != d) ri[k++] = idx[i];
                const double v = x(a, b, c);
                r.sum(ri[0], ri[1]) += v;
                if (idx[d] == 0 || v > r.max(ri[0], ri[1])) {
                    r.max(ri[0], ri[1]) = v;
                    r.argmax(ri[0], ri[1]) = idx[d];
                }
            }
    return r;
}

}  // namespace

TEMPLATE_TEST_CASE("reductions along a dimension match plain loops, with either output shape", "[ops][reduce]", float,
                   double) {
    using T = TestType;
    gcl::Rng rng(412);
    const Shape shape{4, 5, 3};
    const auto x = random<T>(shape, rng);
    for (int dim : {0, 1, 2, -1}) {
        for (bool keep : {false, true}) {
            DYNAMIC_SECTION("dim " << dim << (keep ? " kept" : " removed")) {
                const int d = dim < 0 ? dim + 3 : dim;
                const auto ref = naive_reduce(cast<double>(x), d);
                Shape out_shape = shape;
                out_shape[d] = 1;
                if (!keep) out_shape = ops::remove_dim(shape, d);
                Tensor<T> out(out_shape);
                Tensor<index_t> argmax(out_shape);
                auto flat = [&](Tensor<T> t) {
                    t.reshape(ref.sum.shape());
                    return t;
                };
                ops::sum(x, out.view(), dim);
                require_close(flat(out), ref.sum);
                ops::mean(x, out.view(), dim);
                Tensor<double> mean_ref = ref.sum;
                for (index_t i = 0; i < mean_ref.numel(); ++i) mean_ref.data()[i] /= shape[d];
                require_close(flat(out), mean_ref);
                ops::max(x, out.view(), argmax.view(), dim);
                require_close(flat(out), ref.max);
                argmax.reshape(ref.argmax.shape());
                require_equal(argmax, ref.argmax);
                argmax.reshape(out_shape);
                Tensor<T> out2(out_shape);
                ops::max(x, out2.view(), dim);
                require_equal(out2, out);

                // Backward: broadcast and scatter.
                const auto dy = random<T>(out_shape, rng);
                Tensor<T> dx(shape);
                Tensor<double> e_sum(shape), e_max(shape);
                // Row-major index of the output element that (a, b, c) reduces into.
                auto reduced_index = [&](index_t a, index_t b, index_t c) {
                    if (d == 0) return b * 3 + c;
                    if (d == 1) return a * 3 + c;
                    return a * 5 + b;
                };
                for (index_t a = 0; a < 4; ++a)
                    for (index_t b = 0; b < 5; ++b)
                        for (index_t c = 0; c < 3; ++c) {
                            const index_t idx[] = {a, b, c};
                            const index_t r = reduced_index(a, b, c);
                            e_sum(a, b, c) = static_cast<double>(dy.data()[r]);
                            e_max(a, b, c) = argmax.data()[r] == idx[d] ? static_cast<double>(dy.data()[r]) : 0.0;
                        }
                ops::sum_backward(dy, dx.view(), dim);
                require_close(dx, e_sum);
                ops::mean_backward(dy, dx.view(), dim);
                Tensor<double> e_mean = e_sum;
                for (index_t i = 0; i < e_mean.numel(); ++i) e_mean.data()[i] /= shape[d];
                require_close(dx, e_mean);
                ops::max_backward(dy, argmax, dx.view(), dim);
                require_close(dx, e_max);
            }
        }
    }
}

TEST_CASE("reduction gradients pass the finite-difference check", "[ops][reduce][gradcheck]") {
    gcl::Rng rng(413);
    auto x = random<double>(Shape{3, 4, 5}, rng);
    for (int dim : {0, 1, -1}) {
        DYNAMIC_SECTION("dim " << dim) {
            const Shape out_shape = ops::remove_dim(x.shape(), dim < 0 ? dim + 3 : dim);
            Tensor<index_t> argmax(out_shape);
            Tensor<double> scratch(out_shape);
            require_gradient(x, out_shape, [&](TensorView<double> y) { ops::sum(x, y, dim); },
                             [&](ConstView<double> dy, TensorView<double> dx) { ops::sum_backward(dy, dx, dim); }, rng);
            require_gradient(x, out_shape, [&](TensorView<double> y) { ops::mean(x, y, dim); },
                             [&](ConstView<double> dy, TensorView<double> dx) { ops::mean_backward(dy, dx, dim); }, rng);
            require_gradient(x, out_shape, [&](TensorView<double> y) { ops::max(x, y, dim); },
                             [&](ConstView<double> dy, TensorView<double> dx) {
                                 ops::max(x, scratch.view(), argmax.view(), dim);
                                 ops::max_backward(dy, argmax, dx, dim);
                             }, rng);
        }
    }
}

TEST_CASE("reductions reject bad shapes naming them", "[ops][reduce][errors]") {
    Tensor<float> x(Shape{4, 5, 3}), out(Shape{4, 3, 1});
    require_error([&] { ops::sum(x, out.view(), 1); }, {"ops::sum", "[4, 3, 1]", "[4, 5, 3]", "[4, 3]", "[4, 1, 3]"});
    require_error([&] { ops::mean(x, out.view(), 3); }, {"ops::mean", "3", "[4, 5, 3]"});
    Tensor<float> out_ok(Shape{4, 3});
    Tensor<index_t> idx_bad(Shape{4, 5});
    require_error([&] { ops::max(x, out_ok.view(), idx_bad.view(), 1); }, {"ops::max", "[4, 5]", "[4, 3]"});
    require_error([] { (void)ops::mean(Tensor<float>(Shape{2, 0})); }, {"ops::mean", "[2, 0]"});
    require_error([] { (void)ops::max(Tensor<double>(Shape{0})); }, {"ops::max", "[0]"});
    require_error([] { (void)ops::dot(Tensor<float>(Shape{3}), Tensor<float>(Shape{4})); }, {"ops::dot", "[3]", "[4]"});
    Tensor<float> dx(Shape{4, 5, 3});
    require_error([&] { ops::sum_backward(x, dx.view(), 1); }, {"ops::sum_backward", "[4, 5, 3]"});
    Tensor<index_t> idx(Shape{4, 3}, 5);
    require_error([&] { ops::max_backward(out_ok, idx, dx.view(), 1); }, {"ops::max_backward", "outside"});
    Tensor<float> empty_dim(Shape{4, 0, 3}), out_e(Shape{4, 3});
    require_error([&] { ops::max(empty_dim, out_e.view(), 1); }, {"ops::max", "[4, 0, 3]"});
}

// ---------------------------------------------------------------------------------------------
// NaN / infinity checks

TEMPLATE_TEST_CASE("all_finite and check_finite find NaN and infinities", "[ops][finite]", float, double) {
    using T = TestType;
    gcl::Rng rng(421);
    auto x = random<T>(Shape{3, 100, 70}, rng);
    CHECK(ops::all_finite(x));
    CHECK(ops::first_nonfinite(x) == -1);
    CHECK_NOTHROW(ops::check_finite("test", x));
    for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                  -std::numeric_limits<T>::infinity()}) {
        auto y = x;
        y(2, 99, 1) = bad;
        y(2, 99, 5) = bad;
        CHECK_FALSE(ops::all_finite(y.view()));
        CHECK(ops::first_nonfinite(y) == 2 * 7000 + 99 * 70 + 1);
        require_error([&] { ops::check_finite("train::step", y, "the gradient"); },
                      {"gcl::train::step", "the gradient", "[3, 100, 70]", "[2, 99, 1]"});
    }
}
