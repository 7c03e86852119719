// GradMitigator<T, cuda> (K x P): the shared bodies (tests/surgery/mitigate_cases.hpp) against
// the reference PCGrad loop and the CPU kernel.
#include <catch2/catch.hpp>

#include <utility>
#include <vector>

#include "../surgery/mitigate_cases.hpp"
#include "surgery_cuda_device.hpp"

using gcl::index_t;
namespace mitigate_cases = gcl::testing::mitigate_cases;

TEMPLATE_TEST_CASE("CudaGradMitigator matches the CPU kernel and the reference on random shapes", "[cuda][surgery]",
                   float, double) {
    // Around the chunk (8192 columns) and block (256 threads) boundaries, and large.
    const std::vector<index_t> sizes = {1,    3,     255,   256,    257,     8191,   8192,
                                        8193, 24593, 32773, 100003, 1000000, 1500007};
    // Keep the run short: even K at 10^6, K = 2 and 8 above.
    const auto keep = [](index_t K, index_t P) {
        return !(P == 1000000 && K % 2 == 1 && K > 1) && !(P == 1500007 && K != 2 && K != 8);
    };
    mitigate_cases::random_shapes<TestType, gcl::cuda>(sizes, keep, 150);
}

TEMPLATE_TEST_CASE("CudaGradMitigator with more than eight rows (Gram sweeps over groups of rows)", "[cuda][surgery]",
                   float, double) {
    mitigate_cases::more_than_eight_rows<TestType, gcl::cuda>();
}

TEST_CASE("CudaGradMitigator: a hand-computed pair", "[cuda][surgery]") {
    mitigate_cases::hand_computed_pair<gcl::cuda>();
}

TEMPLATE_TEST_CASE("CudaGradMitigator: with K = 2 the projected gradients no longer conflict", "[cuda][surgery]", float,
                   double) {
    mitigate_cases::two_rows_no_longer_conflict<TestType, gcl::cuda>();
}

TEMPLATE_TEST_CASE("CudaGradMitigator: without conflicts the result is the plain sum, bitwise", "[cuda][surgery]",
                   float, double) {
    mitigate_cases::plain_sum_without_conflicts<TestType, gcl::cuda>();
}

TEMPLATE_TEST_CASE("CudaGradMitigator repeats bit for bit, on any stream and with any workspace contents",
                   "[cuda][surgery]", float, double) {
    for (auto [K, P] : {std::pair<index_t, index_t>{3, 1000003}, {8, 300001}, {11, 70001}})
        mitigate_cases::repeats_exactly<TestType, gcl::cuda>(K, P, static_cast<std::uint64_t>(K + P), 7);
}

TEMPLATE_TEST_CASE("CudaGradMitigator skips zero and tiny rows as projection targets", "[cuda][surgery]", float,
                   double) {
    mitigate_cases::skips_zero_and_tiny_rows<TestType, gcl::cuda>();
}

TEMPLATE_TEST_CASE("CudaGradMitigator raises gcl::Error on NaN, Inf and overflow", "[cuda][surgery]", float, double) {
    mitigate_cases::rejects_non_finite_values<TestType, gcl::cuda>();
}

TEST_CASE("CudaGradMitigator checks its arguments", "[cuda][surgery]") {
    // One chunk of 6 pair sums, then Q (9 doubles); no weight buffer for K <= 8.
    mitigate_cases::checks_arguments<gcl::cuda>((6 + 9) * sizeof(double));
}

TEMPLATE_TEST_CASE("CudaGradMitigator reads strided rows and may write into one of them", "[cuda][surgery]", float,
                   double) {
    mitigate_cases::strided_rows_and_in_place<TestType, gcl::cuda>();
}
