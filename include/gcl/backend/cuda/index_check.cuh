#pragma once
// Counting index values outside [0, limit) on the device, for the backward passes that scatter
// through stored indices: the count is exact whatever the scheduling, and the caller throws
// when it is not zero, as the CPU kernels do.
#include <cuda_runtime.h>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/copy.cuh"
#include "gcl/backend/cuda/launch.cuh"
#include "gcl/backend/cuda/scratch.cuh"

namespace gcl::cuda_detail {

template <class Index>
__global__ void count_outside_kernel(const Index* indices, index_t n, Index limit, unsigned long long* count) {
    for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
        if (indices[i] < 0 || indices[i] >= limit) atomicAdd(count, 1ull);
}

// How many of indices[0, n) lie outside [0, limit); waits for the device.
inline index_t count_outside(const index_t* indices, index_t n, index_t limit) {
    if (n == 0) return 0;
    unsigned long long* count = scratch<unsigned long long>(1);
    GCL_CUDA_CHECK(cudaMemsetAsync(count, 0, sizeof *count, stream()));
    count_outside_kernel<<<grid_blocks(n, elementwise_threads), elementwise_threads, 0, cuda_detail::stream()>>>(
        indices, n, limit, count);
    GCL_CUDA_CHECK_LAUNCH();
    unsigned long long host = 0;
    cuda_detail::copy_to_host(&host, count, sizeof host);
    return static_cast<index_t>(host);
}

}  // namespace gcl::cuda_detail
