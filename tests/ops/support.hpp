#pragma once
// Shared by the ops tests: random inputs, comparisons with per-type tolerances, gradient checks
// and checks of error messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <type_traits>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/testing/gradcheck.hpp"
#include "gcl/testing/projection.hpp"
#include "gcl/testing/tolerance.hpp"

namespace ops_test {

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;

// Uniform values in [lo, hi) of element type T from a seeded generator.
template <class T>
Tensor<T> random(const Shape& shape, gcl::Rng& rng, double lo = -1, double hi = 1) {
    return gcl::testing::random_tensor<T>(shape, rng, static_cast<T>(lo), static_cast<T>(hi));
}

// The same values in another element type.
template <class To, class From>
Tensor<To> cast(const Tensor<From>& t) {
    Tensor<To> out(t.shape());
    for (index_t i = 0; i < t.numel(); ++i) out.data()[i] = static_cast<To>(t.data()[i]);
    return out;
}

// Every element of `actual` within the tolerance of T of `expected` (row-major, same shape).
template <class T, class U>
void require_close(const Tensor<T>& actual, const Tensor<U>& expected, double rtol = gcl::testing::tolerance<T>::rtol,
                   double atol = gcl::testing::tolerance<T>::atol) {
    REQUIRE(actual.shape() == expected.shape());
    index_t mismatches = 0, first = -1;
    for (index_t i = 0; i < actual.numel(); ++i) {
        const double a = static_cast<double>(actual.data()[i]), e = static_cast<double>(expected.data()[i]);
        const bool same_nan = std::isnan(a) && std::isnan(e);
        if (!same_nan && !gcl::testing::close(a, e, rtol, atol)) {
            if (first < 0) first = i;
            ++mismatches;
        }
    }
    if (mismatches > 0) {
        std::ostringstream msg;
        msg.precision(10);
        msg << mismatches << " of " << actual.numel() << " elements of shape " << actual.shape()
            << " differ; first at flat index " << first << ": got " << static_cast<double>(actual.data()[first])
            << ", expected " << static_cast<double>(expected.data()[first]) << " (rtol " << rtol << ", atol " << atol
            << ")";
        FAIL(msg.str());
    }
}

// Element-wise exact equality.
template <class T>
void require_equal(const Tensor<T>& actual, const Tensor<T>& expected) {
    REQUIRE(actual.shape() == expected.shape());
    for (index_t i = 0; i < actual.numel(); ++i)
        if (!(actual.data()[i] == expected.data()[i])) {
            INFO("flat index " << i << ": got " << actual.data()[i] << ", expected " << expected.data()[i]);
            REQUIRE(actual.data()[i] == expected.data()[i]);
        }
}

// `f` throws gcl::Error whose message contains every one of `parts` (e.g. both shapes).
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
    if (!thrown) FAIL("expected a gcl::Error naming the shapes");
}

inline std::string str(const Shape& s) { return s.str(); }

// Gradient check of backward against sum(w * forward(x)) in double, with a few seeded draws.
template <class Forward, class Backward>
void require_gradient(Tensor<double>& x, const Shape& output_shape, Forward&& forward, Backward&& backward,
                      gcl::Rng& rng, index_t max_elements = 0) {
    gcl::testing::GradCheckOptions options;
    options.max_elements = max_elements;
    options.atol = 1e-7;
    const auto result = gcl::testing::check_projected_gradient(x.view(), output_shape, forward, backward, rng, options);
    INFO(result.message);
    REQUIRE(result.passed);
}

}  // namespace ops_test
