// GradMitigator on the cpu: the shared bodies (mitigate_cases.hpp) against the reference PCGrad
// loop, and what only the CPU has (thread counts) or only the host code does (projection orders).
#include <catch2/catch.hpp>

#include <omp.h>

#include <cstring>
#include <set>
#include <vector>

#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/projection_order.hpp"
#include "mitigate_cases.hpp"
#include "surgery_data.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace mitigate_cases = gcl::testing::mitigate_cases;

TEMPLATE_TEST_CASE("GradMitigator matches the reference PCGrad loop on random shapes", "[surgery][mitigate]", float,
                   double) {
    // Around the CPU pass's chunk of 32768 columns, and large.
    const std::vector<index_t> sizes = {1, 3, 17, 1000, 32768 + 5, 3 * 32768 + 123, 1000000};
    // Keep the run short: even K at the largest size.
    const auto keep = [](index_t K, index_t P) { return !(P == 1000000 && K % 2 == 1 && K > 1); };
    mitigate_cases::random_shapes<TestType, gcl::cpu>(sizes, keep, 90);
}

TEMPLATE_TEST_CASE("GradMitigator with more than eight rows", "[surgery][mitigate]", float, double) {
    mitigate_cases::more_than_eight_rows<TestType, gcl::cpu>();
}

TEST_CASE("GradMitigator: a hand-computed pair", "[surgery][mitigate]") { mitigate_cases::hand_computed_pair<gcl::cpu>(); }

TEMPLATE_TEST_CASE("GradMitigator: with K = 2 the projected gradients no longer conflict", "[surgery][mitigate]", float,
                   double) {
    mitigate_cases::two_rows_no_longer_conflict<TestType, gcl::cpu>();
}

TEMPLATE_TEST_CASE("GradMitigator: without conflicts the result is the plain sum (or mean)", "[surgery][mitigate]", float,
                   double) {
    mitigate_cases::plain_sum_without_conflicts<TestType, gcl::cpu>();
}

TEMPLATE_TEST_CASE("GradMitigator: the same seed repeats exactly, other seeds and steps change the order",
                   "[surgery][mitigate]", float, double) {
    mitigate_cases::repeats_exactly<TestType, gcl::cpu>(5, 200000, 77, 3);
}

TEST_CASE("GradMitigator: one thread gives bitwise the result of many", "[surgery][mitigate]") {
    // The Gram matrix is summed in fixed chunks, whatever the number of threads.
    const index_t K = 5, P = 200000;
    const Tensor<float> g = gcl::testing::conflicting_gradients<float>(K, P, 77);
    Tensor<float> a(Shape{P}), c(Shape{P});
    gcl::surgery::mitigate<float>(g.cview(), a.view(), {.seed = 11}, 3);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    gcl::surgery::mitigate<float>(g.cview(), c.view(), {.seed = 11}, 3);
    omp_set_num_threads(threads);
    CHECK(std::memcmp(a.data(), c.data(), sizeof(float) * P) == 0);
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
    mitigate_cases::skips_zero_and_tiny_rows<TestType, gcl::cpu>();
}

TEMPLATE_TEST_CASE("GradMitigator raises gcl::Error on NaN, Inf and overflow", "[surgery][mitigate]", float, double) {
    mitigate_cases::rejects_non_finite_values<TestType, gcl::cpu>();
}

TEST_CASE("GradMitigator checks its arguments", "[surgery][mitigate]") {
    // One chunk of 6 pair sums.
    mitigate_cases::checks_arguments<gcl::cpu>(6 * sizeof(double));
}

TEMPLATE_TEST_CASE("GradMitigator reads strided rows and may write into one of them", "[surgery][mitigate]", float,
                   double) {
    mitigate_cases::strided_rows_and_in_place<TestType, gcl::cpu>();
}
