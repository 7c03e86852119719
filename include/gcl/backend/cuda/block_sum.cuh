#pragma once
// Deterministic sums across a thread block. The order of the additions is fixed by the lane and
// warp indices alone (a shuffle tree inside each warp, then the warps in index order), so the
// same inputs give the same bits on every run, whatever the scheduling.
#include "gcl/backend/cuda/launch.cuh"

namespace gcl::cuda_detail {

// Sum of v over the 32 lanes of a full warp, valid in lane 0: lane l adds lane l + 16, then
// l + 8, l + 4, l + 2, l + 1.
__device__ inline double warp_sum(double v) {
    for (int offset = warp_size / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

// Block totals of N per-thread values v[0..N). Thread q < N returns the total of value q (other
// threads return 0). `shared` holds (Threads / 32) * N doubles of shared memory. Every thread of
// the block must call it, with blockDim.x == Threads: it synchronises the block twice.
template <int Threads, int N>
__device__ double block_sum(const double (&v)[N], double* shared) {
    static_assert(Threads % warp_size == 0 && N <= Threads, "block_sum needs whole warps and N <= Threads");
    constexpr int warps = Threads / warp_size;
    const int lane = static_cast<int>(threadIdx.x) % warp_size;
    const int warp = static_cast<int>(threadIdx.x) / warp_size;
#pragma unroll
    for (int q = 0; q < N; ++q) {
        const double s = warp_sum(v[q]);
        if (lane == 0) shared[warp * N + q] = s;
    }
    __syncthreads();
    double total = 0;
    if (static_cast<int>(threadIdx.x) < N)
        for (int w = 0; w < warps; ++w) total += shared[w * N + static_cast<int>(threadIdx.x)];
    __syncthreads();  // the caller may reuse `shared` right away
    return total;
}

}  // namespace gcl::cuda_detail
