#pragma once
// dist::ShardPasses<T, cuda>: the sharded mitigation's passes on device memory, queued on the
// communicator's stream (an NcclCommunicator): packing by 2-D copies, scaling, the Gram pass and
// the combine pass of the CUDA GradMitigator (surgery/cuda/detail), and the K x K sum over ranks
// through a small device buffer.
#include <cuda_runtime.h>

#include <algorithm>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/dist/partition.hpp"
#include "gcl/dist/shard_passes.hpp"
#include "gcl/surgery/cuda/detail/combine_pass.cuh"
#include "gcl/surgery/cuda/detail/gram_pass.cuh"
#include "gcl/surgery/cuda/detail/launch.cuh"

namespace gcl::dist {

namespace cuda_impl {
template <class T>
__global__ void scale_kernel(T* x, index_t n, T factor) {
    for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<index_t>(gridDim.x) * blockDim.x)
        x[i] *= factor;
}
}  // namespace cuda_impl

template <class T>
struct ShardPasses<T, cuda> {
    template <class Comm>
    static void pack(const T* G, index_t K, index_t P, const Partition& part, T* send, Comm& comm) {
        for (int r = 0; r < part.ranks(); ++r) {
            const index_t off = part.offsets[r], n = part.counts[r];
            if (n == 0) continue;
            GCL_CUDA_CHECK(cudaMemcpy2DAsync(send + K * off, n * sizeof(T), G + off, P * sizeof(T), n * sizeof(T), K,
                                             cudaMemcpyDeviceToDevice, comm.stream()));
        }
    }

    template <class Comm>
    static void scale(T* x, index_t n, T factor, Comm& comm) {
        if (n == 0) return;
        constexpr int threads = 256;
        cuda_impl::scale_kernel<T><<<surgery::cuda_impl::grid_blocks(n, threads), threads, 0, comm.stream()>>>(x, n, factor);
        GCL_CUDA_CHECK_LAUNCH();
    }

    // gram: host memory, complete on return.
    template <class Comm>
    static void gram(const T* slice, index_t K, index_t n, double* gram, Comm& comm) {
        if (n == 0) {
            std::fill(gram, gram + K * K, 0.0);
            return;
        }
        reserve(workspace_, static_cast<index_t>(surgery::cuda_impl::gram_workspace(K, n)), comm);
        surgery::cuda_impl::gram_pass(slice, n, K, n, workspace_.data(), gram, comm.stream());
    }

    template <class Comm>
    static void sum_gram(double* gram, index_t K, Comm& comm) {
        reserve(gram_device_, K * K, comm);
        surgery::cuda_impl::upload(gram_device_.data(), gram, static_cast<std::size_t>(K * K) * sizeof(double), comm.stream());
        comm.all_reduce_sum(gram_device_.data(), K * K);
        comm.broadcast(gram_device_.data(), K * K, 0);
        surgery::cuda_impl::download(gram, gram_device_.data(), static_cast<std::size_t>(K * K) * sizeof(double), comm.stream());
    }

    template <class Comm>
    static void combine(const T* slice, index_t K, index_t n, const T* w, T* out, Comm& comm) {
        if (n == 0) return;
        const std::size_t bytes = surgery::cuda_impl::combine_workspace_bytes<T>(K);
        reserve(combine_workspace_, static_cast<index_t>(bytes / sizeof(T) + 1), comm);
        surgery::cuda_impl::combine_pass(slice, n, K, n, w, combine_workspace_.data(), out, comm.stream());
    }

    template <class U, class Comm>
    static void reserve(Buffer<U, cuda>& buffer, index_t n, Comm& comm) {
        if (buffer.size() >= static_cast<std::size_t>(n)) return;
        comm.synchronize();  // queued work may still use the old buffer
        buffer = Buffer<U, cuda>(static_cast<std::size_t>(n));
        GCL_CUDA_CHECK(cudaDeviceSynchronize());  // the Buffer is zeroed on the current stream
    }

private:
    static inline thread_local Buffer<double, cuda> workspace_, gram_device_;
    static inline thread_local Buffer<T, cuda> combine_workspace_;
};

}  // namespace gcl::dist
