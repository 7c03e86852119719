// CudaGradMitigator (K x P) against the CPU GradMitigator and the reference PCGrad loop.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "../surgery/surgery_data.hpp"
#include "gcl/cuda.cuh"
#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/reference/mitigate.hpp"
#include "surgery_cuda_util.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::surgery::MitigateOptions;
using gcl::surgery::MitigateReport;
using gcl::surgery::Reduction;

namespace {

template <class T>
struct CudaRun {
    Tensor<T> out;
    MitigateReport report;
};

// The CUDA mitigation of a host matrix: copied to the device, run, copied back.
template <class T>
CudaRun<T> run_cuda(const Tensor<T>& g, const MitigateOptions& options, std::uint64_t step) {
    const Tensor<T, gcl::cuda> device_g = gcl::to_device(g);
    Tensor<T, gcl::cuda> device_out(Shape{g.dim(1)});
    MitigateReport report = gcl::surgery::mitigate<T>(device_g.cview(), device_out.view(), options, step);
    return {gcl::to_host(device_out), std::move(report)};
}

// Runs g (K x P) on the GPU, the CPU kernel and the reference, and checks that they agree:
// the same counts; Q within 1e-9 sqrt(Q_ii Q_jj) of a sequential double sum and exactly
// symmetric; weights and coefficients close to the CPU kernel's; outputs within rtol (of the
// size of the added terms) of the reference and of the CPU kernel. Returns the number of projections.
template <class T>
index_t check_against_cpu(const Tensor<T>& g, const MitigateOptions& options, std::uint64_t step) {
    const double rtol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
    const double wtol = std::is_same_v<T, float> ? 1e-4 : 1e-10;
    const index_t K = g.dim(0), P = g.dim(1);
    Tensor<T> cpu(Shape{P}), ref(Shape{P});
    const MitigateReport rc = gcl::surgery::mitigate<T>(g.cview(), cpu.view(), options, step);
    const MitigateReport rr = gcl::surgery::reference::mitigate<T>(g.cview(), ref.view(), options, step);
    const CudaRun<T> gpu = run_cuda(g, options, step);
    const MitigateReport& r = gpu.report;

    CHECK(r.projections == rc.projections);
    CHECK(r.projections == rr.projections);
    CHECK(r.conflicting_pairs == rc.conflicting_pairs);
    CHECK(r.conflicting_pairs == rr.conflicting_pairs);
    CHECK(r.skipped_rows == rc.skipped_rows);
    REQUIRE(r.gram.shape() == Shape{K, K});
    REQUIRE(r.weights.shape() == Shape{K});
    REQUIRE(r.coefficients.shape() == Shape{K, K});

    const Tensor<double> exact = gcl::testing::host_gram(g);
    double worst_gram = 0, worst_weight = 0, worst_coefficient = 0;
    for (index_t i = 0; i < K; ++i) {
        for (index_t j = 0; j < K; ++j) {
            CHECK(r.gram(i, j) == r.gram(j, i));
            const double scale = std::sqrt(exact(i, i) * exact(j, j));
            worst_gram = std::max(worst_gram, std::abs(r.gram(i, j) - exact(i, j)) / (1e-9 * scale + 1e-300));
            worst_coefficient = std::max(worst_coefficient, std::abs(r.coefficients(i, j) - rc.coefficients(i, j)) /
                                                                (wtol * std::max(1.0, std::abs(rc.coefficients(i, j)))));
        }
        worst_weight =
            std::max(worst_weight, std::abs(r.weights(i) - rc.weights(i)) / (wtol * std::max(1.0, std::abs(rc.weights(i)))));
    }
    CHECK(worst_gram <= 1.0);
    CHECK(worst_weight <= 1.0);
    CHECK(worst_coefficient <= 1.0);
    CHECK(gcl::testing::worst_violation(gpu.out, ref, g, r.weights, rtol, 1e-30) <= 1.0);
    CHECK(gcl::testing::worst_violation(gpu.out, cpu, g, rc.weights, 2 * rtol, 1e-30) <= 1.0);
    return r.projections;
}

}  // namespace

TEMPLATE_TEST_CASE("CudaGradMitigator matches the CPU kernel and the reference on random shapes", "[cuda][surgery]",
                   float, double) {
    using T = TestType;
    // Around the chunk (8192 columns) and block (256 threads) boundaries, and large.
    const std::vector<index_t> sizes = {1,     3,     255,    256,         257,    8191,    8192,
                                        8193,  24593, 32773,  100003,      1000000, 1500007};
    index_t cases = 0, projected = 0;
    for (index_t K = 1; K <= 8; ++K)
        for (index_t P : sizes) {
            if (P == 1000000 && K % 2 == 1 && K > 1) continue;  // keep the run short: even K at 10^6
            if (P == 1500007 && K != 2 && K != 8) continue;
            for (Reduction reduction : {Reduction::sum, Reduction::mean}) {
                const std::uint64_t seed = static_cast<std::uint64_t>(100 * K + P % 97 + (reduction == Reduction::mean));
                const Tensor<T> g = gcl::testing::conflicting_gradients<T>(K, P, seed);
                INFO("K = " << K << ", P = " << P << ", reduction " << (reduction == Reduction::sum ? "sum" : "mean"));
                projected += check_against_cpu(g, {.reduction = reduction, .seed = seed * 3 + 1},
                                               static_cast<std::uint64_t>(K + P)) > 0;
                ++cases;
            }
        }
    CHECK(cases > 150);
    CHECK(projected > cases / 2);  // the data really exercised the projections
}

TEMPLATE_TEST_CASE("CudaGradMitigator with more than eight rows (Gram sweeps over groups of rows)", "[cuda][surgery]",
                   float, double) {
    using T = TestType;
    index_t projected = 0;
    for (index_t K : {9, 12, 13, 17})
        for (index_t P : {1000, 100003})
            for (Reduction reduction : {Reduction::sum, Reduction::mean}) {
                const Tensor<T> g = gcl::testing::conflicting_gradients<T>(K, P, static_cast<std::uint64_t>(K * P));
                INFO("K = " << K << ", P = " << P);
                projected += check_against_cpu(g, {.reduction = reduction, .seed = 5}, 3);
            }
    CHECK(projected > 0);
}

TEST_CASE("CudaGradMitigator: a hand-computed pair", "[cuda][surgery]") {
    // g0 = (1, 0), g1 = (-1, 1): g0' = g0 + g1 / 2 = (0.5, 0.5), g1' = g1 + g0 = (0, 1); w = (2, 1.5).
    const Tensor<double> g = Tensor<double>::from(Shape{2, 2}, {1, 0, -1, 1});
    const CudaRun<double> run = run_cuda(g, {}, 0);
    CHECK(run.out(0) == 0.5);
    CHECK(run.out(1) == 1.5);
    CHECK(run.report.gram(0, 0) == 1.0);
    CHECK(run.report.gram(0, 1) == -1.0);
    CHECK(run.report.gram(1, 1) == 2.0);
    CHECK(run.report.weights(0) == 2.0);
    CHECK(run.report.weights(1) == 1.5);
    CHECK(run.report.conflicting_pairs == 1);
    CHECK(run.report.projections == 2);
}

TEMPLATE_TEST_CASE("CudaGradMitigator repeats bit for bit, on any stream and with any workspace contents",
                   "[cuda][surgery]", float, double) {
    using T = TestType;
    for (auto [K, P] : {std::pair<index_t, index_t>{3, 1000003}, {8, 300001}, {11, 70001}}) {
        INFO("K = " << K << ", P = " << P);
        const Tensor<T> g = gcl::testing::conflicting_gradients<T>(K, P, static_cast<std::uint64_t>(K + P));
        const Tensor<T, gcl::cuda> dg = gcl::to_device(g);
        const MitigateOptions options{.reduction = Reduction::sum, .seed = 11};
        Tensor<T, gcl::cuda> out1(Shape{P}), out2(Shape{P}), out3(Shape{P});
        const MitigateReport r1 = gcl::surgery::mitigate<T>(dg.cview(), out1.view(), options, 7);
        const MitigateReport r2 = gcl::surgery::mitigate<T>(dg.cview(), out2.view(), options, 7);

        // The operator's run on a non-blocking stream, with workspace full of garbage.
        const gcl::surgery::CudaGradMitigator<T> mitigator(options);
        const typename gcl::surgery::CudaGradMitigator<T>::Arguments args{dg.cview(), out3.view(), 7};
        gcl::Buffer<double, gcl::cuda> workspace(mitigator.workspace_size(args) / sizeof(double) + 1);
        GCL_CUDA_CHECK(cudaMemset(workspace.data(), 0xff, workspace.bytes()));
        GCL_CUDA_CHECK(cudaDeviceSynchronize());
        const gcl::testing::NonBlockingStream stream;
        const MitigateReport r3 = mitigator.run(args, workspace.data(), stream.get());
        GCL_CUDA_CHECK(cudaStreamSynchronize(stream.get()));

        CHECK(gcl::testing::same_bits(gcl::to_host(out1), gcl::to_host(out2)));
        CHECK(gcl::testing::same_bits(gcl::to_host(out1), gcl::to_host(out3)));
        CHECK(gcl::testing::same_bits(r1.gram, r2.gram));
        CHECK(gcl::testing::same_bits(r1.gram, r3.gram));
        CHECK(gcl::testing::same_bits(r1.weights, r3.weights));
    }
}

TEMPLATE_TEST_CASE("CudaGradMitigator: without conflicts the result is the plain sum, bitwise", "[cuda][surgery]",
                   float, double) {
    using T = TestType;
    const index_t P = 50001;
    for (index_t K : {1, 2, 3, 5, 8, 10}) {
        // Rows share one direction with a positive coefficient: every dot product is positive.
        Tensor<T> g = gcl::testing::conflicting_gradients<T>(K, P, static_cast<std::uint64_t>(K));
        Tensor<T> base(Shape{P});
        gcl::Rng rng(99);
        gcl::fill_normal<T>(base.view(), rng);
        for (index_t k = 0; k < K; ++k)
            for (index_t p = 0; p < P; ++p) g(k, p) = base(p) + T(0.1) * g(k, p);
        Tensor<T> expected(Shape{P});
        for (index_t p = 0; p < P; ++p) {
            T s = g(0, p);
            for (index_t k = 1; k < K; ++k) s += g(k, p);
            expected(p) = s;
        }
        INFO("K = " << K);
        const CudaRun<T> sum = run_cuda(g, {.reduction = Reduction::sum}, 0);
        CHECK(sum.report.conflicting_pairs == 0);
        CHECK(sum.report.projections == 0);
        CHECK(gcl::testing::same_bits(sum.out, expected));

        const CudaRun<T> mean = run_cuda(g, {.reduction = Reduction::mean}, 0);
        Tensor<T> cpu(Shape{P});
        const MitigateReport rc = gcl::surgery::mitigate<T>(g.cview(), cpu.view(), {.reduction = Reduction::mean});
        CHECK(gcl::testing::worst_violation(mean.out, cpu, g, rc.weights, std::is_same_v<T, float> ? 4e-5 : 2e-12,
                                            1e-30) <= 1.0);
    }
}

TEMPLATE_TEST_CASE("CudaGradMitigator skips zero and tiny rows as projection targets", "[cuda][surgery]", float,
                   double) {
    using T = TestType;
    const index_t P = 40000;
    Tensor<T> g = gcl::testing::conflicting_gradients<T>(4, P, 5);
    for (index_t p = 0; p < P; ++p) {
        g(1, p) = T(0);                                     // a meta label without positives
        g(3, p) = static_cast<T>(1e-13 * double(g(3, p)));  // noise-level row
    }
    const CudaRun<T> run = run_cuda(g, {.seed = 2}, 0);
    CHECK(run.report.skipped_rows == 2);
    for (index_t i = 0; i < 4; ++i) {
        if (i != 1) CHECK(run.report.coefficients(i, 1) == 0.0);
        if (i != 3) CHECK(run.report.coefficients(i, 3) == 0.0);
    }
    check_against_cpu(g, {.seed = 2}, 0);

    const Tensor<T> zeros(Shape{3, 100});
    const CudaRun<T> zero_run = run_cuda(zeros, {}, 0);
    CHECK(zero_run.report.skipped_rows == 3);
    CHECK(zero_run.report.projections == 0);
    for (index_t p = 0; p < 100; ++p) CHECK(zero_run.out(p) == T(0));
}

TEMPLATE_TEST_CASE("CudaGradMitigator raises gcl::Error on NaN and Inf, naming row and column", "[cuda][surgery]",
                   float, double) {
    using T = TestType;
    const index_t P = 50000;
    for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                  -std::numeric_limits<T>::infinity()})
        for (auto [row, column] : {std::pair<index_t, index_t>{2, 41234}, {0, 0}, {1, P - 1}}) {
            Tensor<T> g = gcl::testing::conflicting_gradients<T>(3, P, 1);
            g(row, column) = bad;
            const std::string where = "row " + std::to_string(row);
            const std::string at = "column " + std::to_string(column);
            CHECK_THROWS_WITH(run_cuda(g, {}, 0), Catch::Contains(where) && Catch::Contains(at));
        }
}

TEST_CASE("CudaGradMitigator: overflowing dot products", "[cuda][surgery]") {
    // Double gradients whose squared norms overflow raise an error, as on the CPU.
    const index_t P = 50000;
    const Tensor<double> huge(Shape{2, P}, std::sqrt(std::numeric_limits<double>::max()));
    CHECK_THROWS_WITH(run_cuda(huge, {}, 0), Catch::Contains("overflow"));
    // Float gradients are summed in double on the GPU, so squares beyond the float range still combine.
    const Tensor<float> large(Shape{2, P}, std::sqrt(std::numeric_limits<float>::max()));
    const CudaRun<float> run = run_cuda(large, {}, 0);
    CHECK(std::isfinite(run.report.gram(0, 1)));
    for (index_t p = 0; p < P; ++p) REQUIRE(run.out(p) == 2 * std::sqrt(std::numeric_limits<float>::max()));
}

TEST_CASE("CudaGradMitigator checks its arguments", "[cuda][surgery]") {
    using M = gcl::surgery::CudaGradMitigator<float>;
    Tensor<float, gcl::cuda> g(Shape{3, 10}), out(Shape{10}), wrong(Shape{9});
    const M m;
    CHECK(M::can_implement({g.cview(), out.view()}));
    CHECK_FALSE(M::can_implement({g.cview(), wrong.view()}));
    CHECK_THROWS_WITH(m({g.cview(), wrong.view()}), Catch::Contains("out must have shape [10]"));
    CHECK_THROWS_WITH(m({g.cview().reshape(Shape{30}), out.view()}), Catch::Contains("K x P"));
    CHECK_THROWS_WITH(m({g.cview().narrow(0, 0, 0), out.view()}), Catch::Contains("non-empty"));
    Tensor<float, gcl::cuda> gt(Shape{10, 3});
    CHECK_THROWS_WITH(m({gt.cview().transpose(0, 1), out.view()}), Catch::Contains("contiguous"));
    // out may be a row of grads, but not straddle rows.
    CHECK(M::can_implement({g.cview(), g.view().select(0, 1)}));
    Tensor<float, gcl::cuda> flat(Shape{40});
    CHECK_FALSE(M::can_implement({flat.cview().reshape(Shape{4, 10}).narrow(0, 0, 3), flat.view().narrow(0, 5, 10)}));
    // One chunk of 6 pair sums, then Q (9 doubles); no weight buffer for K <= 8.
    CHECK(M::workspace_size({g.cview(), out.view()}) == (6 + 9) * sizeof(double));
    CHECK_THROWS_WITH(m.run({g.cview(), out.view()}, nullptr), Catch::Contains("workspace"));
}

TEMPLATE_TEST_CASE("CudaGradMitigator reads strided rows and may write into one of them", "[cuda][surgery]", float,
                   double) {
    using T = TestType;
    for (index_t K : {4, 10}) {
        const index_t P = 70000, pitch = P + 13;
        const Tensor<T> dense = gcl::testing::conflicting_gradients<T>(K, P, 8);
        Tensor<T> arena(Shape{K, pitch});
        for (index_t k = 0; k < K; ++k)
            for (index_t p = 0; p < P; ++p) arena(k, p) = dense(k, p);
        const Tensor<T, gcl::cuda> dense_device = gcl::to_device(dense);
        Tensor<T, gcl::cuda> arena_device = gcl::to_device(arena);
        const gcl::ConstView<T, gcl::cuda> rows = arena_device.cview().narrow(1, 0, P);
        Tensor<T, gcl::cuda> expected(Shape{P}), out(Shape{P});
        gcl::surgery::mitigate<T>(dense_device.cview(), expected.view(), {.seed = 4}, 1);
        gcl::surgery::mitigate<T>(rows, out.view(), {.seed = 4}, 1);
        const Tensor<T> expected_host = gcl::to_host(expected);
        INFO("K = " << K);
        CHECK(gcl::testing::same_bits(gcl::to_host(out), expected_host));
        // In place, into row 2 of the arena.
        gcl::surgery::mitigate<T>(rows, arena_device.view().select(0, 2).narrow(0, 0, P), {.seed = 4}, 1);
        const Tensor<T> after = gcl::to_host(arena_device);
        CHECK(std::memcmp(after.data() + 2 * pitch, expected_host.data(), sizeof(T) * P) == 0);
        CHECK(std::memcmp(after.data() + 3 * pitch, arena.data() + 3 * pitch, sizeof(T) * pitch) == 0);  // untouched
    }
}
