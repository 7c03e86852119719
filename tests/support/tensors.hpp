#pragma once
// Test inputs and copies: seeded random tensors, the same values in another element type, a
// contiguous copy of a view, the largest magnitude.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/testing/projection.hpp"

namespace gcl_test {

using gcl::ConstView;
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

// A contiguous copy of a host view (what a layer returns lives only until its next call).
template <class T>
Tensor<std::remove_const_t<T>> copy(gcl::TensorView<T> v) {
    return Tensor<std::remove_const_t<T>>::copy_of(v);
}

inline double max_abs(ConstView<double> v) {
    double m = 0;
    for (index_t i = 0; i < v.numel(); ++i) m = std::max(m, std::abs(v.data()[i]));
    return m;
}

}  // namespace gcl_test
