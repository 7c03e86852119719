#pragma once
// The test bodies of GradMitigator<T, D> (K x P), written once for every device: the CPU tests
// (test_mitigate.cpp) instantiate them for gcl::cpu, the CUDA tests (test_mitigate_cuda.cu) for
// gcl::cuda. Every body checks the device against the reference PCGrad loop; on a device other
// than the cpu it also checks the device against the CPU kernel.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/reference/mitigate.hpp"
#include "gcl/testing/tolerance.hpp"
#include "surgery_data.hpp"
#include "surgery_device.hpp"

namespace gcl::testing::mitigate_cases {

using surgery::GradMitigator;
using surgery::MitigateOptions;
using surgery::MitigateReport;
using surgery::Reduction;

template <class T>
struct Run {
    Tensor<T> out;
    MitigateReport report;
};

// The mitigation of a host matrix on device D: copied there, run, copied back.
template <class T, class D>
Run<T> run_on(const Tensor<T>& g, const MitigateOptions& options, std::uint64_t step) {
    using Dev = SurgeryDevice<D>;
    const Tensor<T, D> device_g = Dev::upload(g);
    Tensor<T, D> out(Shape{g.dim(1)});
    // The one-call form: GradMitigator<T, D>'s operator() on the default stream.
    MitigateReport report = surgery::mitigate(device_g.cview(), out.view(), options, step);
    return {Dev::download(out), std::move(report)};
}

// Runs g (K x P) on device D and the reference and checks that they agree: the same counts; Q
// exactly symmetric (and, where the device sums in double, within 1e-9 sqrt(Q_ii Q_jj) of a
// sequential double sum); the output within rtol of the size of the added terms. On a device
// other than the cpu, also the counts, weights, coefficients and output of the CPU kernel.
// Returns the number of projections.
template <class T, class D>
index_t check_against_reference(const Tensor<T>& g, const MitigateOptions& options, std::uint64_t step) {
    const double rtol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
    const index_t K = g.dim(0), P = g.dim(1);
    Tensor<T> ref(Shape{P});
    const MitigateReport rr = surgery::reference::mitigate<T>(g.cview(), ref.view(), options, step);
    const Run<T> run = run_on<T, D>(g, options, step);
    const MitigateReport& r = run.report;

    CHECK(r.projections == rr.projections);
    CHECK(r.conflicting_pairs == rr.conflicting_pairs);
    CHECK(r.skipped_rows == rr.skipped_rows);
    REQUIRE(r.gram.shape() == Shape{K, K});
    REQUIRE(r.weights.shape() == Shape{K});
    REQUIRE(r.coefficients.shape() == Shape{K, K});
    for (index_t i = 0; i < K; ++i)
        for (index_t j = 0; j < K; ++j) CHECK(r.gram(i, j) == r.gram(j, i));
    if constexpr (SurgeryDevice<D>::template gram_in_double<T>) {
        const Tensor<double> exact = host_gram(g);
        double worst_gram = 0;
        for (index_t i = 0; i < K; ++i)
            for (index_t j = 0; j < K; ++j) {
                const double scale = std::sqrt(exact(i, i) * exact(j, j));
                worst_gram = std::max(worst_gram, std::abs(r.gram(i, j) - exact(i, j)) / (1e-9 * scale + 1e-300));
            }
        CHECK(worst_gram <= 1.0);
    }
    CHECK(worst_violation(run.out, ref, g, r.weights, rtol, 1e-30) <= 1.0);

    if constexpr (!is_cpu<D>) {
        const double wtol = std::is_same_v<T, float> ? 1e-4 : 1e-10;
        Tensor<T> cpu_out(Shape{P});
        const MitigateReport rc = surgery::mitigate<T>(g.cview(), cpu_out.view(), options, step);
        CHECK(r.projections == rc.projections);
        CHECK(r.conflicting_pairs == rc.conflicting_pairs);
        CHECK(r.skipped_rows == rc.skipped_rows);
        double worst_weight = 0, worst_coefficient = 0;
        for (index_t i = 0; i < K; ++i) {
            for (index_t j = 0; j < K; ++j)
                worst_coefficient = std::max(worst_coefficient, std::abs(r.coefficients(i, j) - rc.coefficients(i, j)) /
                                                                    (wtol * std::max(1.0, std::abs(rc.coefficients(i, j)))));
            worst_weight =
                std::max(worst_weight, std::abs(r.weights(i) - rc.weights(i)) / (wtol * std::max(1.0, std::abs(rc.weights(i)))));
        }
        CHECK(worst_weight <= 1.0);
        CHECK(worst_coefficient <= 1.0);
        CHECK(worst_violation(run.out, cpu_out, g, rc.weights, 2 * rtol, 1e-30) <= 1.0);
    }
    return r.projections;
}

// K = 1..8 over the given sizes (those around the device's chunk and block boundaries), both
// reductions, for every (K, P) that keep(K, P) accepts.
template <class T, class D, class Keep>
void random_shapes(const std::vector<index_t>& sizes, Keep keep, index_t min_cases) {
    index_t cases = 0, projected = 0;
    for (index_t K = 1; K <= 8; ++K)
        for (index_t P : sizes) {
            if (!keep(K, P)) continue;
            for (Reduction reduction : {Reduction::sum, Reduction::mean}) {
                const std::uint64_t seed = static_cast<std::uint64_t>(100 * K + P % 97 + (reduction == Reduction::mean));
                const Tensor<T> g = conflicting_gradients<T>(K, P, seed);
                INFO("K = " << K << ", P = " << P << ", reduction " << (reduction == Reduction::sum ? "sum" : "mean"));
                projected += check_against_reference<T, D>(g, {.reduction = reduction, .seed = seed * 3 + 1},
                                                           static_cast<std::uint64_t>(K + P)) > 0;
                ++cases;
            }
        }
    CHECK(cases > min_cases);
    CHECK(projected > cases / 2);  // the data really exercised the projections
}

// More than eight rows: the Gram matrix is formed in sweeps over groups of rows.
template <class T, class D>
void more_than_eight_rows() {
    index_t projected = 0;
    for (index_t K : {9, 12, 13, 17})
        for (index_t P : {1000, 100003})
            for (Reduction reduction : {Reduction::sum, Reduction::mean}) {
                const Tensor<T> g = conflicting_gradients<T>(K, P, static_cast<std::uint64_t>(K * P));
                INFO("K = " << K << ", P = " << P);
                projected += check_against_reference<T, D>(g, {.reduction = reduction, .seed = 5}, 3);
            }
    CHECK(projected > 0);
}

// g0 = (1, 0), g1 = (-1, 1): g0 . g1 = -1, so g0' = g0 + g1 / 2 = (0.5, 0.5), g1' = g1 + g0 = (0, 1),
// and in the basis (g0, g1) the sum is (1 + 1) g0 + (0.5 + 1) g1. Every value is exact in binary.
template <class D>
void hand_computed_pair() {
    const Tensor<double> g = Tensor<double>::from(Shape{2, 2}, {1, 0, -1, 1});
    const Run<double> sum = run_on<double, D>(g, {}, 0);
    CHECK(sum.out(0) == 0.5);
    CHECK(sum.out(1) == 1.5);
    CHECK(sum.report.gram(0, 0) == 1.0);
    CHECK(sum.report.gram(0, 1) == -1.0);
    CHECK(sum.report.gram(1, 1) == 2.0);
    CHECK(sum.report.weights(0) == 2.0);
    CHECK(sum.report.weights(1) == 1.5);
    CHECK(sum.report.conflicting_pairs == 1);
    CHECK(sum.report.projections == 2);

    const Run<double> mean = run_on<double, D>(g, {.reduction = Reduction::mean}, 0);
    CHECK(mean.out(0) == 0.25);
    CHECK(mean.out(1) == 0.75);
}

// With K = 2 the projected gradients no longer conflict, lie in each other's normal planes, and
// the combined step descends on both losses.
template <class T, class D>
void two_rows_no_longer_conflict() {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const index_t P = 5000;
        Tensor<T> g = conflicting_gradients<T>(2, P, seed);
        // Make every case conflict: flip row 1 when its dot with row 0 is positive.
        double d = 0;
        for (index_t p = 0; p < P; ++p) d += static_cast<double>(g(0, p)) * g(1, p);
        if (d > 0)
            for (index_t p = 0; p < P; ++p) g(1, p) = -g(1, p);
        const Run<T> run = run_on<T, D>(g, {.seed = seed}, 0);
        const MitigateReport& r = run.report;
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
            out0 += double(run.out(p)) * g(0, p);
            out1 += double(run.out(p)) * g(1, p);
        }
        const double tol = (std::is_same_v<T, float> ? 1e-5 : 1e-12) * std::sqrt(n0 * n1);
        CHECK(d01 >= -tol);            // g0' . g1' >= 0: the pair no longer conflicts
        CHECK(std::abs(d0_1) <= tol);  // g0' lies in the normal plane of g1
        CHECK(std::abs(d1_0) <= tol);  // and g1' in that of g0
        CHECK(out0 >= -tol);           // the combined step descends on both losses
        CHECK(out1 >= -tol);
    }
}

// Without conflicts the weights are exactly 1: the sum is bitwise the sequential sum of the rows,
// and the mean is close to it divided by K. Two kinds of data: non-negative entries (every dot
// product >= 0) and rows sharing one direction with a positive coefficient.
template <class T, class D>
void plain_sum_without_conflicts() {
    for (bool shared_direction : {false, true})
        for (index_t K : {1, 2, 3, 5, 8, 10}) {
            const index_t P = shared_direction ? 50001 : 70001;
            Tensor<T> g(Shape{K, P});
            if (shared_direction) {
                g = conflicting_gradients<T>(K, P, static_cast<std::uint64_t>(K));
                Tensor<T> base(Shape{P});
                Rng rng(99);
                fill_normal<T>(base.view(), rng);
                for (index_t k = 0; k < K; ++k)
                    for (index_t p = 0; p < P; ++p) g(k, p) = base(p) + T(0.1) * g(k, p);
            } else {
                Rng rng(static_cast<std::uint64_t>(K));
                fill_uniform<T>(g.view(), rng, T(0), T(1));
            }
            Tensor<T> expected(Shape{P});
            for (index_t p = 0; p < P; ++p) {
                T s = g(0, p);
                for (index_t k = 1; k < K; ++k) s += g(k, p);
                expected(p) = s;
            }
            INFO("K = " << K << ", shared direction " << shared_direction);
            const Run<T> sum = run_on<T, D>(g, {.seed = 9}, 0);
            CHECK(sum.report.conflicting_pairs == 0);
            CHECK(sum.report.projections == 0);
            CHECK(same_bits(sum.out, expected));

            const Run<T> mean = run_on<T, D>(g, {.reduction = Reduction::mean}, 0);
            for (index_t p = 0; p < P; p += 997) {
                double s = 0;
                for (index_t k = 0; k < K; ++k) s += g(k, p);
                CHECK(close<T>(mean.out(p), s / K));
            }
            if constexpr (!is_cpu<D>) {
                Tensor<T> cpu_out(Shape{P});
                const MitigateReport rc = surgery::mitigate<T>(g.cview(), cpu_out.view(), {.reduction = Reduction::mean});
                CHECK(worst_violation(mean.out, cpu_out, g, rc.weights, std::is_same_v<T, float> ? 4e-5 : 2e-12, 1e-30) <=
                      1.0);
            }
        }
}

// The same seed repeats bit for bit, also through run() on a stream other than the default one
// with workspace full of garbage; other seeds and other steps change the orders.
template <class T, class D>
void repeats_exactly(index_t K, index_t P, std::uint64_t data_seed, std::uint64_t step) {
    using Dev = SurgeryDevice<D>;
    INFO("K = " << K << ", P = " << P);
    const Tensor<T> g = conflicting_gradients<T>(K, P, data_seed);
    const Tensor<T, D> dg = Dev::upload(g);
    const GradMitigator<T, D> mitigator({.reduction = Reduction::sum, .seed = 11});
    Tensor<T, D> out1(Shape{P}), out2(Shape{P}), out3(Shape{P});
    const MitigateReport r1 = mitigator({dg.cview(), out1.view(), step});
    const MitigateReport r2 = mitigator({dg.cview(), out2.view(), step});

    const typename GradMitigator<T, D>::Arguments args{dg.cview(), out3.view(), step};
    Tensor<double, D> workspace(Shape{static_cast<index_t>(mitigator.workspace_size(args) / sizeof(double) + 1)});
    Dev::fill_bytes(workspace.data(), 0xff, static_cast<std::size_t>(workspace.numel()) * sizeof(double));
    const typename Dev::SideStream stream;
    const MitigateReport r3 = mitigator.run(args, workspace.data(), stream.get());
    stream.get().synchronize();

    const Tensor<T> a = Dev::download(out1);
    CHECK(same_bits(a, Dev::download(out2)));
    CHECK(same_bits(a, Dev::download(out3)));
    CHECK(same_bits(r1.gram, r2.gram));
    CHECK(same_bits(r1.gram, r3.gram));
    CHECK(same_bits(r1.weights, r3.weights));

    int differ_seed = 0, differ_step = 0;
    Tensor<T, D> c(Shape{P});
    for (std::uint64_t s = 12; s < 22; ++s) {
        GradMitigator<T, D>({.seed = s})({dg.cview(), c.view(), step});
        differ_seed += !same_bits(a, Dev::download(c));
        mitigator({dg.cview(), c.view(), s == step ? s + 100 : s});
        differ_step += !same_bits(a, Dev::download(c));
    }
    CHECK(differ_seed > 0);
    CHECK(differ_step > 0);
}

// Zero and noise-level rows are never projection targets; all rows zero give zero.
template <class T, class D>
void skips_zero_and_tiny_rows() {
    using Dev = SurgeryDevice<D>;
    const index_t P = 40000;
    Tensor<T> g = conflicting_gradients<T>(4, P, 5);
    for (index_t p = 0; p < P; ++p) {
        g(1, p) = T(0);                                     // a meta label without positives
        g(3, p) = static_cast<T>(1e-13 * double(g(3, p)));  // noise-level row
    }
    const Run<T> run = run_on<T, D>(g, {.seed = 2}, 0);
    Tensor<T> ref(Shape{P});
    const MitigateReport rr = surgery::reference::mitigate<T>(g.cview(), ref.view(), {.seed = 2});
    CHECK(run.report.skipped_rows == 2);
    CHECK(rr.skipped_rows == 2);
    // Rows 1 and 3 are never projection targets: their coefficients change only in their own rows.
    for (index_t i = 0; i < 4; ++i) {
        if (i != 1) CHECK(run.report.coefficients(i, 1) == 0.0);
        if (i != 3) CHECK(run.report.coefficients(i, 3) == 0.0);
    }
    for (index_t p = 0; p < P; ++p) REQUIRE(std::isfinite(run.out(p)));
    check_against_reference<T, D>(g, {.seed = 2}, 0);

    // All rows zero: nothing to project, and the result (written over ones) is zero.
    const Tensor<T, D> zeros = Dev::upload(Tensor<T>(Shape{3, 100}));
    Tensor<T, D> out = Dev::upload(Tensor<T>(Shape{100}, T(1)));
    const MitigateReport rz = GradMitigator<T, D>()({zeros.cview(), out.view()});
    CHECK(rz.skipped_rows == 3);
    CHECK(rz.projections == 0);
    const Tensor<T> zero_out = Dev::download(out);
    for (index_t p = 0; p < 100; ++p) CHECK(zero_out(p) == T(0));
}

// NaN and Inf raise gcl::Error naming the row and column; dot products that overflow raise it
// for double, while float rows (whose products are redone or summed in double) still combine.
template <class T, class D>
void rejects_non_finite_values() {
    const index_t P = 50000;
    for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                  -std::numeric_limits<T>::infinity()})
        for (auto [row, column] : {std::pair<index_t, index_t>{2, 41234}, {0, 0}, {1, P - 1}}) {
            Tensor<T> g = conflicting_gradients<T>(3, P, 1);
            g(row, column) = bad;
            const std::string where = "row " + std::to_string(row);
            const std::string at = "column " + std::to_string(column);
            CHECK_THROWS_WITH((run_on<T, D>(g, {}, 0)), Catch::Contains(where) && Catch::Contains(at));
            Tensor<T> out(Shape{P});
            CHECK_THROWS_AS(surgery::reference::mitigate<T>(g.cview(), out.view()), Error);
        }
    const Tensor<T> huge(Shape{2, P}, std::sqrt(std::numeric_limits<T>::max()));
    if constexpr (std::is_same_v<T, float>) {
        const Run<float> run = run_on<float, D>(huge, {}, 0);
        CHECK(std::isfinite(run.report.gram(0, 1)));
        CHECK(run.out(P - 1) == Approx(2.0 * std::sqrt(std::numeric_limits<float>::max())).epsilon(1e-6));
        for (index_t p = 0; p < P; ++p) REQUIRE(run.out(p) == 2 * std::sqrt(std::numeric_limits<float>::max()));
    } else {
        CHECK_THROWS_WITH((run_on<T, D>(huge, {}, 0)), Catch::Contains("overflow"));
    }
}

// Shapes, contiguity, overlap and workspace are checked before anything runs.
template <class D>
void checks_arguments(std::size_t expected_workspace_bytes) {
    using M = GradMitigator<float, D>;
    Tensor<float, D> g(Shape{3, 10}), out(Shape{10}), wrong(Shape{9});
    const M m;
    CHECK(M::can_implement({g.cview(), out.view()}));
    CHECK_FALSE(M::can_implement({g.cview(), wrong.view()}));
    CHECK_THROWS_WITH(m({g.cview(), wrong.view()}), Catch::Contains("out must have shape [10]"));
    CHECK_THROWS_WITH(m({g.cview().reshape(Shape{30}), out.view()}), Catch::Contains("K x P"));
    CHECK_THROWS_WITH(m({g.cview().narrow(0, 0, 0), out.view()}), Catch::Contains("non-empty"));
    Tensor<float, D> gt(Shape{10, 3});
    CHECK_THROWS_WITH(m({gt.cview().transpose(0, 1), out.view()}), Catch::Contains("contiguous"));
    // out may be a row of grads, but not straddle rows.
    CHECK(M::can_implement({g.cview(), g.view().select(0, 1)}));
    Tensor<float, D> flat(Shape{40});
    CHECK_FALSE(M::can_implement({flat.cview().reshape(Shape{4, 10}).narrow(0, 0, 3), flat.view().narrow(0, 5, 10)}));
    CHECK(M::workspace_size({g.cview(), out.view()}) == expected_workspace_bytes);
    CHECK_THROWS_WITH(m.run({g.cview(), out.view()}, nullptr), Catch::Contains("workspace"));
}

// Rows with a pitch give bitwise the dense result, also written in place into one of the rows.
template <class T, class D>
void strided_rows_and_in_place() {
    using Dev = SurgeryDevice<D>;
    for (index_t K : {4, 10}) {
        const index_t P = 70000, pitch = P + 13;
        const Tensor<T> dense = conflicting_gradients<T>(K, P, 8);
        Tensor<T> arena(Shape{K, pitch});
        for (index_t k = 0; k < K; ++k)
            for (index_t p = 0; p < P; ++p) arena(k, p) = dense(k, p);
        const Tensor<T, D> dense_device = Dev::upload(dense);
        Tensor<T, D> arena_device = Dev::upload(arena);
        const ConstView<T, D> rows = arena_device.cview().narrow(1, 0, P);
        Tensor<T, D> expected(Shape{P}), out(Shape{P});
        const GradMitigator<T, D> mitigator({.seed = 4});
        mitigator({dense_device.cview(), expected.view(), 1});
        mitigator({rows, out.view(), 1});
        const Tensor<T> expected_host = Dev::download(expected);
        INFO("K = " << K);
        CHECK(same_bits(Dev::download(out), expected_host));
        // In place, into row 2 of the arena.
        mitigator({rows, arena_device.view().select(0, 2).narrow(0, 0, P), 1});
        const Tensor<T> after = Dev::download(arena_device);
        CHECK(std::memcmp(after.data() + 2 * pitch, expected_host.data(), sizeof(T) * P) == 0);
        CHECK(std::memcmp(after.data() + 3 * pitch, arena.data() + 3 * pitch, sizeof(T) * pitch) == 0);  // untouched
    }
}

}  // namespace gcl::testing::mitigate_cases
