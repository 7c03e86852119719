#include "gcl/ops/bias.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/gemm.hpp"
#include "gcl/ops/linear.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

#include <limits>

using namespace gcl_test;
namespace ops = gcl::ops;

namespace {

// c = alpha op(a) op(b) + beta c0, by definition.
Tensor<double> naive_gemm(const Tensor<double>& a, bool ta, const Tensor<double>& b, bool tb, const Tensor<double>& c0,
                          double alpha, double beta) {
    const index_t m = c0.dim(0), n = c0.dim(1), k = ta ? a.dim(0) : a.dim(1);
    Tensor<double> c(c0.shape());
    for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) {
            double s = 0;
            for (index_t p = 0; p < k; ++p) s += (ta ? a(p, i) : a(i, p)) * (tb ? b(j, p) : b(p, j));
            c(i, j) = alpha * s + (beta == 0 ? 0 : beta * c0(i, j));
        }
    return c;
}

}  // namespace

TEMPLATE_TEST_CASE("gemm matches the definition for every transpose combination", "[ops][gemm]", float, double) {
    using T = TestType;
    gcl::Rng rng(101);
    const index_t sizes[][3] = {{3, 4, 5}, {1, 7, 2}, {6, 1, 3}, {17, 33, 9}};
    for (const auto& mkn : sizes)
        for (bool ta : {false, true})
            for (bool tb : {false, true}) {
                const index_t m = mkn[0], k = mkn[1], n = mkn[2];
                DYNAMIC_SECTION("m=" << m << " k=" << k << " n=" << n << " ta=" << ta << " tb=" << tb) {
                    const auto a = random<T>(ta ? Shape{k, m} : Shape{m, k}, rng);
                    const auto b = random<T>(tb ? Shape{n, k} : Shape{k, n}, rng);
                    const auto c0 = random<T>(Shape{m, n}, rng);
                    auto c = c0;
                    ops::gemm(a, b, c.view(), {.transpose_a = ta, .transpose_b = tb, .alpha = 1.5, .beta = -0.5});
                    require_close(c, naive_gemm(cast<double>(a), ta, cast<double>(b), tb, cast<double>(c0), 1.5, -0.5));

                    // beta = 0 never reads c, so NaN there does not leak.
                    c.fill(std::numeric_limits<T>::quiet_NaN());
                    ops::gemm(a, b, c.view(), {.transpose_a = ta, .transpose_b = tb});
                    require_close(c, naive_gemm(cast<double>(a), ta, cast<double>(b), tb, cast<double>(c0), 1, 0));
                }
            }
}

TEMPLATE_TEST_CASE("gemm reads row-padded views without copies and handles k = 0", "[ops][gemm]", float, double) {
    using T = TestType;
    gcl::Rng rng(102);
    const auto big_a = random<T>(Shape{4, 9}, rng);
    const auto big_b = random<T>(Shape{8, 5}, rng);
    const auto a = big_a.view().narrow(1, 2, 6);  // 4 x 6 with row stride 9
    const auto b = big_b.view().narrow(0, 1, 6);  // 6 x 5
    Tensor<T> big_c(Shape{4, 7}, T(3));
    auto c = big_c.view().narrow(1, 1, 5);  // 4 x 5 with row stride 7
    ops::gemm(a, b, c, {.beta = 1});
    const auto expected = naive_gemm(cast<double>(Tensor<T>::copy_of(a)), false, cast<double>(Tensor<T>::copy_of(b)),
                                     false, Tensor<double>(Shape{4, 5}, 3.0), 1, 1);
    require_close(Tensor<T>::copy_of(c), expected);
    for (index_t i = 0; i < 4; ++i) {  // columns outside the block are untouched
        CHECK(big_c(i, 0) == T(3));
        CHECK(big_c(i, 6) == T(3));
    }

    // An empty inner dimension: c = beta c.
    Tensor<T> e(Shape{3, 0}), f(Shape{0, 2});
    Tensor<T> g(Shape{3, 2}, T(2));
    ops::gemm(e, f, g.view(), {.beta = 0.5});
    require_close(g, Tensor<double>(Shape{3, 2}, 1.0));
}

TEST_CASE("gemm rejects mismatched shapes, transposed views and overlapping outputs", "[ops][gemm][errors]") {
    Tensor<float> a(Shape{3, 4}), b(Shape{5, 2}), c(Shape{3, 2});
    require_error([&] { ops::gemm(a, b, c.view()); }, {"ops::gemm", "[3, 4]", "[5, 2]"});
    require_error([&] { ops::gemm(a, b, c.view(), {.transpose_b = true}); }, {"ops::gemm", "[3, 4]", "[5, 2]"});
    Tensor<float> b2(Shape{4, 2}), c2(Shape{2, 3});
    require_error([&] { ops::gemm(a, b2, c2.view()); }, {"ops::gemm", "[2, 3]", "[3, 4]", "[4, 2]"});
    Tensor<float> at(Shape{4, 3});
    require_error([&] { ops::gemm(at.view().transpose(0, 1), b2, c.view()); }, {"ops::gemm", "not contiguous"});
    Tensor<float> v(Shape{3});
    require_error([&] { ops::gemm(v, b2, c.view()); }, {"ops::gemm", "[3]"});
    Tensor<float> sq(Shape{4, 4});
    require_error([&] { ops::gemm(sq, sq, sq.view()); }, {"ops::gemm", "overlaps"});
}

namespace {

struct LinearReference {
    Tensor<double> y, dx, dw, db;
};

// y = x w^T + b and its gradients for upstream dy, by definition.
LinearReference naive_linear(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& b,
                             const Tensor<double>& dy) {
    const index_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
    LinearReference r{Tensor<double>(Shape{n, out}), Tensor<double>(x.shape()), Tensor<double>(w.shape()),
                      Tensor<double>(b.shape())};
    for (index_t i = 0; i < n; ++i)
        for (index_t o = 0; o < out; ++o) {
            double s = b(o);
            for (index_t f = 0; f < in; ++f) {
                s += x(i, f) * w(o, f);
                r.dx(i, f) += dy(i, o) * w(o, f);
                r.dw(o, f) += dy(i, o) * x(i, f);
            }
            r.y(i, o) = s;
            r.db(o) += dy(i, o);
        }
    return r;
}

}  // namespace

TEMPLATE_TEST_CASE("linear forward and backward match the definition", "[ops][linear]", float, double) {
    using T = TestType;
    gcl::Rng rng(103);
    const index_t shapes[][3] = {{5, 7, 3}, {1, 1, 1}, {8, 33, 12}};
    for (const auto& s : shapes) {
        DYNAMIC_SECTION("N=" << s[0] << " in=" << s[1] << " out=" << s[2]) {
            const auto x = random<T>(Shape{s[0], s[1]}, rng);
            const auto w = random<T>(Shape{s[2], s[1]}, rng);
            const auto b = random<T>(Shape{s[2]}, rng);
            const auto dy = random<T>(Shape{s[0], s[2]}, rng);
            const auto ref = naive_linear(cast<double>(x), cast<double>(w), cast<double>(b), cast<double>(dy));

            REQUIRE(ops::linear_output_shape(x.shape(), w.shape()) == Shape{s[0], s[2]});
            Tensor<T> y(Shape{s[0], s[2]});
            ops::linear_forward(x, w, b, y.view());
            require_close(y, ref.y);
            ops::linear_forward(x, w, y.view());
            Tensor<double> no_bias = ref.y;
            for (index_t i = 0; i < s[0]; ++i)
                for (index_t o = 0; o < s[2]; ++o) no_bias(i, o) -= static_cast<double>(b(o));
            require_close(y, no_bias);

            Tensor<T> dx(x.shape()), dw(w.shape()), db(b.shape());
            ops::linear_backward_data(dy, w, dx.view());
            ops::linear_backward_weight(dy, x, dw.view());
            ops::linear_backward_bias(dy, db.view());
            require_close(dx, ref.dx);
            require_close(dw, ref.dw);
            require_close(db, ref.db);

            // Accumulation adds to what the gradients hold.
            ops::linear_backward_weight(dy, x, dw.view(), gcl::WriteMode::accumulate);
            ops::linear_backward_bias(dy, db.view(), gcl::WriteMode::accumulate);
            Tensor<double> dw2 = ref.dw, db2 = ref.db;
            for (index_t i = 0; i < dw2.numel(); ++i) dw2.data()[i] *= 2;
            for (index_t i = 0; i < db2.numel(); ++i) db2.data()[i] *= 2;
            require_close(dw, dw2);
            require_close(db, db2);
        }
    }
}

TEST_CASE("linear gradients pass the finite-difference check", "[ops][linear][gradcheck]") {
    gcl::Rng rng(104);
    auto x = random<double>(Shape{4, 6}, rng);
    auto w = random<double>(Shape{3, 6}, rng);
    auto b = random<double>(Shape{3}, rng);
    const Shape ys{4, 3};
    auto forward = [&](gcl::TensorView<double> y) { ops::linear_forward(x, w, b, y); };
    require_gradient(x, ys, forward, [&](gcl::ConstView<double> dy, gcl::TensorView<double> dx) {
        ops::linear_backward_data(dy, w, dx);
    }, rng);
    require_gradient(w, ys, forward, [&](gcl::ConstView<double> dy, gcl::TensorView<double> dw) {
        ops::linear_backward_weight(dy, x, dw);
    }, rng);
    require_gradient(b, ys, forward, [&](gcl::ConstView<double> dy, gcl::TensorView<double> db) {
        ops::linear_backward_bias(dy, db);
    }, rng);
}

TEST_CASE("linear rejects mismatched shapes naming both", "[ops][linear][errors]") {
    Tensor<float> x(Shape{4, 6}), w(Shape{3, 5}), y(Shape{4, 3}), b(Shape{4});
    require_error([&] { ops::linear_forward(x, w, y.view()); }, {"ops::linear_forward", "[4, 6]", "[3, 5]"});
    Tensor<float> w6(Shape{3, 6}), y_bad(Shape{4, 4});
    require_error([&] { ops::linear_forward(x, w6, y_bad.view()); },
                  {"ops::linear_forward", "[4, 4]", "[4, 6]", "[3, 6]", "[4, 3]"});
    require_error([&] { ops::linear_forward(x, w6, b, y.view()); }, {"ops::linear_forward", "[4]", "[4, 3]"});
    Tensor<float> dx_bad(Shape{4, 5});
    require_error([&] { ops::linear_backward_data(y, w6, dx_bad.view()); },
                  {"ops::linear_backward_data", "[4, 5]", "[3, 6]"});
    Tensor<float> dw_bad(Shape{6, 3});
    require_error([&] { ops::linear_backward_weight(y, x, dw_bad.view()); },
                  {"ops::linear_backward_weight", "[4, 6]", "[6, 3]"});
    require_error([&] { ops::linear_backward_bias(y, b.view()); }, {"ops::linear_backward_bias", "[4]", "[4, 3]"});
    require_error([&] { (void)ops::linear_output_shape(Shape{2, 3, 4}, Shape{3, 4}); },
                  {"ops::linear_output_shape", "[2, 3, 4]", "[3, 4]"});
}

TEMPLATE_TEST_CASE("add_bias and bias_backward work along any dimension", "[ops][bias]", float, double) {
    using T = TestType;
    gcl::Rng rng(105);
    const Shape shape{2, 3, 4, 5};
    for (int dim : {0, 1, 2, -1}) {
        DYNAMIC_SECTION("dim " << dim) {
            const int d = dim < 0 ? dim + 4 : dim;
            const auto y0 = random<T>(shape, rng);
            const auto bias = random<T>(Shape{shape[d]}, rng);
            auto y = y0;
            ops::add_bias(bias, y.view(), dim);
            Tensor<double> expected = cast<double>(y0), db_ref(bias.shape());
            for (index_t a = 0; a < 2; ++a)
                for (index_t b = 0; b < 3; ++b)
                    for (index_t c = 0; c < 4; ++c)
                        for (index_t e = 0; e < 5; ++e) {
                            const index_t idx[] = {a, b, c, e};
                            expected(a, b, c, e) += static_cast<double>(bias(idx[d]));
                            db_ref(idx[d]) += static_cast<double>(y0(a, b, c, e));
                        }
            require_close(y, expected);
            Tensor<T> db(bias.shape());
            ops::bias_backward(y0, db.view(), dim);
            require_close(db, db_ref);
        }
    }
}

TEST_CASE("bias gradient passes the finite-difference check and errors name both shapes", "[ops][bias]") {
    gcl::Rng rng(106);
    auto bias = random<double>(Shape{3}, rng);
    const auto x = random<double>(Shape{2, 3, 2, 2}, rng);
    require_gradient(bias, x.shape(), [&](gcl::TensorView<double> y) {
        ops::copy(x, y);
        ops::add_bias(bias, y);
    }, [&](gcl::ConstView<double> dy, gcl::TensorView<double> db) { ops::bias_backward(dy, db); }, rng);

    Tensor<float> y(Shape{2, 3, 4}), b(Shape{4});
    require_error([&] { ops::add_bias(b, y.view(), 1); }, {"ops::add_bias", "[4]", "[2, 3, 4]"});
    require_error([&] { ops::bias_backward(y, b.view(), 1); }, {"ops::bias_backward", "[4]", "[2, 3, 4]"});
    require_error([&] { ops::add_bias(b, y.view(), 3); }, {"ops::add_bias", "[2, 3, 4]"});
}
