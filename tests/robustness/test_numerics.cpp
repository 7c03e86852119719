// Numbers near the edges of the floating-point range: normalisation, SupCon and the mitigators
// either give the result a well-scaled input gives, or raise gcl::Error; never a silent inf/NaN.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "gcl/core/random.hpp"
#include "gcl/loss/supcon.hpp"
#include "gcl/ops/normalize.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/mitigate_batched.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace ops = gcl::ops;

namespace {
template <class T>
Tensor<T> random_matrix(index_t rows, index_t cols, std::uint64_t seed, double scale = 1.0) {
    gcl::Rng rng(seed);
    Tensor<T> t(Shape{rows, cols});
    for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(scale * (2 * rng.uniform() - 1));
    return t;
}

template <class T>
Tensor<T> scaled(const Tensor<T>& t, double s) {
    Tensor<T> out(t.shape());
    for (index_t i = 0; i < t.numel(); ++i) out.data()[i] = static_cast<T>(static_cast<double>(t.data()[i]) * s);
    return out;
}

bool all_finite(const double* p, index_t n) {
    for (index_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return false;
    return true;
}
}  // namespace

TEST_CASE("L2 normalisation of vectors with norms near 1e200 and 1e-160 (double)", "[robustness][normalize]") {
    const Tensor<double> z = random_matrix<double>(6, 5, 3);
    Tensor<double> unit(z.shape()), norms(Shape{6});
    ops::l2_normalize_strict_forward<double>(z.cview(), unit.view(), norms.view(), 1);
    for (double s : {1e200, 1e-160, 1e300, 1e-300}) {
        INFO("scale " << s);
        const Tensor<double> zs = scaled(z, s);
        // strict mode: same directions, norms scaled
        Tensor<double> u(z.shape()), n(Shape{6});
        ops::l2_normalize_strict_forward<double>(zs.cview(), u.view(), n.view(), 1);
        for (index_t i = 0; i < u.numel(); ++i) CHECK(u.data()[i] == Approx(unit.data()[i]).epsilon(1e-14));
        for (index_t i = 0; i < 6; ++i) CHECK(n(i) == Approx(norms(i) * s).epsilon(1e-14));
        // eps mode along rows (eps far below these norms except 1e-300, which eps clamps)
        Tensor<double> y(z.shape());
        ops::l2_normalize_forward<double>(zs.cview(), y.view(), 1, s > 1e-250 ? 1e-280 : 1e-12);
        if (s > 1e-250)
            for (index_t i = 0; i < y.numel(); ++i) CHECK(y.data()[i] == Approx(unit.data()[i]).epsilon(1e-14));
        CHECK(all_finite(y.data(), y.numel()));
        // and its gradient is the unit-scale gradient divided by the scale
        if (s > 1e-250) {
            const Tensor<double> dy = random_matrix<double>(6, 5, 4);
            Tensor<double> dx1(z.shape()), dxs(z.shape());
            ops::l2_normalize_backward<double>(dy.cview(), z.cview(), dx1.view(), 1, 1e-300);
            ops::l2_normalize_backward<double>(dy.cview(), zs.cview(), dxs.view(), 1, 1e-300);
            for (index_t i = 0; i < dxs.numel(); ++i)
                CHECK(dxs.data()[i] * s == Approx(dx1.data()[i]).epsilon(1e-12).margin(1e-14));
        }
    }
}

TEST_CASE("strict normalisation rejects what has no direction; eps mode clamps", "[robustness][normalize]") {
    Tensor<float> z = random_matrix<float>(3, 4, 5);
    Tensor<float> u(z.shape()), n(Shape{3});
    for (index_t d = 0; d < 4; ++d) z(1, d) = 0;
    CHECK_THROWS_WITH(ops::l2_normalize_strict_forward<float>(z.cview(), u.view(), n.view(), 1, "SupCon", "embedding"),
                      Catch::Contains("SupCon") && Catch::Contains("embedding 1 is zero"));
    CHECK_THROWS_WITH(ops::l2_normalize_strict_forward<float>(z.cview(), u.view(), n.view(), 1),
                      Catch::Contains("ops::l2_normalize_strict_forward") && Catch::Contains("vector 1 is zero"));
    Tensor<float> y(z.shape());
    ops::l2_normalize_forward<float>(z.cview(), y.view(), 1);  // eps mode: the zero row stays zero
    for (index_t d = 0; d < 4; ++d) CHECK(y(1, d) == 0.0f);
    z(1, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(ops::l2_normalize_strict_forward<float>(z.cview(), u.view(), n.view(), 1),
                      Catch::Contains("vector 1") && Catch::Contains("non-finite") && Catch::Contains("at 2"));
    // A float row whose norm exceeds float's range: an error, not an infinite norm.
    Tensor<float> big(Shape{3, 4});
    for (index_t i = 0; i < big.numel(); ++i) big.data()[i] = 3e38f;
    CHECK_THROWS_WITH(ops::l2_normalize_strict_forward<float>(big.cview(), u.view(), n.view(), 1),
                      Catch::Contains("norm of vector 0") && Catch::Contains("overflows"));
    // Shapes are checked.
    Tensor<float> wrong(Shape{2});
    CHECK_THROWS_WITH(ops::l2_normalize_strict_forward<float>(random_matrix<float>(3, 4, 6).cview(), u.view(), wrong.view(), 1),
                      Catch::Contains("norms"));
}

TEST_CASE("SupCon: huge and tiny embeddings give the unit-scale loss, or an error", "[robustness][supcon]") {
    // 4 images x 2 views, 2 meta labels.
    const Tensor<double> z = random_matrix<double>(8, 6, 11);
    const auto labels = Tensor<index_t>::from(Shape{2, 8}, {0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 2, 3, 0, 1, 2, 3});
    const gcl::loss::ContrastOptions normalize{.temperature = 0.1, .normalize = true};
    const auto reference = gcl::loss::supcon<double>(z.cview(), labels.cview(), normalize);
    REQUIRE(std::isfinite(reference.total));
    CHECK(reference.total > 2.5);  // far from log(7), the value of fully collapsed embeddings
    for (double s : {1e200, 1e-160, 1e300}) {
        INFO("scale " << s);
        const Tensor<double> zs = scaled(z, s);
        const auto r = gcl::loss::supcon<double>(zs.cview(), labels.cview(), normalize);
        CHECK(r.total == Approx(reference.total).epsilon(1e-12));
        for (index_t i = 0; i < r.grads.numel(); ++i)
            CHECK(r.grads.data()[i] * s == Approx(reference.grads.data()[i]).epsilon(1e-10).margin(1e-12));
    }
    // Without normalisation similarities of huge float embeddings overflow: an error naming the pair.
    const Tensor<float> zf = scaled(random_matrix<float>(8, 6, 12), 1e20);
    const gcl::loss::ContrastOptions raw{.temperature = 0.1, .normalize = false};
    CHECK_THROWS_WITH(gcl::loss::supcon<float>(zf.cview(), labels.cview(), raw),
                      Catch::Contains("similarity of embeddings") && Catch::Contains("normalise"));
    // Finite similarities that overflow once divided by the temperature are caught as well.
    const Tensor<float> zt = scaled(random_matrix<float>(8, 6, 13), 1.5e19);
    CHECK_THROWS_WITH(gcl::loss::supcon<float>(zt.cview(), labels.cview(), {.temperature = 1e-3}),
                      Catch::Contains("temperature"));
    // Moderate raw embeddings still work, and match the double computation.
    const Tensor<float> zm = random_matrix<float>(8, 6, 14);
    const auto rf = gcl::loss::supcon<float>(zm.cview(), labels.cview(), raw);
    Tensor<double> zmd(zm.shape());
    for (index_t i = 0; i < zm.numel(); ++i) zmd.data()[i] = zm.data()[i];
    const auto rd = gcl::loss::supcon<double>(zmd.cview(), labels.cview(), raw);
    CHECK(rf.total == Approx(rd.total).epsilon(1e-5));
}

TEST_CASE("GradMitigator on float rows near the float range: the exact result or an error", "[robustness][surgery]") {
    namespace sg = gcl::surgery;
    const float big = 2e38f;
    SECTION("a result that fits float is computed in double and is exact") {
        // Rows of magnitude 1e38: their squares overflow float but not double, and the
        // projected sum fits float.
        const float large = 1e38f;
        for (index_t P : {2, 3, 37, 5000}) {
            Tensor<float> g(Shape{2, P}), out(Shape{P});
            for (index_t p = 0; p < P; ++p) {
                g(0, p) = p % 2 ? large / 2 : large;
                g(1, p) = p % 2 ? large : -large / 2;
            }
            const sg::MitigateReport r = sg::mitigate<float>(g.cview(), out.view());
            for (index_t p = 0; p < P; ++p) {
                double exact = 0;
                for (index_t k = 0; k < 2; ++k) exact += r.weights(k) * static_cast<double>(g(k, p));
                INFO("P " << P << " column " << p);
                REQUIRE(std::isfinite(out(p)));
                CHECK(out(p) == Approx(exact).epsilon(1e-6));
            }
        }
    }
    SECTION("a result beyond float is an error, and out is left as it was") {
        for (index_t P : {1, 4, 70}) {
            Tensor<float> g(Shape{2, P}), out(Shape{P});
            for (index_t i = 0; i < g.numel(); ++i) g.data()[i] = big;  // no conflict: the sum is 4e38
            for (index_t p = 0; p < P; ++p) out(p) = 7.0f;
            INFO("P " << P);
            CHECK_THROWS_WITH(sg::mitigate<float>(g.cview(), out.view()),
                              Catch::Contains("GradMitigator") && Catch::Contains("beyond the range"));
            for (index_t p = 0; p < P; ++p) CHECK(out(p) == 7.0f);
            // in place (out = row 0): the row is not overwritten either
            CHECK_THROWS_AS(sg::mitigate<float>(g.cview(), g.view().select(0, 0)), gcl::Error);
            for (index_t p = 0; p < P; ++p) CHECK(g(0, p) == big);
        }
    }
    SECTION("batched: the same rules per sample") {
        Tensor<float> g(Shape{3, 2, 5}), out(Shape{3, 5});
        gcl::Rng rng(2);
        for (index_t i = 0; i < g.numel(); ++i) g.data()[i] = static_cast<float>(rng.uniform() - 0.5);
        for (index_t d = 0; d < 5; ++d) g(1, 0, d) = g(1, 1, d) = big / 4;  // fits: sum 1e38
        sg::mitigate_batched<float>(g.cview(), out.view());
        for (index_t d = 0; d < 5; ++d) CHECK(out(1, d) == Approx(big / 2).epsilon(1e-6));
        for (index_t d = 0; d < 5; ++d) g(2, 0, d) = g(2, 1, d) = big;  // does not fit
        CHECK_THROWS_WITH(sg::mitigate_batched<float>(g.cview(), out.view()),
                          Catch::Contains("sample 2") && Catch::Contains("beyond the range"));
    }
    SECTION("double rows whose dot products overflow are an error") {
        Tensor<double> g(Shape{2, 3}), out(Shape{3});
        for (index_t i = 0; i < g.numel(); ++i) g.data()[i] = 1e200;
        CHECK_THROWS_WITH(sg::mitigate<double>(g.cview(), out.view()), Catch::Contains("overflow"));
        g(1, 2) = std::numeric_limits<double>::infinity();
        CHECK_THROWS_WITH(sg::mitigate<double>(g.cview(), out.view()),
                          Catch::Contains("row 1") && Catch::Contains("column 2"));
    }
}
