#pragma once
// max |a - b| / max |b| of two tensors of one size: how far a data-parallel result is from the
// single-process one, relative to the largest value.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "gcl/core/tensor.hpp"

namespace gcl::testing {

template <class T>
double relative_difference(const Tensor<T>& a, const Tensor<T>& b) {
    REQUIRE(a.numel() == b.numel());
    double worst = 0, scale = 0;
    for (index_t i = 0; i < b.numel(); ++i) scale = std::max(scale, std::abs(static_cast<double>(b.data()[i])));
    for (index_t i = 0; i < b.numel(); ++i)
        worst = std::max(worst, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
    return scale > 0 ? worst / scale : worst;
}

}  // namespace gcl::testing
