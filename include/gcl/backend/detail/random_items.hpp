#pragma once
// The per-element rules of the random fills, shared by every backend: element i of a fill takes
// counter first + i (backend::RandomDraws), so the CPU loops and the CUDA kernels give the same
// numbers whatever the order or the number of threads. The values are core/random.hpp's
// uniform_at and normal_at, the functions gcl::fill_uniform and gcl::fill_normal call.
#include <cstdint>

#include "gcl/backend/kernels.hpp"
#include "gcl/core/config.hpp"
#include "gcl/core/random.hpp"

namespace gcl::backend::detail {

GCL_HOST_DEVICE inline std::uint64_t counter_of(const RandomDraws& draws, index_t i) {
    return draws.first + static_cast<std::uint64_t>(i);
}

// Uniform in [lo, hi).
template <class T>
GCL_HOST_DEVICE inline T uniform_item(const RandomDraws& draws, index_t i, T lo, T hi) {
    return uniform_at<T>(draws.seed, draws.stream, counter_of(draws, i), lo, hi);
}

// Normal with mean `mean` and standard deviation `std`.
template <class T>
GCL_HOST_DEVICE inline T normal_item(const RandomDraws& draws, index_t i, T mean, T std) {
    return normal_at<T>(draws.seed, draws.stream, counter_of(draws, i), mean, std);
}

// Inverted dropout's mask: 0 where a uniform draw in [0, 1) (in double for every T) falls below
// p, else keep_scale (1 / (1 - p)).
template <class T>
GCL_HOST_DEVICE inline T dropout_mask_item(const RandomDraws& draws, index_t i, double p, T keep_scale) {
    return uniform_at<double>(draws.seed, draws.stream, counter_of(draws, i), 0.0, 1.0) < p ? T(0) : keep_scale;
}

}  // namespace gcl::backend::detail
