#pragma once
// Shared helpers of the optimizer tests.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/testing/tolerance.hpp"

namespace optim_test {

// A host tensor of standard normal values drawn from `seed`.
template <class T>
gcl::Tensor<T> random_tensor(const gcl::Shape& shape, std::uint64_t seed) {
    gcl::Tensor<T> t(shape);
    gcl::Rng rng(seed);
    gcl::fill_normal<T>(t.view(), rng);
    return t;
}

// Whether two host views of equal size hold the same values, element by element.
template <class T>
bool bitwise_equal(gcl::TensorView<const T> a, gcl::TensorView<const T> b) {
    if (a.numel() != b.numel()) return false;
    for (gcl::index_t i = 0; i < a.numel(); ++i)
        if (a.data()[i] != b.data()[i]) return false;
    return true;
}

// Parity tolerances against PyTorch: float 1e-4 relative; double far tighter.
template <class T>
struct parity_tolerance;
template <>
struct parity_tolerance<float> {
    static constexpr double rtol = 1e-4, atol = 1e-6;
};
template <>
struct parity_tolerance<double> {
    static constexpr double rtol = 1e-12, atol = 1e-14;
};

// Describes the worst element of `actual` against `expected` (same number of elements), or ""
// when every element is within tolerance.
template <class A, class B>
std::string mismatch(gcl::TensorView<A> actual, gcl::TensorView<B> expected, double rtol, double atol) {
    if (actual.numel() != expected.numel()) return "sizes differ";
    for (gcl::index_t i = 0; i < actual.numel(); ++i) {
        const double a = actual.data()[i], e = expected.data()[i];
        if (!gcl::testing::close(a, e, rtol, atol) || std::isnan(a) != std::isnan(e)) {
            std::ostringstream out;
            out.precision(17);
            out << "element " << i << ": got " << a << ", expected " << e;
            return out.str();
        }
    }
    return "";
}

}  // namespace optim_test
