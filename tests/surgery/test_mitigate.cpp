#include <catch2/catch.hpp>

#include <omp.h>

#include <cmath>
#include <limits>
#include <set>
#include <type_traits>
#include <vector>

#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/reference/mitigate.hpp"
#include "gcl/testing/tolerance.hpp"
#include "surgery_data.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::surgery::MitigateOptions;
using gcl::surgery::MitigateReport;
using gcl::surgery::Reduction;

namespace {

// Largest violation of |a - b| <= rtol * scale_p + atol, where scale_p = sum_k |w_k g_kp| is the
// size of the terms that were added (so cancellation does not make the bound meaningless).
template <class T>
double worst_violation(const Tensor<T>& fast, const Tensor<T>& ref, const Tensor<T>& g, const MitigateReport& r,
                       double rtol, double atol) {
    const index_t K = g.dim(0), P = g.dim(1);
    double worst = 0;
    for (index_t p = 0; p < P; ++p) {
        double scale = 0;
        for (index_t k = 0; k < K; ++k) scale += std::abs(r.weights(k) * static_cast<double>(g(k, p)));
        const double err = std::abs(static_cast<double>(fast(p)) - static_cast<double>(ref(p)));
        worst = std::max(worst, err / (rtol * scale + atol));
    }
    return worst;
}


}  // namespace

TEMPLATE_TEST_CASE("GradMitigator matches the reference PCGrad loop on random shapes", "[surgery][mitigate]", float,
                   double) {
    using T = TestType;
    const double rtol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
    const std::vector<index_t> sizes = {1, 3, 17, 1000, 32768 + 5, 3 * 32768 + 123, 1000000};
    index_t cases = 0, projected_cases = 0;
    for (index_t K = 1; K <= 8; ++K) {
        for (index_t P : sizes) {
            if (P == 1000000 && K % 2 == 1 && K > 1) continue;  // keep the run short: even K at the largest size
            for (Reduction red : {Reduction::sum, Reduction::mean}) {
                const std::uint64_t seed = static_cast<std::uint64_t>(100 * K + P % 97 + (red == Reduction::mean));
                const Tensor<T> g = gcl::testing::conflicting_gradients<T>(K, P, seed);
                const MitigateOptions options{.reduction = red, .seed = seed * 3 + 1};
                Tensor<T> fast(Shape{P}), ref(Shape{P});
                const MitigateReport r = gcl::surgery::mitigate<T>(g.cview(), fast.view(), options, /*step=*/K + P);
                const MitigateReport rr = gcl::surgery::reference::mitigate<T>(g.cview(), ref.view(), options, K + P);
                INFO("K = " << K << ", P = " << P << ", reduction " << (red == Reduction::sum ? "sum" : "mean"));
                CHECK(r.projections == rr.projections);
                CHECK(r.conflicting_pairs == rr.conflicting_pairs);
                CHECK(r.skipped_rows == rr.skipped_rows);
                CHECK(worst_violation(fast, ref, g, r, rtol, 1e-30) <= 1.0);
                ++cases;
                projected_cases += r.projections > 0;
            }
        }
    }
    CHECK(cases > 90);
    CHECK(projected_cases > cases / 2);  // the data really exercised the projections
}

TEST_CASE("GradMitigator: a hand-computed pair", "[surgery][mitigate]") {
    // g0 = (1, 0), g1 = (-1, 1): g0 . g1 = -1, so g0' = g0 + g1 / 2 = (0.5, 0.5), g1' = g1 + g0 = (0, 1).
    const Tensor<double> g = Tensor<double>::from(Shape{2, 2}, {1, 0, -1, 1});
    Tensor<double> out(Shape{2});
    const MitigateReport r = gcl::surgery::mitigate<double>(g.cview(), out.view());
    CHECK(out(0) == Approx(0.5).epsilon(1e-15));
    CHECK(out(1) == Approx(1.5).epsilon(1e-15));
    CHECK(r.conflicting_pairs == 1);
    CHECK(r.projections == 2);
    CHECK(r.weights(0) == Approx(2.0).epsilon(1e-15));  // 0.5 + 1.5 in the basis (g0, g1): (1 + 1) g0 + (0.5 + 1) g1
    CHECK(r.weights(1) == Approx(1.5).epsilon(1e-15));
    CHECK(r.gram(0, 1) == -1.0);

    gcl::surgery::mitigate<double>(g.cview(), out.view(), {.reduction = Reduction::mean});
    CHECK(out(0) == Approx(0.25).epsilon(1e-15));
    CHECK(out(1) == Approx(0.75).epsilon(1e-15));
}

TEMPLATE_TEST_CASE("GradMitigator: with K = 2 the projected gradients no longer conflict", "[surgery][mitigate]", float,
                   double) {
    using T = TestType;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const index_t P = 5000;
        Tensor<T> g = gcl::testing::conflicting_gradients<T>(2, P, seed);
        // Make every case conflict: flip row 1 when its dot with row 0 is positive.
        double d = 0;
        for (index_t p = 0; p < P; ++p) d += static_cast<double>(g(0, p)) * g(1, p);
        if (d > 0)
            for (index_t p = 0; p < P; ++p) g(1, p) = -g(1, p);
        Tensor<T> out(Shape{P});
        const MitigateReport r = gcl::surgery::mitigate<T>(g.cview(), out.view(), {.seed = seed});
        REQUIRE(r.conflicting_pairs == 1);
        REQUIRE(r.projections == 2);
        // Projected rows g_i' = c_i^T G, in double from the original rows.
        std::vector<std::vector<double>> proj(2, std::vector<double>(P));
        for (index_t i = 0; i < 2; ++i)
            for (index_t p = 0; p < P; ++p)
                proj[i][p] = r.coefficients(i, 0) * g(0, p) + r.coefficients(i, 1) * g(1, p);
        double n0 = 0, n1 = 0, d01 = 0, d0_1 = 0, d1_0 = 0, out0 = 0, out1 = 0;
        for (index_t p = 0; p < P; ++p) {
            n0 += double(g(0, p)) * g(0, p);
            n1 += double(g(1, p)) * g(1, p);
            d01 += proj[0][p] * proj[1][p];
            d0_1 += proj[0][p] * g(1, p);
            d1_0 += proj[1][p] * g(0, p);
            out0 += double(out(p)) * g(0, p);
            out1 += double(out(p)) * g(1, p);
        }
        const double tol = (std::is_same_v<T, float> ? 1e-5 : 1e-12) * std::sqrt(n0 * n1);
        CHECK(d01 >= -tol);                 // g0' . g1' >= 0: the pair no longer conflicts
        CHECK(std::abs(d0_1) <= tol);       // g0' lies in the normal plane of g1
        CHECK(std::abs(d1_0) <= tol);       // and g1' in that of g0
        CHECK(out0 >= -tol);                // the combined step descends on both losses
        CHECK(out1 >= -tol);
    }
}

TEMPLATE_TEST_CASE("GradMitigator: without conflicts the result is the plain sum (or mean)", "[surgery][mitigate]", float,
                   double) {
    using T = TestType;
    for (index_t K : {1, 2, 3, 5, 8}) {
        const index_t P = 70001;
        Tensor<T> g(Shape{K, P});
        gcl::Rng rng(K);
        gcl::fill_uniform<T>(g.view(), rng, T(0), T(1));  // non-negative entries: every dot product is >= 0
        Tensor<T> out(Shape{P});
        const MitigateReport r = gcl::surgery::mitigate<T>(g.cview(), out.view(), {.seed = 9});
        CHECK(r.conflicting_pairs == 0);
        CHECK(r.projections == 0);
        index_t mismatches = 0;
        for (index_t p = 0; p < P; ++p) {
            T s = g(0, p);
            for (index_t k = 1; k < K; ++k) s += g(k, p);
            mismatches += out(p) != s;  // weights are exactly 1: bitwise the same sum
        }
        CHECK(mismatches == 0);

        gcl::surgery::mitigate<T>(g.cview(), out.view(), {.reduction = Reduction::mean});
        for (index_t p = 0; p < P; p += 997) {
            double s = 0;
            for (index_t k = 0; k < K; ++k) s += g(k, p);
            CHECK(gcl::testing::close<T>(out(p), s / K));
        }
    }
}

TEST_CASE("GradMitigator: the same seed repeats exactly, other seeds and steps change the order",
          "[surgery][mitigate]") {
    const index_t K = 5, P = 200000;
    const Tensor<float> g = gcl::testing::conflicting_gradients<float>(K, P, 77);
    Tensor<float> a(Shape{P}), b(Shape{P}), c(Shape{P});
    gcl::surgery::mitigate<float>(g.cview(), a.view(), {.seed = 11}, 3);
    gcl::surgery::mitigate<float>(g.cview(), b.view(), {.seed = 11}, 3);
    CHECK(std::memcmp(a.data(), b.data(), sizeof(float) * P) == 0);

    // The Gram matrix is summed in fixed chunks: one thread gives bitwise the same result.
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    gcl::surgery::mitigate<float>(g.cview(), c.view(), {.seed = 11}, 3);
    omp_set_num_threads(threads);
    CHECK(std::memcmp(a.data(), c.data(), sizeof(float) * P) == 0);

    int differ_seed = 0, differ_step = 0;
    for (std::uint64_t s = 12; s < 22; ++s) {
        gcl::surgery::mitigate<float>(g.cview(), c.view(), {.seed = s}, 3);
        differ_seed += std::memcmp(a.data(), c.data(), sizeof(float) * P) != 0;
        gcl::surgery::mitigate<float>(g.cview(), c.view(), {.seed = 11}, s);
        differ_step += std::memcmp(a.data(), c.data(), sizeof(float) * P) != 0;
    }
    CHECK(differ_seed > 0);
    CHECK(differ_step > 0);
}

TEST_CASE("projection_order is a seeded permutation of the other rows", "[surgery][mitigate]") {
    for (index_t K = 1; K <= 9; ++K)
        for (index_t i = 0; i < K; ++i) {
            std::vector<index_t> a(K), b(K);
            gcl::surgery::projection_order(5, 6, 7, i, K, a.data());
            gcl::surgery::projection_order(5, 6, 7, i, K, b.data());
            std::set<index_t> seen(a.begin(), a.begin() + (K - 1));
            CHECK(static_cast<index_t>(seen.size()) == K - 1);
            CHECK(seen.count(i) == 0);
            for (index_t t = 0; t + 1 < K; ++t) {
                CHECK(a[t] == b[t]);
                CHECK((a[t] >= 0 && a[t] < K));
            }
        }
    // Every order of 3 other rows shows up across steps.
    std::set<std::vector<index_t>> orders;
    for (std::uint64_t step = 0; step < 200; ++step) {
        std::vector<index_t> o(4);
        gcl::surgery::projection_order(1, step, 0, 0, 4, o.data());
        o.pop_back();
        orders.insert(o);
    }
    CHECK(orders.size() == 6);
}

TEMPLATE_TEST_CASE("GradMitigator skips zero and tiny rows as projection targets", "[surgery][mitigate]", float, double) {
    using T = TestType;
    const index_t P = 40000;
    Tensor<T> g = gcl::testing::conflicting_gradients<T>(4, P, 5);
    for (index_t p = 0; p < P; ++p) {
        g(1, p) = T(0);                                      // a meta label without positives
        g(3, p) = static_cast<T>(1e-13 * double(g(3, p)));   // noise-level row
    }
    Tensor<T> out(Shape{P}), ref(Shape{P});
    const MitigateReport r = gcl::surgery::mitigate<T>(g.cview(), out.view(), {.seed = 2});
    const MitigateReport rr = gcl::surgery::reference::mitigate<T>(g.cview(), ref.view(), {.seed = 2});
    CHECK(r.skipped_rows == 2);
    CHECK(rr.skipped_rows == 2);
    CHECK(r.projections == rr.projections);
    // Rows 1 and 3 are never projection targets: their coefficients change only in their own rows.
    for (index_t i = 0; i < 4; ++i) {
        if (i != 1) CHECK(r.coefficients(i, 1) == 0.0);
        if (i != 3) CHECK(r.coefficients(i, 3) == 0.0);
    }
    for (index_t p = 0; p < P; ++p) REQUIRE(std::isfinite(out(p)));
    CHECK(worst_violation(out, ref, g, r, std::is_same_v<T, float> ? 2e-5 : 1e-12, 1e-30) <= 1.0);

    // All rows zero: nothing to project, the result is zero.
    Tensor<T> zeros(Shape{3, 100});
    const MitigateReport rz = gcl::surgery::mitigate<T>(zeros.cview(), out.view().narrow(0, 0, 100));
    CHECK(rz.skipped_rows == 3);
    CHECK(rz.projections == 0);
    for (index_t p = 0; p < 100; ++p) CHECK(out(p) == T(0));
}

TEMPLATE_TEST_CASE("GradMitigator raises gcl::Error on NaN, Inf and overflow", "[surgery][mitigate]", float, double) {
    using T = TestType;
    const index_t P = 50000;
    Tensor<T> out(Shape{P});
    for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                  -std::numeric_limits<T>::infinity()}) {
        Tensor<T> g = gcl::testing::conflicting_gradients<T>(3, P, 1);
        g(2, 41234) = bad;
        CHECK_THROWS_WITH(gcl::surgery::mitigate<T>(g.cview(), out.view()),
                          Catch::Contains("row 2") && Catch::Contains("column 41234"));
        CHECK_THROWS_AS(gcl::surgery::reference::mitigate<T>(g.cview(), out.view()), gcl::Error);
    }
    Tensor<T> huge(Shape{2, P}, std::sqrt(std::numeric_limits<T>::max()));
    if constexpr (std::is_same_v<T, float>) {
        // Float products that overflow are redone in double: the exact sum, which fits float.
        gcl::surgery::mitigate<T>(huge.cview(), out.view());
        CHECK(out(P - 1) == Approx(2.0 * std::sqrt(std::numeric_limits<float>::max())).epsilon(1e-6));
    } else {
        CHECK_THROWS_WITH(gcl::surgery::mitigate<T>(huge.cview(), out.view()), Catch::Contains("overflow"));
    }
}

TEST_CASE("GradMitigator checks its arguments", "[surgery][mitigate]") {
    using M = gcl::surgery::GradMitigator<float>;
    Tensor<float> g(Shape{3, 10}), out(Shape{10}), wrong(Shape{9});
    const M m;
    CHECK(M::can_implement({g.cview(), out.view()}));
    CHECK_FALSE(M::can_implement({g.cview(), wrong.view()}));
    CHECK_THROWS_WITH(m({g.cview(), wrong.view()}), Catch::Contains("out must have shape [10]"));
    CHECK_THROWS_WITH(m({g.cview().reshape(Shape{30}), out.view()}), Catch::Contains("K x P"));
    CHECK_THROWS_WITH(m({g.cview().narrow(0, 0, 0), out.view()}), Catch::Contains("non-empty"));
    Tensor<float> gt(Shape{10, 3});
    CHECK_THROWS_WITH(m({gt.cview().transpose(0, 1), out.view()}), Catch::Contains("contiguous"));
    // out may be a row of grads, but not straddle rows.
    CHECK(M::can_implement({g.cview(), g.view().select(0, 1)}));
    Tensor<float> flat(Shape{40});
    CHECK_FALSE(M::can_implement({flat.cview().reshape(Shape{4, 10}).narrow(0, 0, 3), flat.view().narrow(0, 5, 10)}));
    CHECK(M::workspace_size({g.cview(), out.view()}) == 6 * sizeof(double));
    CHECK_THROWS_WITH(m.run({g.cview(), out.view()}, nullptr), Catch::Contains("workspace"));
}

TEMPLATE_TEST_CASE("GradMitigator reads strided rows and may write into one of them", "[surgery][mitigate]", float,
                   double) {
    using T = TestType;
    const index_t K = 4, P = 70000, pitch = P + 13;
    const Tensor<T> dense = gcl::testing::conflicting_gradients<T>(K, P, 8);
    Tensor<T> arena(Shape{K, pitch});
    for (index_t k = 0; k < K; ++k)
        for (index_t p = 0; p < P; ++p) arena(k, p) = dense(k, p);
    const gcl::ConstView<T> rows = arena.cview().narrow(1, 0, P);
    Tensor<T> expected(Shape{P});
    gcl::surgery::mitigate<T>(dense.cview(), expected.view(), {.seed = 4}, 1);
    Tensor<T> out(Shape{P});
    gcl::surgery::mitigate<T>(rows, out.view(), {.seed = 4}, 1);
    CHECK(std::memcmp(out.data(), expected.data(), sizeof(T) * P) == 0);
    // In place, into row 2 of the arena.
    gcl::surgery::mitigate<T>(rows, arena.view().select(0, 2).narrow(0, 0, P), {.seed = 4}, 1);
    CHECK(std::memcmp(arena.data() + 2 * pitch, expected.data(), sizeof(T) * P) == 0);
}
