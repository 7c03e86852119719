#pragma once
// Comparisons of host tensors or views: within a tolerance (the element type's by default;
// NaN equal to NaN) or bit for bit, failing with the first and the worst mismatch.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "gcl/core/tensor.hpp"
#include "gcl/testing/tolerance.hpp"

namespace gcl_test {

// The host view of a tensor or view.
template <class A>
gcl::ConstView<typename A::value_type> view_of(const A& a) {
    return gcl::ConstView<typename A::value_type>(a);
}

// Every element of `actual` within rtol / atol of `expected` (same shape).
template <class A, class E>
void require_close(const A& actual_in, const E& expected_in,
                   double rtol = gcl::testing::tolerance<typename A::value_type>::rtol,
                   double atol = gcl::testing::tolerance<typename A::value_type>::atol, const std::string& what = "") {
    const auto actual = view_of(actual_in);
    const auto expected = view_of(expected_in);
    INFO(what);
    REQUIRE(actual.shape() == expected.shape());
    gcl::index_t mismatches = 0, first = -1;
    double worst = 0;
    for (gcl::index_t i = 0; i < actual.numel(); ++i) {
        const double a = static_cast<double>(actual.data()[i]), e = static_cast<double>(expected.data()[i]);
        const bool same_nan = std::isnan(a) && std::isnan(e);
        if (!same_nan && !gcl::testing::close(a, e, rtol, atol)) {
            if (first < 0) first = i;
            ++mismatches;
            worst = std::max(worst, std::abs(a - e));
        }
    }
    if (mismatches > 0) {
        std::ostringstream msg;
        msg.precision(10);
        msg << what << (what.empty() ? "" : ": ") << mismatches << " of " << actual.numel() << " elements of shape "
            << actual.shape() << " differ; first at flat index " << first << ": got "
            << static_cast<double>(actual.data()[first]) << ", expected " << static_cast<double>(expected.data()[first])
            << ", worst abs error " << worst << " (rtol " << rtol << ", atol " << atol << ")";
        FAIL(msg.str());
    }
}

// Element-wise exact equality (same shape).
template <class A, class E>
void require_equal(const A& actual_in, const E& expected_in, const std::string& what = "") {
    const auto actual = view_of(actual_in);
    const auto expected = view_of(expected_in);
    INFO(what);
    REQUIRE(actual.shape() == expected.shape());
    for (gcl::index_t i = 0; i < actual.numel(); ++i)
        if (!(actual.data()[i] == expected.data()[i])) {
            INFO("flat index " << i << ": got " << actual.data()[i] << ", expected " << expected.data()[i]);
            REQUIRE(actual.data()[i] == expected.data()[i]);
        }
}

}  // namespace gcl_test
