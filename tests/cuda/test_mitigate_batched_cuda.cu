// BatchedGradMitigator<T, cuda> (N x K x D): the shared bodies
// (tests/surgery/mitigate_batched_cases.hpp) against the reference and the CPU kernel.
#include <catch2/catch.hpp>

#include "../surgery/mitigate_batched_cases.hpp"
#include "surgery_cuda_device.hpp"

namespace batched_cases = gcl::testing::mitigate_batched_cases;

TEMPLATE_TEST_CASE("CudaBatchedGradMitigator matches the CPU kernel and the reference per sample", "[cuda][surgery]",
                   float, double) {
    batched_cases::matches_reference<TestType, gcl::cuda>({1, 2, 3, 4, 5, 6, 7, 8, 11}, {1, 5, 64, 129, 300},
                                                          {1, 33, 257});
}

TEST_CASE("CudaBatchedGradMitigator: sample_ids seed each sample's orders as its index in a larger batch",
          "[cuda][surgery]") {
    batched_cases::sample_ids_seed_the_orders<gcl::cuda>();
}

TEST_CASE("CudaBatchedGradMitigator: sample n is the K x P mitigation with sample index n", "[cuda][surgery]") {
    batched_cases::one_sample_is_the_matrix_form<gcl::cuda>();
}

TEMPLATE_TEST_CASE("CudaBatchedGradMitigator repeats bit for bit, on any stream", "[cuda][surgery]", float, double) {
    batched_cases::repeats_on_any_stream<TestType, gcl::cuda>();
}

TEST_CASE("CudaBatchedGradMitigator raises gcl::Error on bad input", "[cuda][surgery]") {
    // The N Gram matrices (K x K doubles) and the weights (K values of T) per sample.
    batched_cases::rejects_bad_input<gcl::cuda>(40 * 9 * sizeof(double) + 40 * 3 * sizeof(float));
}
