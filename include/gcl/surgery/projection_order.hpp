#pragma once
// The seeded order in which PCGrad projects row i against the other rows.
// The order is a pure function of (seed, step, sample, i, K) through the counter-based generator,
// so a CPU and a CUDA implementation (or a rerun) reproduce it exactly.
#include <cstdint>
#include <utility>

#include "gcl/core/config.hpp"
#include "gcl/core/random.hpp"

namespace gcl::surgery {

// Stream id of the generator that orders row `row` of sample `sample` at step `step`.
GCL_HOST_DEVICE inline std::uint64_t projection_stream(std::uint64_t step, std::uint64_t sample, std::uint64_t row) {
    return mix64(mix64(mix64(step) + sample) + row);
}

// Writes the K - 1 rows other than `row`, in projection order, to order[0 .. K-2]: a Fisher-Yates
// shuffle (the same draws as gcl::random_permutation) of 0..K-2, mapped past `row`.
inline void projection_order(std::uint64_t seed, std::uint64_t step, std::uint64_t sample, index_t row, index_t K,
                             index_t* order) {
    Rng rng(seed, projection_stream(step, sample, static_cast<std::uint64_t>(row)));
    const index_t n = K - 1;
    for (index_t t = 0; t < n; ++t) order[t] = t;
    for (index_t t = n - 1; t > 0; --t) {
        const auto j = static_cast<index_t>(rng.below(static_cast<std::uint64_t>(t + 1)));
        std::swap(order[t], order[j]);
    }
    for (index_t t = 0; t < n; ++t)
        if (order[t] >= row) ++order[t];
}

}  // namespace gcl::surgery
