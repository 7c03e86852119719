#pragma once
// The second pass of the CUDA mitigation: out = w^T G for a K x P matrix G in device memory,
// reading G once and writing out once. out may be one of the rows of G: every column is read by
// the one thread that then writes it.
//
// For K <= combine_max_rows the weights travel as a kernel argument and the K loads of a column
// are issued together (K known at compile time); larger K reads the weights from device memory.
#include <cstddef>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/core/shape.hpp"
#include "gcl/surgery/cuda/detail/launch.cuh"

namespace gcl::surgery::cuda_impl {

inline constexpr int combine_threads = 256;
inline constexpr int combine_max_rows = 8;

template <class T>
struct CombineWeights {
    T w[combine_max_rows];
};

// w[0] g_0[p] + w[1] g_1[p] + ... + w[K-1] g_{K-1}[p], added in row order (K known at compile
// time: the K loads are issued together).
template <class T, int K>
__host__ __device__ __forceinline__ T combine_column(const T* grads, index_t row_stride, index_t p,
                                                     const CombineWeights<T>& weights) {
    T x[K];
#pragma unroll
    for (int k = 0; k < K; ++k) x[k] = grads[k * row_stride + p];
    T s = weights.w[0] * x[0];
#pragma unroll
    for (int k = 1; k < K; ++k) s += weights.w[k] * x[k];
    return s;
}

// The same for any K, with the K weights in memory.
template <class T>
__host__ __device__ __forceinline__ T combine_column_any(const T* grads, index_t row_stride, index_t K, index_t p,
                                                         const T* w) {
    T s = w[0] * grads[p];
    for (index_t k = 1; k < K; ++k) s += w[k] * grads[k * row_stride + p];
    return s;
}

template <class T, int K>
__global__ void __launch_bounds__(combine_threads)
    combine_kernel(const T* grads, index_t row_stride, index_t P, CombineWeights<T> weights, T* out) {
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t p = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < P; p += stride)
        out[p] = combine_column<T, K>(grads, row_stride, p, weights);
}

template <class T>
__global__ void __launch_bounds__(combine_threads)
    combine_any_kernel(const T* grads, index_t row_stride, index_t K, index_t P, const T* w, T* out) {
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t p = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < P; p += stride)
        out[p] = combine_column_any(grads, row_stride, K, p, w);
}

// The first K (<= combine_max_rows) of the weights w, as a kernel argument.
template <class T>
CombineWeights<T> combine_weights(const T* w, index_t K) {
    CombineWeights<T> weights{};
    for (index_t k = 0; k < K; ++k) weights.w[k] = w[k];
    return weights;
}

template <class T, int K>
void launch_combine_fixed(const T* grads, index_t row_stride, index_t P, const T* w, T* out, cudaStream_t stream) {
    const CombineWeights<T> weights = combine_weights(w, K);
    combine_kernel<T, K><<<grid_blocks(P, combine_threads), combine_threads, 0, stream>>>(grads, row_stride, P, weights,
                                                                                         out);
    GCL_CUDA_CHECK_LAUNCH();
}

// Device workspace (in bytes) of combine_pass: room for the K weights when K > combine_max_rows.
template <class T>
std::size_t combine_workspace_bytes(index_t K) {
    return K > combine_max_rows ? static_cast<std::size_t>(K) * sizeof(T) : 0;
}

// out = sum_k w[k] * (grads + k * row_stride), P columns. `w` is host memory (K values);
// `workspace` holds combine_workspace_bytes<T>(K) bytes of device memory. Asynchronous on
// `stream` for K <= combine_max_rows; for larger K it waits for the upload of the weights.
template <class T>
void combine_pass(const T* grads, index_t row_stride, index_t K, index_t P, const T* w, void* workspace, T* out,
                  cudaStream_t stream) {
    switch (K) {
        case 1: launch_combine_fixed<T, 1>(grads, row_stride, P, w, out, stream); return;
        case 2: launch_combine_fixed<T, 2>(grads, row_stride, P, w, out, stream); return;
        case 3: launch_combine_fixed<T, 3>(grads, row_stride, P, w, out, stream); return;
        case 4: launch_combine_fixed<T, 4>(grads, row_stride, P, w, out, stream); return;
        case 5: launch_combine_fixed<T, 5>(grads, row_stride, P, w, out, stream); return;
        case 6: launch_combine_fixed<T, 6>(grads, row_stride, P, w, out, stream); return;
        case 7: launch_combine_fixed<T, 7>(grads, row_stride, P, w, out, stream); return;
        case 8: launch_combine_fixed<T, 8>(grads, row_stride, P, w, out, stream); return;
        default: break;
    }
    T* w_device = static_cast<T*>(workspace);
    upload(w_device, w, static_cast<std::size_t>(K) * sizeof(T), stream);
    combine_any_kernel<T><<<grid_blocks(P, combine_threads), combine_threads, 0, stream>>>(grads, row_stride, K, P,
                                                                                          w_device, out);
    GCL_CUDA_CHECK_LAUNCH();
}

}  // namespace gcl::surgery::cuda_impl
