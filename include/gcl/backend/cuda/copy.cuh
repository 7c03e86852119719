#pragma once
// Raw copies between host and device memory on the current stream (core/stream.hpp), for the
// backend's small results and whole-tensor transfers. A copy to the host waits for the stream,
// so the values are there when it returns; a copy from pageable host memory returns once the
// host memory may be reused, and the device reads of the copy's target queue after it.
#include <cstddef>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/stream.cuh"

namespace gcl::cuda_detail {

inline void copy_to_host(void* to, const void* from, std::size_t bytes) {
    if (bytes == 0) return;
    GCL_CUDA_CHECK(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToHost, stream()));
    GCL_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

inline void copy_to_device(void* to, const void* from, std::size_t bytes) {
    if (bytes == 0) return;
    GCL_CUDA_CHECK(cudaMemcpyAsync(to, from, bytes, cudaMemcpyHostToDevice, stream()));
    // Pageable memory is staged before the call returns; pinned memory would be read later, so
    // wait for the copy either way and leave the caller free to reuse `from`.
    GCL_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

inline void copy_on_device(void* to, const void* from, std::size_t bytes) {
    if (bytes == 0) return;
    GCL_CUDA_CHECK(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, stream()));
}

}  // namespace gcl::cuda_detail
