#pragma once
// Seeded random fills on any device: the numbers of gcl::fill_uniform and gcl::fill_normal
// (core/random.hpp), drawn where the view lives.
//
//   gcl::Rng rng(seed, stream);
//   ops::fill_uniform(w.view(), rng, -0.1, 0.1);   // element i: counter rng.offset() + i
//   ops::fill_normal(w.view(), rng, 0.0, 0.02);
//   ops::dropout_mask(mask.view(), rng, 0.1);       // 0 or 1 / (1 - p)
//
// Each fill reserves numel counters of the generator and gives element i (row-major) counter
// first + i, so a fill on a GPU equals the same fill on the CPU bit for bit, and neither depends
// on the number of threads. The output must be contiguous.
#include "gcl/backend/cpu/random_fill.hpp"
#include "gcl/core/random.hpp"
#include "gcl/ops/common.hpp"

namespace gcl::ops {

namespace detail {
template <class T, class Device>
backend::RandomDraws reserve_draws(std::string_view op, const TensorView<T, Device>& out, Rng& rng) {
    require_contiguous(op, out, "out");
    const std::uint64_t first = rng.reserve(static_cast<std::uint64_t>(out.numel()));
    return {rng.seed(), rng.stream(), first};
}
}  // namespace detail

// out = uniform values in [lo, hi).
template <class T, class Device>
void fill_uniform(TensorView<T, Device> out, Rng& rng, Scalar<T> lo = T(0), Scalar<T> hi = T(1)) {
    constexpr std::string_view op = "ops::fill_uniform";
    check(lo <= hi, op, "the bounds must be ordered, got [", lo, ", ", hi, ")");
    const backend::RandomDraws draws = detail::reserve_draws(op, out, rng);
    backend::RandomFill<Device>::uniform(out, draws, lo, hi);
}

// out = normal values with mean `mean` and standard deviation `std`.
template <class T, class Device>
void fill_normal(TensorView<T, Device> out, Rng& rng, Scalar<T> mean = T(0), Scalar<T> std = T(1)) {
    constexpr std::string_view op = "ops::fill_normal";
    check(std >= T(0), op, "the standard deviation must not be negative, got ", std);
    const backend::RandomDraws draws = detail::reserve_draws(op, out, rng);
    backend::RandomFill<Device>::normal(out, draws, mean, std);
}

// out = inverted dropout's mask: each element 0 with probability p (a uniform draw in double
// below p), else 1 / (1 - p).
template <class T, class Device>
void dropout_mask(TensorView<T, Device> out, Rng& rng, double p) {
    constexpr std::string_view op = "ops::dropout_mask";
    check(p >= 0 && p < 1, op, "the drop probability must be in [0, 1), got ", p);
    const backend::RandomDraws draws = detail::reserve_draws(op, out, rng);
    backend::RandomFill<Device>::dropout_mask(out, draws, p, static_cast<T>(1.0 / (1.0 - p)));
}

}  // namespace gcl::ops
