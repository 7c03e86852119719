#pragma once
// The CUDA passes of BatchedGradMitigator (surgery/mitigate_batched.hpp): the same class on device
// memory. N x K x D per-sample gradients become N x D, each sample with its own Gram matrix,
// projection orders (sample index n) and weights; same options, checks and report as on the CPU.
//
//   gcl::surgery::BatchedGradMitigator<float, gcl::cuda> mitigator(options);
//   auto report = mitigator({.grads = per_label.transpose(0, 1) /* N x K x D */, .out = g, .step = step}, stream);
//
// One block per sample forms its K x K Gram matrix in double (fixed-order sums, bitwise
// repeatable); the N matrices go to the host, where gram_weights() gives each sample's weights
// (the CPU kernel's host code); the weights come back and one kernel writes every out[n].
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/stream.cuh"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/surgery/cuda/detail/combine_pass.cuh"
#include "gcl/surgery/cuda/detail/launch.cuh"
#include "gcl/surgery/cuda/mitigate.cuh"
#include "gcl/surgery/gram_weights.hpp"
#include "gcl/surgery/mitigate_batched.hpp"
#include "gcl/surgery/mitigate_options.hpp"

namespace gcl::surgery {

namespace cuda_impl {

inline constexpr int batched_threads = 128;

// Thread t's share of the dot product of a and b (D values): the columns t, t + Threads, ..., in order.
template <class T, int Threads>
__host__ __device__ __forceinline__ double batched_thread_dot(const T* a, const T* b, index_t D, int t) {
    double s = 0;
    for (index_t d = t; d < D; d += Threads) s += static_cast<double>(a[d]) * static_cast<double>(b[d]);
    return s;
}

// gram[n K K + i K + j] = g[n, i, :] . g[n, j, :] for every sample n. One block per sample; for
// each pair, batched_thread_dot per thread, then the fixed-order block sum.
template <class T>
__global__ void __launch_bounds__(batched_threads)
    batched_gram_kernel(const T* grads, index_t N, index_t K, index_t D, index_t sample_stride, index_t row_stride,
                        double* gram) {
    __shared__ double shared[batched_threads / warp_size];
    for (index_t n = blockIdx.x; n < N; n += gridDim.x) {  // uniform per block: all threads reach block_sum
        const T* sample = grads + n * sample_stride;
        double* q = gram + n * K * K;
        for (index_t i = 0; i < K; ++i)
            for (index_t j = i; j < K; ++j) {
                const double v[1] = {batched_thread_dot<T, batched_threads>(
                    sample + i * row_stride, sample + j * row_stride, D, static_cast<int>(threadIdx.x))};
                const double total = block_sum<batched_threads, 1>(v, shared);
                if (threadIdx.x == 0) {
                    q[i * K + j] = total;
                    q[j * K + i] = total;
                }
            }
    }
}

// Item e = n D + d of the output: out[n, d] = sum_k w[n K + k] g[n, k, d], added in row order.
template <class T>
__host__ __device__ __forceinline__ void batched_combine_item(index_t e, const T* grads, index_t K, index_t D,
                                                              index_t sample_stride, index_t row_stride, const T* w,
                                                              T* out, index_t out_stride) {
    const index_t n = e / D, d = e % D;
    out[n * out_stride + d] = combine_column_any(grads + n * sample_stride, row_stride, K, d, w + n * K);
}

template <class T>
__global__ void __launch_bounds__(combine_threads)
    batched_combine_kernel(const T* grads, index_t N, index_t K, index_t D, index_t sample_stride, index_t row_stride,
                           const T* w, T* out, index_t out_stride) {
    const index_t total = N * D;
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride)
        batched_combine_item(e, grads, K, D, sample_stride, row_stride, w, out, out_stride);
}

}  // namespace cuda_impl

namespace detail {
template <class T>
struct BatchedPasses<T, cuda> {
    static std::size_t gram_doubles(index_t N, index_t K) { return static_cast<std::size_t>(N * K * K); }

    // The N Gram matrices (double) and the N x K weights.
    static std::size_t workspace_bytes(index_t N, index_t K) {
        return gram_doubles(N, K) * sizeof(double) + static_cast<std::size_t>(N * K) * sizeof(T);
    }

    // One block per sample; the matrices come to the host (the call waits for them).
    static void gram(const ConstView<T, cuda>& g, void* workspace, double* gram, Stream<cuda> stream) {
        const index_t N = g.dim(0), K = g.dim(1), D = g.dim(2);
        auto* gram_device = static_cast<double*>(workspace);
        const auto sample_blocks = static_cast<unsigned>(std::min<index_t>(N, index_t{1} << 16));
        cuda_impl::wait_for_current_stream(stream);  // G was written on the current stream
        cuda_impl::batched_gram_kernel<T><<<sample_blocks, cuda_impl::batched_threads, 0, stream>>>(
            g.data(), N, K, D, g.stride(0), g.stride(1), gram_device);
        GCL_CUDA_CHECK_LAUNCH();
        cuda_impl::download(gram, gram_device, gram_doubles(N, K) * sizeof(double), stream);
    }

    // A host copy of the D values of g[n, k, :] (for error messages).
    static const T* row_values(const ConstView<T, cuda>& g, index_t n, index_t k, std::vector<T>& host) {
        return cuda_impl::host_copy_of_row(host, g.data() + n * g.stride(0) + k * g.stride(1), g.dim(2));
    }

    // The device combines in T; where a sample's result could leave T's range, it is refused
    // rather than returned as infinities (the CPU passes combine such samples in double).
    static void combine(const ConstView<T, cuda>& g, const double* gram, const double* weights, void* workspace,
                        const TensorView<T, cuda>& out, Stream<cuda> stream) {
        const index_t N = g.dim(0), K = g.dim(1), D = g.dim(2);
        std::vector<T> w(static_cast<std::size_t>(N * K));
        for (index_t n = 0; n < N; ++n) {
            if (combination_may_overflow<T>(gram + n * K * K, K, weights + n * K))
                fail("BatchedGradMitigator", "the combined gradient of sample ", n,
                     " could leave the range of the element type; scale the losses down");
            for (index_t k = 0; k < K; ++k) w[n * K + k] = static_cast<T>(weights[n * K + k]);
        }
        T* w_device = reinterpret_cast<T*>(static_cast<double*>(workspace) + gram_doubles(N, K));
        cuda_impl::upload(w_device, w.data(), w.size() * sizeof(T), stream);
        cuda_impl::batched_combine_kernel<T>
            <<<cuda_impl::grid_blocks(N * D, cuda_impl::combine_threads), cuda_impl::combine_threads, 0, stream>>>(
                g.data(), N, K, D, g.stride(0), g.stride(1), w_device, out.data(), out.stride(0));
        GCL_CUDA_CHECK_LAUNCH();
    }
};
}  // namespace detail

// The CUDA BatchedGradMitigator under its former name.
template <class T>
using CudaBatchedGradMitigator = BatchedGradMitigator<T, cuda>;

}  // namespace gcl::surgery
