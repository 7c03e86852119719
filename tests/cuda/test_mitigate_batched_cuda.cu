// CudaBatchedGradMitigator (N x K x D) against the CPU BatchedGradMitigator and the reference.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "../surgery/surgery_data.hpp"
#include "gcl/cuda.cuh"
#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/mitigate_batched.hpp"
#include "gcl/surgery/reference/mitigate.hpp"
#include "surgery_cuda_util.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::surgery::MitigateOptions;
using gcl::surgery::MitigateReport;
using gcl::surgery::Reduction;

namespace {

// Label-major K x N x D gradients, as the losses produce them (the kernels read them transposed).
template <class T>
Tensor<T> label_major(index_t K, index_t N, index_t D, std::uint64_t seed) {
    Tensor<T> g = gcl::testing::conflicting_gradients<T>(K, N * D, seed);
    g.reshape(Shape{K, N, D});
    return g;
}

}  // namespace

TEMPLATE_TEST_CASE("CudaBatchedGradMitigator matches the CPU kernel and the reference per sample", "[cuda][surgery]",
                   float, double) {
    using T = TestType;
    const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
    const double wtol = std::is_same_v<T, float> ? 1e-4 : 1e-10;
    index_t projected = 0, cases = 0;
    for (index_t K : {1, 2, 3, 4, 5, 6, 7, 8, 11})
        for (index_t D : {1, 5, 64, 129, 300})
            for (index_t N : {1, 33, 257}) {
                const Tensor<T> g = label_major<T>(K, N, D, static_cast<std::uint64_t>(10 * K + D + N));
                const gcl::ConstView<T> per_sample = g.cview().transpose(0, 1);
                const Tensor<T, gcl::cuda> g_device = gcl::to_device(g);
                const MitigateOptions options{.reduction = K % 2 ? Reduction::sum : Reduction::mean, .seed = 3};
                Tensor<T> cpu(Shape{N, D}), ref(Shape{N, D});
                Tensor<T, gcl::cuda> out_device(Shape{N, D});
                const MitigateReport rc = gcl::surgery::mitigate_batched<T>(per_sample, cpu.view(), options, 5);
                const MitigateReport rr = gcl::surgery::reference::mitigate_batched<T>(per_sample, ref.view(), options, 5);
                const MitigateReport r =
                    gcl::surgery::mitigate_batched<T>(g_device.cview().transpose(0, 1), out_device.view(), options, 5);
                const Tensor<T> out = gcl::to_host(out_device);
                INFO("K = " << K << ", D = " << D << ", N = " << N);
                CHECK(r.projections == rc.projections);
                CHECK(r.projections == rr.projections);
                CHECK(r.conflicting_pairs == rc.conflicting_pairs);
                CHECK(r.skipped_rows == rc.skipped_rows);
                REQUIRE(r.weights.shape() == Shape{N, K});
                double worst_weight = 0, worst_out = 0;
                for (index_t n = 0; n < N; ++n) {
                    for (index_t k = 0; k < K; ++k)
                        worst_weight = std::max(worst_weight, std::abs(r.weights(n, k) - rc.weights(n, k)) /
                                                                  (wtol * std::max(1.0, std::abs(rc.weights(n, k)))));
                    for (index_t d = 0; d < D; ++d) {
                        double scale = 0;
                        for (index_t k = 0; k < K; ++k) scale += std::abs(r.weights(n, k) * double(per_sample(n, k, d)));
                        worst_out = std::max(worst_out, std::abs(double(out(n, d)) - double(ref(n, d))) / (rtol * scale + 1e-30));
                        worst_out = std::max(worst_out,
                                             std::abs(double(out(n, d)) - double(cpu(n, d))) / (2 * rtol * scale + 1e-30));
                    }
                }
                CHECK(worst_weight <= 1.0);
                CHECK(worst_out <= 1.0);
                projected += r.projections;
                ++cases;
            }
    CHECK(cases == 9 * 5 * 3);
    CHECK(projected > 100);
}

TEST_CASE("CudaBatchedGradMitigator: sample n is the K x P mitigation with sample index n", "[cuda][surgery]") {
    const index_t K = 4, D = 300;
    const Tensor<double> g = gcl::testing::conflicting_gradients<double>(K, D, 21);
    const Tensor<double, gcl::cuda> g_device = gcl::to_device(g);
    Tensor<double, gcl::cuda> one(Shape{D}), batched(Shape{1, D});
    const MitigateReport r1 = gcl::surgery::mitigate<double>(g_device.cview(), one.view(), {.seed = 8}, 2);
    const MitigateReport rb =
        gcl::surgery::mitigate_batched<double>(g_device.cview().reshape(Shape{1, K, D}), batched.view(), {.seed = 8}, 2);
    CHECK(r1.projections == rb.projections);
    const Tensor<double> a = gcl::to_host(one), b = gcl::to_host(batched);
    for (index_t d = 0; d < D; ++d) CHECK(b(0, d) == Approx(a(d)).epsilon(1e-12).margin(1e-12));
}

TEMPLATE_TEST_CASE("CudaBatchedGradMitigator repeats bit for bit, on any stream", "[cuda][surgery]", float, double) {
    using T = TestType;
    const index_t K = 6, N = 1000, D = 200;
    const Tensor<T> g = label_major<T>(K, N, D, 77);
    const Tensor<T, gcl::cuda> g_device = gcl::to_device(g);
    const auto per_sample = g_device.cview().transpose(0, 1);
    Tensor<T, gcl::cuda> out1(Shape{N, D}), out2(Shape{N, D});
    const MitigateReport r1 = gcl::surgery::mitigate_batched<T>(per_sample, out1.view(), {.seed = 1}, 9);
    const gcl::testing::NonBlockingStream stream;
    const MitigateReport r2 = gcl::surgery::mitigate_batched<T>(per_sample, out2.view(), {.seed = 1}, 9, stream.get());
    CHECK(r1.projections > 0);
    CHECK(r1.projections == r2.projections);
    CHECK(gcl::testing::same_bits(r1.weights, r2.weights));
    CHECK(gcl::testing::same_bits(gcl::to_host(out1), gcl::to_host(out2)));
}

TEST_CASE("CudaBatchedGradMitigator raises gcl::Error on bad input", "[cuda][surgery]") {
    Tensor<float> g = gcl::testing::conflicting_gradients<float>(3, 40 * 8, 1);
    g.reshape(Shape{40, 3, 8});
    g(17, 1, 5) = std::numeric_limits<float>::quiet_NaN();
    g(30, 0, 2) = std::numeric_limits<float>::infinity();  // a later sample: the first bad one is named
    const Tensor<float, gcl::cuda> gd = gcl::to_device(g);
    Tensor<float, gcl::cuda> out(Shape{40, 8});
    CHECK_THROWS_WITH(gcl::surgery::mitigate_batched<float>(gd.cview(), out.view()),
                      Catch::Contains("sample 17") && Catch::Contains("row 1") && Catch::Contains("column 5"));
    Tensor<float, gcl::cuda> wrong(Shape{40, 7});
    CHECK_THROWS_WITH(gcl::surgery::mitigate_batched<float>(gd.cview(), wrong.view()),
                      Catch::Contains("out must have shape [40, 8]"));
    CHECK_THROWS_WITH(gcl::surgery::mitigate_batched<float>(gd.cview().reshape(Shape{40, 24}), out.view()),
                      Catch::Contains("N x K x D"));
    Tensor<float, gcl::cuda> writable = gcl::to_device(g);
    CHECK_THROWS_WITH(gcl::surgery::mitigate_batched<float>(writable.cview(), writable.view().select(1, 0)),
                      Catch::Contains("overlaps"));
    using B = gcl::surgery::CudaBatchedGradMitigator<float>;
    CHECK(B::workspace_size({gd.cview(), out.view()}) == 40 * 9 * sizeof(double) + 40 * 3 * sizeof(float));
    CHECK_THROWS_WITH(B().run({gd.cview(), out.view()}, nullptr), Catch::Contains("workspace"));
    // Overflowing dot products of a double sample.
    Tensor<double> huge(Shape{2, 2, 4}, std::sqrt(std::numeric_limits<double>::max()));
    const Tensor<double, gcl::cuda> huge_device = gcl::to_device(huge);
    Tensor<double, gcl::cuda> huge_out(Shape{2, 4});
    CHECK_THROWS_WITH(gcl::surgery::mitigate_batched<double>(huge_device.cview(), huge_out.view()),
                      Catch::Contains("sample 0") && Catch::Contains("overflow"));
}
