#pragma once
// cuda_detail::block_sum's order replayed on the host, for one value per thread of a block of
// per_thread.size() threads (whole warps): in each warp a shuffle-down tree (lane l adds lane
// l + offset for offsets 16, 8, 4, 2, 1; a lane whose partner is past the warp keeps its own
// value), then the warp totals added in warp order, starting from 0.
#include <algorithm>
#include <vector>

#include "gcl/backend/cuda/launch.cuh"

namespace gcl_test {

inline double replay_block_sum(const std::vector<double>& per_thread) {
    constexpr int warp = gcl::cuda_detail::warp_size;
    const int threads = static_cast<int>(per_thread.size());
    double total = 0;
    for (int w = 0; w < threads / warp; ++w) {
        double lane[warp];
        for (int l = 0; l < warp; ++l) lane[l] = per_thread[static_cast<std::size_t>(w * warp + l)];
        for (int offset = warp / 2; offset > 0; offset /= 2) {
            double next[warp];
            for (int l = 0; l < warp; ++l) next[l] = lane[l] + (l + offset < warp ? lane[l + offset] : lane[l]);
            std::copy(next, next + warp, lane);
        }
        total += lane[0];
    }
    return total;
}

}  // namespace gcl_test
