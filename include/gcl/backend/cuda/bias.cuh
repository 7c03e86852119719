#pragma once
// CUDA per-channel bias on a tensor seen as [outer, channels, inner]. The gradient is one block
// per channel: each thread sums its share in double (backend/detail/channel_items.hpp), the block
// adds the threads in a fixed order (block_sum.cuh), so a run repeats bit for bit; the order
// differs from the CPU's, so the two agree within rounding, not bitwise.
#include "gcl/backend/cuda/block_sum.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/launch.cuh"
#include "gcl/backend/cuda/stream.cuh"
#include "gcl/backend/detail/channel_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

namespace cuda_kernels {

template <class T>
__global__ void bias_add(const T* bias, T* y, index_t n, index_t channels, index_t inner) {
    for (index_t e = blockIdx.x * index_t{blockDim.x} + threadIdx.x; e < n; e += index_t{gridDim.x} * blockDim.x)
        y[e] += bias[detail::channel_of(e, channels, inner)];
}

inline constexpr int bias_backward_threads = 256;

template <class T>
__global__ void bias_backward(const T* dy, T* db, index_t outer, index_t channels, index_t inner, bool accumulate) {
    __shared__ double shared[bias_backward_threads / cuda_detail::warp_size];
    const index_t c = blockIdx.x;
    const double mine[1] = {detail::channel_thread_sum(dy, outer, channels, inner, c, index_t{threadIdx.x},
                                                    index_t{bias_backward_threads})};
    const double total = cuda_detail::block_sum<bias_backward_threads, 1>(mine, shared);
    if (threadIdx.x == 0) db[c] = static_cast<T>(accumulate ? static_cast<double>(db[c]) + total : total);
}

}  // namespace cuda_kernels

template <>
struct Bias<cuda> {
    // y[o, c, i] += bias[c].
    template <class T>
    static void add(ConstView<T, cuda> bias, TensorView<T, cuda> y, index_t outer, index_t channels, index_t inner) {
        const index_t n = outer * channels * inner;
        if (n == 0) return;
        constexpr int threads = cuda_detail::elementwise_threads;
        cuda_kernels::bias_add<<<cuda_detail::grid_blocks(n, threads), threads, 0, cuda_detail::stream()>>>(
            bias.data(), y.data(), n, channels, inner);
        GCL_CUDA_CHECK(cudaGetLastError());
    }

    // db[c] (+)= sum over o, i of dy[o, c, i], accumulated in double.
    template <class T>
    static void backward(ConstView<T, cuda> dy, TensorView<T, cuda> db, index_t outer, index_t channels, index_t inner,
                         bool accumulate) {
        if (channels == 0) return;
        cuda_kernels::bias_backward<<<static_cast<unsigned>(channels), cuda_kernels::bias_backward_threads, 0,
                                      cuda_detail::stream()>>>(dy.data(), db.data(), outer, channels, inner,
                                                               accumulate);
        GCL_CUDA_CHECK(cudaGetLastError());
    }
};

}  // namespace gcl::backend
