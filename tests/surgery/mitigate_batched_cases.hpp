#pragma once
// The test bodies of BatchedGradMitigator<T, D> (N x K x D), written once for every device: the
// CPU tests (test_mitigate_batched.cpp) instantiate them for gcl::cpu, the CUDA tests
// (test_mitigate_batched_cuda.cu) for gcl::cuda. Every body checks the device against the
// reference; on a device other than the cpu it also checks the device against the CPU kernel.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/mitigate_batched.hpp"
#include "gcl/surgery/reference/mitigate.hpp"
#include "surgery_data.hpp"
#include "surgery_device.hpp"

namespace gcl::testing::mitigate_batched_cases {

using surgery::BatchedGradMitigator;
using surgery::GradMitigator;
using surgery::MitigateOptions;
using surgery::MitigateReport;
using surgery::Reduction;

// Every (K, D, N) of the lists, label-major gradients read transposed: the counts and the output
// (within rtol of the size of the added terms) of the reference; on a device other than the cpu
// also the counts, weights and output of the CPU kernel.
template <class T, class Dev>
void matches_reference(const std::vector<index_t>& Ks, const std::vector<index_t>& Ds, const std::vector<index_t>& Ns) {
    using Device = SurgeryDevice<Dev>;
    const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
    index_t projected = 0, cases = 0;
    for (index_t K : Ks)
        for (index_t D : Ds)
            for (index_t N : Ns) {
                const Tensor<T> g = label_major<T>(K, N, D, static_cast<std::uint64_t>(10 * K + D + N));
                const ConstView<T> per_sample = g.cview().transpose(0, 1);
                const MitigateOptions options{.reduction = K % 2 ? Reduction::sum : Reduction::mean, .seed = 3};
                Tensor<T> ref(Shape{N, D});
                const MitigateReport rr = surgery::reference::mitigate_batched<T>(per_sample, ref.view(), options, 5);
                const Tensor<T, Dev> g_device = Device::upload(g);
                Tensor<T, Dev> out_device(Shape{N, D});
                // The one-call form: BatchedGradMitigator<T, Dev>'s operator() on the default stream.
                const MitigateReport r =
                    surgery::mitigate_batched(g_device.cview().transpose(0, 1), out_device.view(), options, 5);
                const Tensor<T> out = Device::download(out_device);
                INFO("K = " << K << ", D = " << D << ", N = " << N);
                CHECK(r.projections == rr.projections);
                CHECK(r.conflicting_pairs == rr.conflicting_pairs);
                CHECK(r.skipped_rows == rr.skipped_rows);
                REQUIRE(r.weights.shape() == Shape{N, K});
                CHECK(worst_batched_violation(out, ref, per_sample, r.weights, rtol, 1e-30) <= 1.0);
                if constexpr (!is_cpu<Dev>) {
                    const double wtol = std::is_same_v<T, float> ? 1e-4 : 1e-10;
                    Tensor<T> cpu_out(Shape{N, D});
                    const MitigateReport rc = surgery::mitigate_batched<T>(per_sample, cpu_out.view(), options, 5);
                    CHECK(r.projections == rc.projections);
                    CHECK(r.conflicting_pairs == rc.conflicting_pairs);
                    CHECK(r.skipped_rows == rc.skipped_rows);
                    double worst_weight = 0;
                    for (index_t n = 0; n < N; ++n)
                        for (index_t k = 0; k < K; ++k)
                            worst_weight = std::max(worst_weight, std::abs(r.weights(n, k) - rc.weights(n, k)) /
                                                                      (wtol * std::max(1.0, std::abs(rc.weights(n, k)))));
                    CHECK(worst_weight <= 1.0);
                    CHECK(worst_batched_violation(out, cpu_out, per_sample, r.weights, 2 * rtol, 1e-30) <= 1.0);
                }
                projected += r.projections;
                ++cases;
            }
    CHECK(cases == static_cast<index_t>(Ks.size() * Ds.size() * Ns.size()));
    CHECK(projected > 100);
}

// Rows 5..9 of a batch of 12, mitigated alone with their ids, equal the whole batch's rows.
template <class Dev>
void sample_ids_seed_the_orders() {
    using Device = SurgeryDevice<Dev>;
    const index_t K = 5, N = 12, D = 40, first = 5, count = 5;
    const Tensor<double> g = label_major<double>(K, N, D, 31);
    const Tensor<double, Dev> g_device = Device::upload(g);
    const Tensor<double, Dev> rows = Device::upload(Tensor<double>::copy_of(g.cview().narrow(1, first, count)));
    Tensor<double, Dev> whole(Shape{N, D}), part(Shape{count, D}), unseeded(Shape{count, D});
    const BatchedGradMitigator<double, Dev> mitigator({.seed = 4});
    const MitigateReport r = mitigator({g_device.cview().transpose(0, 1), whole.view(), 7});
    REQUIRE(r.projections > 0);
    std::vector<std::uint64_t> ids;
    for (index_t n = 0; n < count; ++n) ids.push_back(static_cast<std::uint64_t>(first + n));
    mitigator({rows.cview().transpose(0, 1), part.view(), 7, ids.data()});
    mitigator({rows.cview().transpose(0, 1), unseeded.view(), 7});
    const Tensor<double> whole_host = Device::download(whole), part_host = Device::download(part),
                         unseeded_host = Device::download(unseeded);
    double differs = 0;
    for (index_t n = 0; n < count; ++n)
        for (index_t d = 0; d < D; ++d) {
            CHECK(part_host(n, d) == whole_host(first + n, d));
            differs = std::max(differs, std::abs(unseeded_host(n, d) - whole_host(first + n, d)));
        }
    CHECK(differs > 1e-6);  // with K = 5 the orders matter
}

// Sample 0 uses the same orders as the K x P kernel (sample index 0).
template <class Dev>
void one_sample_is_the_matrix_form() {
    using Device = SurgeryDevice<Dev>;
    const index_t K = 4, D = 300;
    const Tensor<double> g = conflicting_gradients<double>(K, D, 21);
    const Tensor<double, Dev> g_device = Device::upload(g);
    Tensor<double, Dev> one(Shape{D}), batched(Shape{1, D});
    const MitigateReport r1 = GradMitigator<double, Dev>({.seed = 8})({g_device.cview(), one.view(), 2});
    const MitigateReport rb =
        BatchedGradMitigator<double, Dev>({.seed = 8})({g_device.cview().reshape(Shape{1, K, D}), batched.view(), 2});
    CHECK(r1.projections == rb.projections);
    const Tensor<double> a = Device::download(one), b = Device::download(batched);
    for (index_t d = 0; d < D; ++d) CHECK(b(0, d) == Approx(a(d)).epsilon(1e-12).margin(1e-12));
}

// Bit for bit the same result on the default stream and on another one.
template <class T, class Dev>
void repeats_on_any_stream() {
    using Device = SurgeryDevice<Dev>;
    const index_t K = 6, N = 1000, D = 200;
    const Tensor<T, Dev> g_device = Device::upload(label_major<T>(K, N, D, 77));
    const auto per_sample = g_device.cview().transpose(0, 1);
    Tensor<T, Dev> out1(Shape{N, D}), out2(Shape{N, D});
    const BatchedGradMitigator<T, Dev> mitigator({.seed = 1});
    const MitigateReport r1 = mitigator({per_sample, out1.view(), 9});
    const typename Device::SideStream stream;
    const MitigateReport r2 = mitigator({per_sample, out2.view(), 9}, stream.get());
    CHECK(r1.projections > 0);
    CHECK(r1.projections == r2.projections);
    CHECK(same_bits(r1.weights, r2.weights));
    CHECK(same_bits(Device::download(out1), Device::download(out2)));
}

// NaN and Inf name the first bad sample, row and column; shapes, overlap and workspace are
// checked; dot products that overflow raise gcl::Error naming the sample.
template <class Dev>
void rejects_bad_input(std::size_t expected_workspace_bytes) {
    using Device = SurgeryDevice<Dev>;
    using B = BatchedGradMitigator<float, Dev>;
    Tensor<float> g = conflicting_gradients<float>(3, 40 * 8, 1);
    g.reshape(Shape{40, 3, 8});
    g(17, 1, 5) = std::numeric_limits<float>::quiet_NaN();
    g(30, 0, 2) = std::numeric_limits<float>::infinity();  // a later sample: the first bad one is named
    const Tensor<float, Dev> gd = Device::upload(g);
    Tensor<float, Dev> out(Shape{40, 8});
    CHECK_THROWS_WITH(B()({gd.cview(), out.view()}),
                      Catch::Contains("sample 17") && Catch::Contains("row 1") && Catch::Contains("column 5"));
    Tensor<float, Dev> wrong(Shape{40, 7});
    CHECK_THROWS_WITH(B()({gd.cview(), wrong.view()}), Catch::Contains("out must have shape [40, 8]"));
    CHECK_THROWS_WITH(B()({gd.cview().reshape(Shape{40, 24}), out.view()}), Catch::Contains("N x K x D"));
    Tensor<float, Dev> writable = Device::upload(g);
    CHECK_THROWS_WITH(B()({writable.cview(), writable.view().select(1, 0)}), Catch::Contains("overlaps"));
    CHECK(B::workspace_size({gd.cview(), out.view()}) == expected_workspace_bytes);
    if (expected_workspace_bytes > 0)
        CHECK_THROWS_WITH(B().run({gd.cview(), out.view()}, nullptr), Catch::Contains("workspace"));
    // Overflowing dot products of a double sample.
    const Tensor<double, Dev> huge = Device::upload(Tensor<double>(Shape{2, 2, 4}, std::sqrt(std::numeric_limits<double>::max())));
    Tensor<double, Dev> huge_out(Shape{2, 4});
    CHECK_THROWS_WITH((BatchedGradMitigator<double, Dev>()({huge.cview(), huge_out.view()})),
                      Catch::Contains("sample 0") && Catch::Contains("overflow"));
}

}  // namespace gcl::testing::mitigate_batched_cases
