#pragma once
// Launch geometry and host <-> stream ordering shared by the CUDA surgery kernels.
#include <algorithm>
#include <cstddef>

#include "gcl/backend/cuda/block_sum.cuh"
#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/event.cuh"
#include "gcl/backend/cuda/launch.cuh"
#include "gcl/backend/cuda/stream.cuh"
#include "gcl/core/shape.hpp"
#include "gcl/surgery/detail/mitigator_operator.hpp"

namespace gcl::surgery::cuda_impl {

using cuda_detail::block_sum;
using cuda_detail::grid_blocks;
using cuda_detail::warp_size;
using cuda_detail::ScopedEvent;
using cuda_detail::warp_sum;

// Orders `stream` after the work queued so far on the current stream, where the inputs were
// written and gcl::Buffer zeroes new device memory (another stream would not wait for either):
// call this after allocating buffers and before `stream` reads the inputs or writes the buffers.
inline void wait_for_current_stream(cudaStream_t stream) {
    if (stream == cuda_detail::stream()) return;
    const ScopedEvent zeroed;
    GCL_CUDA_CHECK(cudaEventRecord(zeroed.get(), cuda_detail::stream()));
    GCL_CUDA_CHECK(cudaStreamWaitEvent(stream, zeroed.get(), 0));
}

// Device workspace of at least `bytes`, aligned for double, that `stream` may use at once: it
// belongs to `stream`, which zeroes it.
inline Buffer<double, cuda> allocate_workspace(std::size_t bytes, cudaStream_t stream) {
    const StreamGuard<cuda> on_stream(stream);
    return Buffer<double, cuda>(bytes / sizeof(double) + 1);
}

}  // namespace gcl::surgery::cuda_impl

namespace gcl::surgery::detail {

// The workspace the mitigators' operator() allocates for itself on the GPU.
template <>
struct Workspace<cuda> {
    static Buffer<double, cuda> allocate(std::size_t bytes, Stream<cuda> stream) {
        return cuda_impl::allocate_workspace(bytes, stream);
    }
};

}  // namespace gcl::surgery::detail

namespace gcl::surgery::cuda_impl {

// Copies `bytes` from host memory to the device on `stream` and waits for the copy, so the host
// buffer may be released as soon as this returns.
inline void upload(void* device, const void* host, std::size_t bytes, cudaStream_t stream) {
    if (bytes == 0) return;
    GCL_CUDA_CHECK(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream));
    GCL_CUDA_CHECK(cudaStreamSynchronize(stream));
}

// Copies `bytes` from the device to host memory on `stream` and waits for the copy.
inline void download(void* host, const void* device, std::size_t bytes, cudaStream_t stream) {
    if (bytes == 0) return;
    GCL_CUDA_CHECK(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream));
    GCL_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace gcl::surgery::cuda_impl
