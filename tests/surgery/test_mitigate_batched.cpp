// BatchedGradMitigator on the cpu: the shared bodies (mitigate_batched_cases.hpp) against the reference.
#include <catch2/catch.hpp>

#include <vector>

#include "mitigate_batched_cases.hpp"

using gcl::index_t;
namespace batched_cases = gcl::testing::mitigate_batched_cases;

TEMPLATE_TEST_CASE("BatchedGradMitigator matches the reference per sample", "[surgery][mitigate]", float, double) {
    batched_cases::matches_reference<TestType, gcl::cpu>({1, 2, 3, 4, 5, 6, 7, 8}, {1, 5, 64, 130}, {1, 33});
}

TEST_CASE("BatchedGradMitigator: sample_ids seed each sample's orders as its index in a larger batch",
          "[surgery][mitigate]") {
    batched_cases::sample_ids_seed_the_orders<gcl::cpu>();
}

TEST_CASE("BatchedGradMitigator: sample n is the K x P mitigation with sample index n", "[surgery][mitigate]") {
    batched_cases::one_sample_is_the_matrix_form<gcl::cpu>();
}

TEMPLATE_TEST_CASE("BatchedGradMitigator repeats bit for bit", "[surgery][mitigate]", float, double) {
    batched_cases::repeats_on_any_stream<TestType, gcl::cpu>();
}

TEST_CASE("BatchedGradMitigator raises gcl::Error on bad input", "[surgery][mitigate]") {
    // The Gram matrices go straight to host memory: no workspace.
    batched_cases::rejects_bad_input<gcl::cpu>(0);
}
