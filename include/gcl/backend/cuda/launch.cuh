#pragma once
// Launch geometry shared by gcl's own CUDA kernels: grid-stride loops of a fixed block size.
#include <algorithm>

#include "gcl/core/shape.hpp"

namespace gcl::cuda_detail {

inline constexpr int warp_size = 32;
inline constexpr int elementwise_threads = 256;  // threads per block of the element-wise kernels

// Blocks for a grid-stride loop over `work` items, `threads` per block: one item per thread up
// to `cap` blocks (the loop covers the rest), and at least one block, so a launch is always valid.
inline unsigned grid_blocks(index_t work, int threads, index_t cap = index_t{1} << 16) {
    const index_t blocks = (work + threads - 1) / threads;
    return static_cast<unsigned>(std::clamp<index_t>(blocks, 1, cap));
}

}  // namespace gcl::cuda_detail
