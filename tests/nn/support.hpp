#pragma once
// Shared by the nn tests: random inputs, comparisons with per-type tolerances, copies of views,
// checks of error messages.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/testing/projection.hpp"
#include "gcl/testing/tolerance.hpp"

namespace nn_test {

using gcl::ConstView;
using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;

template <class T>
Tensor<T> random(const Shape& shape, gcl::Rng& rng, double lo = -1, double hi = 1) {
    return gcl::testing::random_tensor<T>(shape, rng, static_cast<T>(lo), static_cast<T>(hi));
}

// A contiguous copy of a view (what a layer returns lives only until its next call).
template <class T>
Tensor<std::remove_const_t<T>> copy(gcl::TensorView<T> v) {
    return Tensor<std::remove_const_t<T>>::copy_of(v);
}

// Every element of `actual` within the tolerance of `expected` (same shape).
template <class A, class E>
void require_close(const A& actual_in, const E& expected_in, double rtol, double atol, const std::string& what = "") {
    const auto actual = gcl::ConstView<typename A::value_type>(actual_in);
    const auto expected = gcl::ConstView<typename E::value_type>(expected_in);
    INFO(what);
    REQUIRE(actual.shape() == expected.shape());
    index_t mismatches = 0, first = -1;
    double worst = 0;
    for (index_t i = 0; i < actual.numel(); ++i) {
        const double a = static_cast<double>(actual.data()[i]), e = static_cast<double>(expected.data()[i]);
        if (!gcl::testing::close(a, e, rtol, atol)) {
            if (first < 0) first = i;
            ++mismatches;
            worst = std::max(worst, std::abs(a - e));
        }
    }
    if (mismatches > 0) {
        std::ostringstream msg;
        msg.precision(10);
        msg << what << ": " << mismatches << " of " << actual.numel() << " elements of shape " << actual.shape()
            << " differ; first at flat index " << first << ": got " << static_cast<double>(actual.data()[first])
            << ", expected " << static_cast<double>(expected.data()[first]) << ", worst abs error " << worst
            << " (rtol " << rtol << ", atol " << atol << ")";
        FAIL(msg.str());
    }
}

// Bit-for-bit equality.
template <class A, class E>
void require_equal(const A& actual_in, const E& expected_in, const std::string& what = "") {
    const auto actual = gcl::ConstView<typename A::value_type>(actual_in);
    const auto expected = gcl::ConstView<typename E::value_type>(expected_in);
    INFO(what);
    REQUIRE(actual.shape() == expected.shape());
    for (index_t i = 0; i < actual.numel(); ++i)
        if (!(actual.data()[i] == expected.data()[i])) {
            INFO("flat index " << i << ": got " << actual.data()[i] << ", expected " << expected.data()[i]);
            REQUIRE(actual.data()[i] == expected.data()[i]);
        }
}

// `f` throws gcl::Error whose message contains every one of `parts`.
inline void require_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
    bool thrown = false;
    try {
        f();
    } catch (const gcl::Error& e) {
        thrown = true;
        const std::string what = e.what();
        INFO("message: " << what);
        for (const auto& part : parts) {
            INFO("expected to find: " << part);
            CHECK(what.find(part) != std::string::npos);
        }
    }
    if (!thrown) FAIL("expected a gcl::Error");
}

inline double max_abs(gcl::ConstView<double> v) {
    double m = 0;
    for (index_t i = 0; i < v.numel(); ++i) m = std::max(m, std::abs(v.data()[i]));
    return m;
}

}  // namespace nn_test
