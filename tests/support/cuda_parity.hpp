#pragma once
// Comparisons of a GPU result, copied to the host, with the CPU's: within a relative tolerance
// (also used as the absolute margin near zero) or bit for bit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "gcl/core/tensor.hpp"

namespace gcl_test {

// The default parity tolerance of an element type: a few units of float rounding, or of double
// rounding amplified by a short sum.
template <class T>
double tolerance() {
    return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

template <class T>
void check_close(const gcl::Tensor<T>& expected, const gcl::Tensor<T>& got, double rtol) {
    REQUIRE(expected.shape() == got.shape());
    for (gcl::index_t i = 0; i < got.numel(); ++i)
        CHECK(static_cast<double>(got.data()[i]) ==
              Approx(static_cast<double>(expected.data()[i])).epsilon(rtol).margin(rtol));
}

// The largest |got - expected| relative to the largest |expected| (which must not be zero).
template <class T>
double relative_gap(const gcl::Tensor<T>& expected, const gcl::Tensor<T>& got) {
    REQUIRE(expected.shape() == got.shape());
    double gap = 0, scale = 0;
    for (gcl::index_t i = 0; i < expected.numel(); ++i) {
        gap = std::max(gap, std::abs(static_cast<double>(got.data()[i]) - static_cast<double>(expected.data()[i])));
        scale = std::max(scale, std::abs(static_cast<double>(expected.data()[i])));
    }
    REQUIRE(scale > 0);
    return gap / scale;
}

// Same shape and the same bits, element by element.
template <class T>
bool same_bits(const gcl::Tensor<T>& a, const gcl::Tensor<T>& b) {
    return a.shape() == b.shape() &&
           std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0;
}

template <class T>
void check_bitwise(const gcl::Tensor<T>& expected, const gcl::Tensor<T>& got) {
    REQUIRE(expected.shape() == got.shape());
    for (gcl::index_t i = 0; i < got.numel(); ++i) CHECK(std::memcmp(expected.data() + i, got.data() + i, sizeof(T)) == 0);
}

}  // namespace gcl_test
