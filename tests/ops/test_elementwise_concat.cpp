#include <utility>

#include "gcl/ops/concat.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/transfer.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

using namespace gcl_test;
namespace ops = gcl::ops;
using gcl::ConstView;
using gcl::TensorView;

// ---------------------------------------------------------------------------------------------
// Element-wise arithmetic

TEMPLATE_TEST_CASE("element-wise arithmetic matches plain loops, in place too", "[ops][elementwise]", float, double) {
    using T = TestType;
    gcl::Rng rng(501);
    for (const Shape& shape : {Shape{7}, Shape{3, 4, 5}, Shape{2, 3, 64, 64}}) {
        DYNAMIC_SECTION("shape " << shape) {
            const auto a = random<T>(shape, rng);
            const auto b = random<T>(shape, rng, 0.5, 2);
            const auto y0 = random<T>(shape, rng);
            Tensor<T> out(shape);
            auto expect = [&](auto f) {
                Tensor<double> e(shape);
                for (index_t i = 0; i < e.numel(); ++i)
                    e.data()[i] = f(static_cast<double>(a.data()[i]), static_cast<double>(b.data()[i]),
                                    static_cast<double>(y0.data()[i]));
                return e;
            };
            ops::add(a, b, out.view());
            require_close(out, expect([](double p, double q, double) { return p + q; }));
            ops::sub(a, b, out.view());
            require_close(out, expect([](double p, double q, double) { return p - q; }));
            ops::mul(a, b, out.view());
            require_close(out, expect([](double p, double q, double) { return p * q; }));
            ops::div(a, b, out.view());
            require_close(out, expect([](double p, double q, double) { return p / q; }));
            ops::scale(a, 0.5, out.view());
            require_close(out, expect([](double p, double, double) { return 0.5 * p; }));
            ops::add_scalar(a, -1.25, out.view());
            require_close(out, expect([](double p, double, double) { return p - 1.25; }));
            auto y = y0;
            ops::axpy(2.0, a, y.view());
            require_close(y, expect([](double p, double, double r) { return r + 2 * p; }));
            y = y0;
            ops::axpby(-1.5, a, 0.25, y.view());
            require_close(y, expect([](double p, double, double r) { return -1.5 * p + 0.25 * r; }));
            y.fill(std::numeric_limits<T>::quiet_NaN());
            ops::axpby(3.0, a, 0.0, y.view());  // beta = 0 does not read y
            require_close(y, expect([](double p, double, double) { return 3 * p; }));
            ops::fill(y.view(), 4.5);
            require_close(y, Tensor<double>(shape, 4.5));

            auto inplace = a;
            ops::mul(inplace, b, inplace.view());
            require_close(inplace, expect([](double p, double q, double) { return p * q; }));
            inplace = a;
            ops::add(inplace, inplace, inplace.view());
            require_close(inplace, expect([](double p, double, double) { return 2 * p; }));
        }
    }
}

TEMPLATE_TEST_CASE("copy handles any strides", "[ops][elementwise]", float, double) {
    using T = TestType;
    gcl::Rng rng(502);
    const auto x = random<T>(Shape{3, 4, 5}, rng);
    Tensor<T> t(Shape{5, 4, 3});
    ops::copy(x.view().transpose(0, 2), t.view());
    for (index_t a = 0; a < 5; ++a)
        for (index_t b = 0; b < 4; ++b)
            for (index_t c = 0; c < 3; ++c) REQUIRE(t(a, b, c) == x(c, b, a));

    // Into a strided block: only the block changes.
    Tensor<T> big(Shape{3, 6, 5}, T(9));
    ops::copy(x, big.view().narrow(1, 1, 4));
    for (index_t a = 0; a < 3; ++a)
        for (index_t c = 0; c < 5; ++c) {
            CHECK(big(a, 0, c) == T(9));
            CHECK(big(a, 5, c) == T(9));
            for (index_t b = 0; b < 4; ++b) REQUIRE(big(a, b + 1, c) == x(a, b, c));
        }
    // A selected slice with unit extents.
    Tensor<T> col(Shape{3, 1});
    ops::copy(x.view().select(2, 4).narrow(1, 2, 1), col.view());
    for (index_t a = 0; a < 3; ++a) CHECK(col(a, 0) == x(a, 2, 4));
    // A column read with a zero stride: every column of the output is that column.
    Tensor<T> wide(Shape{3, 4});
    ops::copy(ConstView<T>(col.data(), Shape{3, 4}, gcl::Strides{1, 0}), wide.view());
    for (index_t a = 0; a < 3; ++a)
        for (index_t b = 0; b < 4; ++b) CHECK(wide(a, b) == col(a, 0));
}

TEST_CASE("host_to_device and device_to_host on the cpu: a move and a contiguous copy", "[ops][transfer]") {
    gcl::Rng rng(503);
    Tensor<float> host = random<float>(Shape{4, 3}, rng);
    const float* storage = host.data();
    const Tensor<float> same = ops::host_to_device<gcl::cpu>(std::move(host));
    CHECK(same.data() == storage);  // moved, not copied
    CHECK(same.shape() == Shape{4, 3});
    const Tensor<float> back = ops::device_to_host(same.cview().transpose(0, 1));
    REQUIRE(back.shape() == Shape{3, 4});
    CHECK(back.cview().is_contiguous());
    for (index_t i = 0; i < 3; ++i)
        for (index_t j = 0; j < 4; ++j) CHECK(back(i, j) == same(j, i));
}

TEST_CASE("convert casts element by element and checks shapes", "[ops][elementwise]") {
    gcl::Rng rng(502);
    for (const Shape& shape : {Shape{7}, Shape{2, 3, 64, 64}}) {
        const auto x = random<float>(shape, rng);
        Tensor<double> y(shape);
        ops::convert(x.cview(), y.view());
        for (index_t i = 0; i < x.numel(); ++i) REQUIRE(y.data()[i] == static_cast<double>(x.data()[i]));
        Tensor<float> back(shape);
        ops::convert(y.cview(), back.view());
        for (index_t i = 0; i < x.numel(); ++i) REQUIRE(back.data()[i] == x.data()[i]);
    }
    const auto labels = Tensor<gcl::index_t>::from(Shape{3}, {-2, 0, 5});
    Tensor<double> as_double(Shape{3});
    ops::convert(labels.cview(), as_double.view());
    CHECK(as_double(0) == -2.0);
    CHECK(as_double(2) == 5.0);
    Tensor<double> wrong(Shape{4});
    require_error([&] { ops::convert(labels.cview(), wrong.view()); }, {"ops::convert", "[3]", "[4]"});
}

TEST_CASE("element-wise ops reject mismatched shapes naming both", "[ops][elementwise][errors]") {
    Tensor<float> a(Shape{2, 3}), b(Shape{3, 2}), out(Shape{2, 3});
    require_error([&] { ops::add(a, b, out.view()); }, {"ops::add", "[2, 3]", "[3, 2]"});
    require_error([&] { ops::sub(a, a, b.view()); }, {"ops::sub", "[2, 3]", "[3, 2]"});
    require_error([&] { ops::mul(b, a, out.view()); }, {"ops::mul", "[3, 2]", "[2, 3]"});
    require_error([&] { ops::div(a, b, out.view()); }, {"ops::div", "[2, 3]", "[3, 2]"});
    require_error([&] { ops::scale(a, 2.0, b.view()); }, {"ops::scale", "[2, 3]", "[3, 2]"});
    require_error([&] { ops::add_scalar(a, 2.0, b.view()); }, {"ops::add_scalar", "[2, 3]", "[3, 2]"});
    require_error([&] { ops::axpy(1.0, a, b.view()); }, {"ops::axpy", "[2, 3]", "[3, 2]"});
    require_error([&] { ops::axpby(1.0, b, 1.0, a.view()); }, {"ops::axpby", "[3, 2]", "[2, 3]"});
    require_error([&] { ops::copy(a, b.view()); }, {"ops::copy", "[2, 3]", "[3, 2]"});
    require_error([&] { ops::fill(a.view().transpose(0, 1), 1.0); }, {"ops::fill", "contiguous"});
    Tensor<float> buf(Shape{10});
    require_error([&] { ops::add(buf.view().narrow(0, 0, 6), a.view().reshape({6}), buf.view().narrow(0, 3, 6)); },
                  {"ops::add", "overlaps"});
}

// ---------------------------------------------------------------------------------------------
// Concatenation and splitting

TEMPLATE_TEST_CASE("concat and split along any dimension are inverse", "[ops][concat]", float, double) {
    using T = TestType;
    gcl::Rng rng(511);
    for (int dim : {0, 1, 2, 3, -1}) {
        DYNAMIC_SECTION("dim " << dim) {
            const int d = dim < 0 ? dim + 4 : dim;
            Shape sa{2, 3, 4, 5}, sb = sa, sc = sa;
            sb[d] = 1;
            sc[d] = 2;
            const auto a = random<T>(sa, rng), b = random<T>(sb, rng), c = random<T>(sc, rng);
            Shape so = sa;
            so[d] = sa[d] + 3;
            Tensor<T> out(so);
            ops::concat({a.cview(), b.cview(), c.cview()}, out.view(), dim);
            for (index_t i = 0; i < out.numel(); ++i) {
                index_t idx[4], rest = i;
                for (int k = 3; k >= 0; --k) {
                    idx[k] = rest % so[k];
                    rest /= so[k];
                }
                const index_t at = idx[d];
                T expected;
                if (at < sa[d]) {
                    expected = a(idx[0], idx[1], idx[2], idx[3]);
                } else if (at < sa[d] + 1) {
                    idx[d] = at - sa[d];
                    expected = b(idx[0], idx[1], idx[2], idx[3]);
                } else {
                    idx[d] = at - sa[d] - 1;
                    expected = c(idx[0], idx[1], idx[2], idx[3]);
                }
                REQUIRE(out.data()[i] == expected);
            }
            Tensor<T> a2(sa), b2(sb), c2(sc);
            ops::split(out, {a2.view(), b2.view(), c2.view()}, dim);
            require_equal(a2, a);
            require_equal(b2, b);
            require_equal(c2, c);
        }
    }
}

TEST_CASE("concat and split accept empty parts", "[ops][concat]") {
    gcl::Rng rng(513);
    const auto a = random<float>(Shape{2, 3, 4, 4}, rng);
    const Tensor<float> none(Shape{2, 0, 4, 4});
    Tensor<float> out(Shape{2, 3, 4, 4});
    // An empty slice occupies no memory, so it overlaps nothing, not even the output it lies in.
    ops::concat({none.cview(), a.cview(), gcl::ConstView<float>(out.view().narrow(1, 1, 0))}, out.view());
    require_equal(out, a);
    Tensor<float> back(Shape{2, 3, 4, 4}), empty(Shape{2, 0, 4, 4});
    ops::split(out, {empty.view(), back.view()});
    require_equal(back, a);
}

TEST_CASE("concat's gradient is split, checked by finite differences", "[ops][concat][gradcheck]") {
    gcl::Rng rng(512);
    auto a = random<double>(Shape{2, 3, 2, 2}, rng);
    auto b = random<double>(Shape{2, 2, 2, 2}, rng);
    const Shape so{2, 5, 2, 2};
    auto forward = [&](TensorView<double> y) { ops::concat({a.cview(), b.cview()}, y); };
    Tensor<double> scratch_a(a.shape()), scratch_b(b.shape());
    require_gradient(a, so, forward, [&](ConstView<double> dy, TensorView<double> da) {
        ops::split(dy, {da, scratch_b.view()});
    }, rng);
    require_gradient(b, so, forward, [&](ConstView<double> dy, TensorView<double> db) {
        ops::split(dy, {scratch_a.view(), db});
    }, rng);
}

TEST_CASE("concat and split reject mismatched shapes naming them", "[ops][concat][errors]") {
    Tensor<float> a(Shape{2, 3, 4, 4}), b(Shape{2, 2, 5, 4}), out(Shape{2, 5, 4, 4});
    require_error([&] { ops::concat({a.cview(), b.cview()}, out.view()); }, {"ops::concat", "[2, 2, 5, 4]", "[2, 5, 4, 4]"});
    Tensor<float> b2(Shape{2, 1, 4, 4});
    require_error([&] { ops::concat({a.cview(), b2.cview()}, out.view()); },
                  {"ops::concat", "[2, 5, 4, 4]", "[2, 3, 4, 4] + [2, 1, 4, 4]"});
    require_error([&] { ops::concat({}, out.view()); }, {"ops::concat", "[2, 5, 4, 4]"});
    require_error([&] { ops::split(out, {a.view(), b2.view()}); }, {"ops::split", "[2, 5, 4, 4]", "[2, 3, 4, 4] + [2, 1, 4, 4]"});
    require_error([&] { ops::split(out, {a.view(), b.view()}); }, {"ops::split", "[2, 2, 5, 4]", "[2, 5, 4, 4]"});
    require_error([&] { ops::split(out, {a.view(), a.view().narrow(1, 0, 2)}); }, {"ops::split", "overlaps"});
    require_error([&] { ops::concat({a.cview()}, out.view(), 4); }, {"ops::concat", "4", "[2, 5, 4, 4]"});
}

// ---------------------------------------------------------------------------------------------
// The projected gradient checker itself

TEST_CASE("check_projected_gradient accepts a correct backward and reports a wrong one", "[testing][gradcheck]") {
    gcl::Rng rng(521);
    auto x = random<double>(Shape{3, 4}, rng);
    // f(x) = x^2 element-wise.
    auto forward = [&](TensorView<double> y) { ops::mul(x, x, y); };
    auto right = [&](ConstView<double> dy, TensorView<double> dx) {
        ops::mul(dy, x, dx);
        ops::scale(dx, 2.0, dx);
    };
    auto wrong = [&](ConstView<double> dy, TensorView<double> dx) {
        right(dy, dx);
        dx(1, 2) += 1e-3;
    };
    const Tensor<double> before = x;
    const auto ok = gcl::testing::check_projected_gradient(x.view(), x.shape(), forward, right, rng);
    CHECK(ok.passed);
    CHECK(ok.checked == 12);
    require_equal(x, before);
    const auto bad = gcl::testing::check_projected_gradient(x.view(), x.shape(), forward, wrong, rng);
    CHECK_FALSE(bad.passed);
    CHECK(bad.worst_index == 6);

    // random_tensor is seeded and stays in range.
    gcl::Rng r1(9), r2(9);
    const auto t1 = gcl::testing::random_tensor<float>(Shape{100}, r1, 2.0f, 3.0f);
    const auto t2 = gcl::testing::random_tensor<float>(Shape{100}, r2, 2.0f, 3.0f);
    require_equal(t1, t2);
    for (index_t i = 0; i < 100; ++i) CHECK((t1(i) >= 2.0f && t1(i) < 3.0f));
}
