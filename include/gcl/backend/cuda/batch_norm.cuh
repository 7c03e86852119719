#pragma once
// CUDA batch normalisation on a tensor seen as [N, C, inner], with the CPU family's interface
// and arithmetic (backend/cpu/batch_norm.hpp): statistics and gradient sums in double, one block
// per channel whose threads sum their shares (backend/detail/channel_items.hpp) and are added in
// a fixed order (block_sum.cuh), so a run repeats bit for bit. The sums' order differs from the
// CPU's and nvcc fuses multiply-adds, so results agree with the CPU within rounding.
//
// The overloads that take a `reduce(values, n)` (synchronised batch norm) pass the per-channel
// sums through it on the host: they are copied down, reduced, and copied back (C + 1 or 2C + 1
// doubles per call).
#include <cmath>
#include <vector>

#include "gcl/backend/cuda/block_sum.cuh"
#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/copy.cuh"
#include "gcl/backend/cuda/launch.cuh"
#include "gcl/backend/cuda/scratch.cuh"
#include "gcl/backend/detail/channel_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

namespace cuda_kernels {

inline constexpr int channel_threads = 256;

// sums[c] = sum x over channel c; sums[channels] = the element count of a channel.
template <class T>
__global__ void channel_sums(const T* x, double* sums, index_t batch, index_t channels, index_t inner) {
    __shared__ double shared[channel_threads / cuda_detail::warp_size];
    const index_t c = blockIdx.x;
    const double mine[1] = {detail::channel_thread_sum(x, batch, channels, inner, c, index_t{threadIdx.x},
                                                       index_t{channel_threads})};
    const double total = cuda_detail::block_sum<channel_threads, 1>(mine, shared);
    if (threadIdx.x == 0) {
        sums[c] = total;
        if (c == 0) sums[channels] = static_cast<double>(batch * inner);
    }
}

// squares[c] = sum (x - mean_c)^2, mean_c = sums[c] / sums[channels].
template <class T>
__global__ void channel_square_sums(const T* x, const double* sums, double* squares, index_t batch, index_t channels,
                                    index_t inner) {
    __shared__ double shared[channel_threads / cuda_detail::warp_size];
    const index_t c = blockIdx.x;
    const double mean = sums[c] / sums[channels];
    const double mine[1] = {detail::channel_thread_square_sum(x, mean, batch, channels, inner, c, index_t{threadIdx.x},
                                                              index_t{channel_threads})};
    const double total = cuda_detail::block_sum<channel_threads, 1>(mine, shared);
    if (threadIdx.x == 0) squares[c] = total;
}

// Per channel: scale and shift of the normalisation, the running estimates and the saved statistics.
template <class T>
__global__ void finish_statistics(const double* sums, const double* squares, const T* gamma, const T* beta,
                                  T* running_mean, T* running_var, T* saved_mean, T* saved_invstd, double* scale_shift,
                                  index_t channels, double momentum, double eps) {
    const double count = sums[channels];
    for (index_t c = blockIdx.x * index_t{blockDim.x} + threadIdx.x; c < channels; c += index_t{gridDim.x} * blockDim.x) {
        const detail::BatchNormStatistics s = detail::batch_norm_statistics(
            sums[c], squares[c], count, static_cast<double>(gamma[c]), static_cast<double>(beta[c]), eps);
        scale_shift[c] = s.scale;
        scale_shift[channels + c] = s.shift;
        running_mean[c] = static_cast<T>((1 - momentum) * static_cast<double>(running_mean[c]) + momentum * s.mean);
        running_var[c] = static_cast<T>((1 - momentum) * static_cast<double>(running_var[c]) + momentum * s.unbiased);
        saved_mean[c] = static_cast<T>(s.mean);
        saved_invstd[c] = static_cast<T>(s.invstd);
    }
}

// Per channel, from the running estimates: scale and shift of the evaluation-mode normalisation.
template <class T>
__global__ void eval_scale_shift(const T* gamma, const T* beta, const T* running_mean, const T* running_var,
                                 double* scale_shift, index_t channels, double eps) {
    for (index_t c = blockIdx.x * index_t{blockDim.x} + threadIdx.x; c < channels; c += index_t{gridDim.x} * blockDim.x) {
        const double invstd = 1.0 / sqrt(static_cast<double>(running_var[c]) + eps);
        const double scale = static_cast<double>(gamma[c]) * invstd;
        scale_shift[c] = scale;
        scale_shift[channels + c] = static_cast<double>(beta[c]) - static_cast<double>(running_mean[c]) * scale;
    }
}

template <class T>
__global__ void affine_per_channel(const T* x, T* y, const double* scale_shift, index_t n, index_t channels, index_t inner) {
    for (index_t e = blockIdx.x * index_t{blockDim.x} + threadIdx.x; e < n; e += index_t{gridDim.x} * blockDim.x) {
        const index_t c = detail::channel_of(e, channels, inner);
        y[e] = detail::batch_norm_affine_item(x[e], scale_shift[c], scale_shift[channels + c]);
    }
}

// sums = [sum dy | sum dy xhat] per channel, then the count; dgamma, dbeta (+)= this batch's sums.
template <class T>
__global__ void gradient_sums(const T* dy, const T* x, const double* mean_invstd, const T* saved_mean,
                              const T* saved_invstd, double* sums, T* dgamma, T* dbeta, index_t batch, index_t channels,
                              index_t inner, bool accumulate) {
    __shared__ double shared[2 * (channel_threads / cuda_detail::warp_size)];
    const index_t c = blockIdx.x;
    const double mean = mean_invstd ? mean_invstd[c] : static_cast<double>(saved_mean[c]);
    const double invstd = mean_invstd ? mean_invstd[channels + c] : static_cast<double>(saved_invstd[c]);
    double mine[2];
    detail::channel_thread_gradient_sums(dy, x, mean, batch, channels, inner, c, index_t{threadIdx.x},
                                         index_t{channel_threads}, mine);
    const double total = cuda_detail::block_sum<channel_threads, 2>(mine, shared);
    // Thread 0 holds sum dy, thread 1 sum dy (x - mean).
    if (threadIdx.x == 0) {
        sums[c] = total;
        dbeta[c] = static_cast<T>(accumulate ? static_cast<double>(dbeta[c]) + total : total);
        if (c == 0) sums[2 * channels] = static_cast<double>(batch * inner);
    } else if (threadIdx.x == 1) {
        const double dy_xhat = total * invstd;
        sums[channels + c] = dy_xhat;
        dgamma[c] = static_cast<T>(accumulate ? static_cast<double>(dgamma[c]) + dy_xhat : dy_xhat);
    }
}

template <class T>
__global__ void backward_train_dx(const T* dy, const T* x, const T* gamma, const T* saved_mean, const T* saved_invstd,
                                  const double* sums, T* dx, index_t n, index_t channels, index_t inner) {
    const double count = sums[2 * channels];
    for (index_t e = blockIdx.x * index_t{blockDim.x} + threadIdx.x; e < n; e += index_t{gridDim.x} * blockDim.x) {
        const index_t c = detail::channel_of(e, channels, inner);
        const double invstd = static_cast<double>(saved_invstd[c]);
        dx[e] = detail::batch_norm_backward_item(dy[e], x[e], static_cast<double>(saved_mean[c]), invstd,
                                                 static_cast<double>(gamma[c]) * invstd, sums[c] / count,
                                                 sums[channels + c] / count);
    }
}

// Evaluation mode: mean_invstd = [running mean | 1 / sqrt(running var + eps)] and dx = gamma invstd dy.
template <class T>
__global__ void eval_statistics(const T* gamma, const T* running_mean, const T* running_var, double* mean_invstd,
                                double* scale_shift, index_t channels, double eps) {
    for (index_t c = blockIdx.x * index_t{blockDim.x} + threadIdx.x; c < channels; c += index_t{gridDim.x} * blockDim.x) {
        const double invstd = 1.0 / sqrt(static_cast<double>(running_var[c]) + eps);
        mean_invstd[c] = static_cast<double>(running_mean[c]);
        mean_invstd[channels + c] = invstd;
        scale_shift[c] = static_cast<double>(gamma[c]) * invstd;
        scale_shift[channels + c] = 0;
    }
}

}  // namespace cuda_kernels

template <>
struct BatchNorm<cuda> {
    template <class T>
    static void forward_train(ConstView<T, cuda> x, ConstView<T, cuda> gamma, ConstView<T, cuda> beta,
                              TensorView<T, cuda> y, TensorView<T, cuda> running_mean, TensorView<T, cuda> running_var,
                              TensorView<T, cuda> saved_mean, TensorView<T, cuda> saved_invstd, index_t batch,
                              index_t channels, index_t inner, double momentum, double eps) {
        forward<T, NoReduce>(x, gamma, beta, y, running_mean, running_var, saved_mean, saved_invstd, batch, channels,
                             inner, momentum, eps, nullptr);
    }

    // Synchronised batch norm: the sums go through reduce(values, n) on the host (see the top).
    template <class T, class Reduce>
    static void forward_train(ConstView<T, cuda> x, ConstView<T, cuda> gamma, ConstView<T, cuda> beta,
                              TensorView<T, cuda> y, TensorView<T, cuda> running_mean, TensorView<T, cuda> running_var,
                              TensorView<T, cuda> saved_mean, TensorView<T, cuda> saved_invstd, index_t batch,
                              index_t channels, index_t inner, double momentum, double eps, Reduce&& reduce) {
        forward(x, gamma, beta, y, running_mean, running_var, saved_mean, saved_invstd, batch, channels, inner, momentum,
                eps, &reduce);
    }

    template <class T>
    static void forward_eval(ConstView<T, cuda> x, ConstView<T, cuda> gamma, ConstView<T, cuda> beta,
                             ConstView<T, cuda> running_mean, ConstView<T, cuda> running_var, TensorView<T, cuda> y,
                             index_t batch, index_t channels, index_t inner, double eps) {
        if (channels == 0) return;
        double* scale_shift = cuda_detail::scratch<double>(static_cast<std::size_t>(2 * channels));
        cuda_kernels::eval_scale_shift<<<blocks(channels), threads, 0, cuda_detail::stream()>>>(
            gamma.data(), beta.data(), running_mean.data(), running_var.data(), scale_shift, channels, eps);
        GCL_CUDA_CHECK(cudaGetLastError());
        affine(x.data(), y.data(), scale_shift, batch, channels, inner);
    }

    template <class T>
    static void backward_train(ConstView<T, cuda> dy, ConstView<T, cuda> x, ConstView<T, cuda> gamma,
                               ConstView<T, cuda> saved_mean, ConstView<T, cuda> saved_invstd, TensorView<T, cuda> dx,
                               TensorView<T, cuda> dgamma, TensorView<T, cuda> dbeta, index_t batch, index_t channels,
                               index_t inner, bool accumulate) {
        backward<T, NoReduce>(dy, x, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta, batch, channels, inner,
                              accumulate, nullptr);
    }

    template <class T, class Reduce>
    static void backward_train(ConstView<T, cuda> dy, ConstView<T, cuda> x, ConstView<T, cuda> gamma,
                               ConstView<T, cuda> saved_mean, ConstView<T, cuda> saved_invstd, TensorView<T, cuda> dx,
                               TensorView<T, cuda> dgamma, TensorView<T, cuda> dbeta, index_t batch, index_t channels,
                               index_t inner, bool accumulate, Reduce&& reduce) {
        backward(dy, x, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta, batch, channels, inner, accumulate, &reduce);
    }

    template <class T>
    static void backward_eval(ConstView<T, cuda> dy, ConstView<T, cuda> x, ConstView<T, cuda> gamma,
                              ConstView<T, cuda> running_mean, ConstView<T, cuda> running_var, TensorView<T, cuda> dx,
                              TensorView<T, cuda> dgamma, TensorView<T, cuda> dbeta, index_t batch, index_t channels,
                              index_t inner, double eps, bool accumulate) {
        if (channels == 0) return;
        // One scratch area: [mean | invstd], [scale | shift], then the 2C + 1 sums.
        double* mean_invstd = cuda_detail::scratch<double>(static_cast<std::size_t>(6 * channels + 1));
        double* scale_shift = mean_invstd + 2 * channels;
        double* sums = scale_shift + 2 * channels;
        cuda_kernels::eval_statistics<<<blocks(channels), threads, 0, cuda_detail::stream()>>>(
            gamma.data(), running_mean.data(), running_var.data(), mean_invstd, scale_shift, channels, eps);
        GCL_CUDA_CHECK(cudaGetLastError());
        const auto per_channel = static_cast<unsigned>(channels);
        cuda_kernels::gradient_sums<<<per_channel, cuda_kernels::channel_threads, 0, cuda_detail::stream()>>>(
            dy.data(), x.data(), mean_invstd, static_cast<const T*>(nullptr), static_cast<const T*>(nullptr), sums,
            dgamma.data(), dbeta.data(), batch, channels, inner, accumulate);
        GCL_CUDA_CHECK(cudaGetLastError());
        affine(dy.data(), dx.data(), scale_shift, batch, channels, inner);  // dx = gamma invstd dy
    }

private:
    using NoReduce = void(double*, index_t);  // the plain overloads: no reduce, no host round trip
    static constexpr int threads = cuda_detail::elementwise_threads;
    static unsigned blocks(index_t n) { return cuda_detail::grid_blocks(n, threads); }

    template <class T>
    static void affine(const T* x, T* y, const double* scale_shift, index_t batch, index_t channels, index_t inner) {
        const index_t n = batch * channels * inner;
        if (n == 0) return;
        cuda_kernels::affine_per_channel<<<blocks(n), threads, 0, cuda_detail::stream()>>>(x, y, scale_shift, n,
                                                                                           channels, inner);
        GCL_CUDA_CHECK(cudaGetLastError());
    }

    // Passes n device doubles through a host reduce(values, n), in place.
    template <class Reduce>
    static void reduce_on_host(double* device_values, index_t n, Reduce* reduce) {
        std::vector<double> host(static_cast<std::size_t>(n));
        const std::size_t bytes = host.size() * sizeof(double);
        cuda_detail::copy_to_host(host.data(), device_values, bytes);
        (*reduce)(host.data(), n);
        cuda_detail::copy_to_device(device_values, host.data(), bytes);
    }

    template <class T, class Reduce>
    static void forward(ConstView<T, cuda> x, ConstView<T, cuda> gamma, ConstView<T, cuda> beta, TensorView<T, cuda> y,
                        TensorView<T, cuda> running_mean, TensorView<T, cuda> running_var, TensorView<T, cuda> saved_mean,
                        TensorView<T, cuda> saved_invstd, index_t batch, index_t channels, index_t inner, double momentum,
                        double eps, Reduce* reduce) {
        if (channels == 0) return;
        // One scratch area: the C + 1 sums, the C squares, [scale | shift].
        double* sums = cuda_detail::scratch<double>(static_cast<std::size_t>(4 * channels + 1));
        double* squares = sums + channels + 1;
        double* scale_shift = squares + channels;
        const auto per_channel = static_cast<unsigned>(channels);
        cuda_kernels::channel_sums<<<per_channel, cuda_kernels::channel_threads, 0, cuda_detail::stream()>>>(
            x.data(), sums, batch, channels, inner);
        GCL_CUDA_CHECK(cudaGetLastError());
        if (reduce) reduce_on_host(sums, channels + 1, reduce);
        cuda_kernels::channel_square_sums<<<per_channel, cuda_kernels::channel_threads, 0, cuda_detail::stream()>>>(
            x.data(), sums, squares, batch, channels, inner);
        GCL_CUDA_CHECK(cudaGetLastError());
        if (reduce) reduce_on_host(squares, channels, reduce);
        cuda_kernels::finish_statistics<<<blocks(channels), threads, 0, cuda_detail::stream()>>>(
            sums, squares, gamma.data(), beta.data(), running_mean.data(), running_var.data(), saved_mean.data(),
            saved_invstd.data(), scale_shift, channels, momentum, eps);
        GCL_CUDA_CHECK(cudaGetLastError());
        affine(x.data(), y.data(), scale_shift, batch, channels, inner);
    }
    template <class T, class Reduce>
    static void backward(ConstView<T, cuda> dy, ConstView<T, cuda> x, ConstView<T, cuda> gamma,
                         ConstView<T, cuda> saved_mean, ConstView<T, cuda> saved_invstd, TensorView<T, cuda> dx,
                         TensorView<T, cuda> dgamma, TensorView<T, cuda> dbeta, index_t batch, index_t channels,
                         index_t inner, bool accumulate, Reduce* reduce) {
        if (channels == 0) return;
        double* sums = cuda_detail::scratch<double>(static_cast<std::size_t>(2 * channels + 1));
        const auto per_channel = static_cast<unsigned>(channels);
        cuda_kernels::gradient_sums<<<per_channel, cuda_kernels::channel_threads, 0, cuda_detail::stream()>>>(
            dy.data(), x.data(), static_cast<const double*>(nullptr), saved_mean.data(), saved_invstd.data(), sums,
            dgamma.data(), dbeta.data(), batch, channels, inner, accumulate);
        GCL_CUDA_CHECK(cudaGetLastError());
        if (reduce) reduce_on_host(sums, 2 * channels + 1, reduce);
        const index_t n = batch * channels * inner;
        if (n == 0) return;
        cuda_kernels::backward_train_dx<<<blocks(n), threads, 0, cuda_detail::stream()>>>(
            dy.data(), x.data(), gamma.data(), saved_mean.data(), saved_invstd.data(), sums, dx.data(), n, channels,
            inner);
        GCL_CUDA_CHECK(cudaGetLastError());
    }
};

}  // namespace gcl::backend
