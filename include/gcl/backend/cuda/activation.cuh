#pragma once
// CUDA activations: grid-stride kernels around the per-element rules the CPU uses
// (backend/detail/activation_items.hpp), so both devices give the same bits. In place allowed.
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/launch.cuh"
#include "gcl/backend/cuda/stream.cuh"
#include "gcl/backend/detail/activation_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

namespace cuda_kernels {

template <class T>
__global__ void relu_forward(const T* x, T* y, index_t n) {
    for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
        y[i] = detail::relu_item(x[i]);
}
template <class T>
__global__ void relu_backward(const T* dy, const T* x, T* dx, index_t n) {
    for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
        dx[i] = detail::relu_backward_item(dy[i], x[i]);
}
template <class T>
__global__ void leaky_relu_forward(const T* x, T* y, index_t n, T slope) {
    for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
        y[i] = detail::leaky_relu_item(x[i], slope);
}
template <class T>
__global__ void leaky_relu_backward(const T* dy, const T* x, T* dx, index_t n, T slope) {
    for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
        dx[i] = detail::leaky_relu_backward_item(dy[i], x[i], slope);
}

}  // namespace cuda_kernels

template <>
struct Activation<cuda> {
    template <class T>
    static void relu_forward(ConstView<T, cuda> x, TensorView<T, cuda> y) {
        const index_t n = x.numel();
        if (n == 0) return;
        cuda_kernels::relu_forward<<<blocks(n), threads, 0, cuda_detail::stream()>>>(x.data(), y.data(), n);
        GCL_CUDA_CHECK(cudaGetLastError());
    }
    template <class T>
    static void relu_backward(ConstView<T, cuda> dy, ConstView<T, cuda> x, TensorView<T, cuda> dx) {
        const index_t n = x.numel();
        if (n == 0) return;
        cuda_kernels::relu_backward<<<blocks(n), threads, 0, cuda_detail::stream()>>>(dy.data(), x.data(), dx.data(),
                                                                                      n);
        GCL_CUDA_CHECK(cudaGetLastError());
    }
    template <class T>
    static void leaky_relu_forward(ConstView<T, cuda> x, TensorView<T, cuda> y, T slope) {
        const index_t n = x.numel();
        if (n == 0) return;
        cuda_kernels::leaky_relu_forward<<<blocks(n), threads, 0, cuda_detail::stream()>>>(x.data(), y.data(), n,
                                                                                           slope);
        GCL_CUDA_CHECK(cudaGetLastError());
    }
    template <class T>
    static void leaky_relu_backward(ConstView<T, cuda> dy, ConstView<T, cuda> x, TensorView<T, cuda> dx, T slope) {
        const index_t n = x.numel();
        if (n == 0) return;
        cuda_kernels::leaky_relu_backward<<<blocks(n), threads, 0, cuda_detail::stream()>>>(dy.data(), x.data(),
                                                                                            dx.data(), n, slope);
        GCL_CUDA_CHECK(cudaGetLastError());
    }

private:
    static constexpr int threads = cuda_detail::elementwise_threads;
    static unsigned blocks(index_t n) { return cuda_detail::grid_blocks(n, threads); }
};

}  // namespace gcl::backend
