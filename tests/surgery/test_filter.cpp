// GradFilter on the cpu: the shared bodies (filter_cases.hpp) against the full-sort reference.
#include <catch2/catch.hpp>

#include "filter_cases.hpp"

namespace filter_cases = gcl::testing::filter_cases;

TEMPLATE_TEST_CASE("GradFilter matches the full-sort reference", "[surgery][filter]", float, double) {
    filter_cases::matches_reference<TestType, gcl::cpu>({1, 7, 64}, {1, 5, 200});
}

TEMPLATE_TEST_CASE("GradFilter on a million heavily tied pairs", "[surgery][filter]", float, double) {
    filter_cases::million_tied_pairs<TestType, gcl::cpu>();
}

TEST_CASE("GradFilter: hand-checked selections and tie-breaking", "[surgery][filter]") {
    filter_cases::hand_checked_selections<gcl::cpu>();
}

TEST_CASE("GradFilter: signed zeros tie like equal values", "[surgery][filter]") { filter_cases::signed_zeros_tie<gcl::cpu>(); }

TEMPLATE_TEST_CASE("GradFilter reads padded rows and strided weights", "[surgery][filter]", float, double) {
    filter_cases::padded_rows_and_strided_weights<TestType, gcl::cpu>();
}

TEST_CASE("GradFilter repeats exactly", "[surgery][filter]") { filter_cases::repeats_on_any_stream<gcl::cpu>(); }

TEST_CASE("GradFilter raises gcl::Error on bad input", "[surgery][filter]") { filter_cases::rejects_bad_input<gcl::cpu>(); }
