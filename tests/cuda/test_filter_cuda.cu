// GradFilter<T, cuda>: the shared bodies (tests/surgery/filter_cases.hpp), identical selections
// to the full-sort reference and the CPU kernel.
#include <catch2/catch.hpp>

#include "../surgery/filter_cases.hpp"
#include "surgery_cuda_device.hpp"

namespace filter_cases = gcl::testing::filter_cases;

TEMPLATE_TEST_CASE("CudaGradFilter selects exactly what the CPU kernel and the reference select", "[cuda][surgery]",
                   float, double) {
    filter_cases::matches_reference<TestType, gcl::cuda>({1, 7, 64, 300}, {1, 5, 200, 1000});
}

TEMPLATE_TEST_CASE("CudaGradFilter on a million heavily tied pairs", "[cuda][surgery]", float, double) {
    filter_cases::million_tied_pairs<TestType, gcl::cuda>();
}

TEST_CASE("CudaGradFilter: hand-checked selections and tie-breaking", "[cuda][surgery]") {
    filter_cases::hand_checked_selections<gcl::cuda>();
}

TEST_CASE("CudaGradFilter: signed zeros tie like equal values", "[cuda][surgery]") {
    filter_cases::signed_zeros_tie<gcl::cuda>();
}

TEMPLATE_TEST_CASE("CudaGradFilter reads padded rows and strided weights", "[cuda][surgery]", float, double) {
    filter_cases::padded_rows_and_strided_weights<TestType, gcl::cuda>();
}

TEST_CASE("CudaGradFilter repeats exactly, on any stream", "[cuda][surgery]") {
    filter_cases::repeats_on_any_stream<gcl::cuda>();
}

TEST_CASE("CudaGradFilter raises gcl::Error on bad input", "[cuda][surgery]") {
    filter_cases::rejects_bad_input<gcl::cuda>();
}
