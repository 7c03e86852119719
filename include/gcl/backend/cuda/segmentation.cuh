#pragma once
// CUDA passes of the segmentation losses with the CPU family's interface
// (backend/cpu/segmentation.hpp), around the per-pixel rules of
// backend/detail/segmentation_items.hpp.
//
// The per-pixel gradients are the CPU's rules, one thread per pixel. The sums over pixels run in
// double in a fixed order (Reduce<cuda>'s two passes for cross-entropy; one block per group and
// class, block_sum's order, for Dice), so a run repeats bit for bit and agrees with the CPU's
// sums in pixel order within rounding. The first bad target is the smallest such position
// (an atomicMin), as on the CPU. Small arrays (class weights, the Dice derivatives) are copied
// to the device per call; results come back to the host, which waits for the device.
#include <cuda_runtime.h>

#include <array>
#include <vector>

#include "gcl/backend/cuda/block_sum.cuh"
#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/copy.cuh"
#include "gcl/backend/cuda/launch.cuh"
#include "gcl/backend/cuda/reduce.cuh"
#include "gcl/backend/detail/segmentation_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

namespace cuda_kernels {

// (Kernels are templates, here over the index type, so that a header can define them.)
template <class Index>
__global__ void first_bad_target(const Index* targets, index_t n, index_t C, index_t ignore_index,
                                 unsigned long long* first) {
    for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
        if (!detail::valid_target(targets[i], C, ignore_index)) atomicMin(first, static_cast<unsigned long long>(i));
}

// Pixel q = n S + s: its gradient, and its loss term, weight and count (0 where ignored).
template <class T>
__global__ void cross_entropy_pixels(const double* prob, const index_t* targets, const double* class_weight,
                                     index_t ignore_index, index_t N, index_t C, index_t S, T* grad, double* loss,
                                     double* weight, double* count) {
    for (index_t q = blockIdx.x * index_t{blockDim.x} + threadIdx.x; q < N * S; q += index_t{gridDim.x} * blockDim.x) {
        const index_t y = targets[q];
        if (y == ignore_index) {
            loss[q] = weight[q] = count[q] = 0;
            continue;
        }
        const double w = class_weight[y];
        loss[q] = -detail::cross_entropy_pixel(prob, C, S, q / S, q % S, y, w, grad);
        weight[q] = w;
        count[q] = 1;
    }
}

template <class T>
__global__ void divide(T* x, index_t n, double divisor) {
    for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
        x[i] = static_cast<T>(static_cast<double>(x[i]) / divisor);
}

inline constexpr int dice_threads = 256;

// Block (group, c): over the group's pixels (image n = group, or all images), the sums of p_c,
// of p_c where the target is c, of [target = c], and of the pixels not ignored.
template <class Index>
__global__ void __launch_bounds__(dice_threads)
    dice_sums(const double* prob, const Index* targets, index_t ignore_index, bool per_image, index_t N, index_t C,
              index_t S, double* out /* [local groups, C, 4] */) {
    __shared__ double shared[(dice_threads / cuda_detail::warp_size) * 4];
    const index_t group = blockIdx.x / C, c = blockIdx.x % C;
    const index_t first = per_image ? group * S : 0, last = per_image ? first + S : N * S;
    double mine[4] = {0, 0, 0, 0};
    for (index_t q = first + threadIdx.x; q < last; q += dice_threads) {
        const index_t y = targets[q];
        if (y == ignore_index) continue;
        const double p = prob[((q / S) * C + c) * S + q % S];
        mine[0] += p;
        if (y == c) {
            mine[1] += p;
            mine[2] += 1;
        }
        mine[3] += 1;
    }
    const double total = cuda_detail::block_sum<dice_threads, 4>(mine, shared);
    if (threadIdx.x < 4) out[blockIdx.x * 4 + threadIdx.x] = total;
}

template <class T>
__global__ void dice_grad(const double* prob, const index_t* targets, index_t ignore_index, bool per_image,
                          index_t first_image, index_t N, index_t C, index_t S, const double* class_weight, double norm,
                          const double* pos, const double* neg, T* grad) {
    for (index_t q = blockIdx.x * index_t{blockDim.x} + threadIdx.x; q < N * S; q += index_t{gridDim.x} * blockDim.x) {
        const index_t y = targets[q];
        if (y == ignore_index) continue;
        const index_t n = q / S, g = per_image ? first_image + n : 0;
        detail::dice_pixel_grad(prob, C, S, n, q % S, y, class_weight, norm, pos + g * C, neg + g * C, grad);
    }
}

}  // namespace cuda_kernels

template <>
struct Segmentation<cuda> {
    static BadTarget first_bad_target(ConstView<index_t, cuda> targets, index_t C, index_t ignore_index) {
        const index_t n = targets.numel();
        if (n == 0) return {};
        Buffer<unsigned long long, cuda> first(1);
        const unsigned long long none = ~0ull;
        cuda_detail::copy_to_device(first.data(), &none, sizeof none);
        cuda_kernels::first_bad_target<<<blocks(n), threads, 0, cuda_detail::stream()>>>(targets.data(), n, C,
                                                                                         ignore_index, first.data());
        GCL_CUDA_CHECK_LAUNCH();
        unsigned long long at = none;
        cuda_detail::copy_to_host(&at, first.data(), sizeof at);
        if (at == none) return {};
        const auto position = static_cast<index_t>(at);
        return {position, Reduce<cuda>::element(targets, position)};
    }

    template <class T>
    static CrossEntropySums cross_entropy(ConstView<double, cuda> prob, ConstView<index_t, cuda> targets,
                                          const double* class_weight, index_t ignore_index, TensorView<T, cuda> grad) {
        const index_t N = prob.dim(0), C = prob.dim(1), S = prob.dim(2), pixels = N * S;
        CrossEntropySums r;
        if (pixels == 0) return r;
        const Buffer<double, cuda> weights = upload(class_weight, C);
        Buffer<double, cuda> terms(static_cast<std::size_t>(3 * pixels));  // loss, weight, count per pixel
        double* loss = terms.data();
        cuda_kernels::cross_entropy_pixels<<<blocks(pixels), threads, 0, cuda_detail::stream()>>>(
            prob.data(), targets.data(), weights.data(), ignore_index, N, C, S, grad.data(), loss, loss + pixels,
            loss + 2 * pixels);
        GCL_CUDA_CHECK_LAUNCH();
        const std::array<double, 3> sums = Reduce<cuda>::row_sums<3>(ConstView<double, cuda>(loss, Shape{3, pixels}));
        r.weighted_loss = sums[0];
        r.weight = sums[1];
        r.counted = static_cast<index_t>(sums[2]);
        return r;
    }

    template <class T>
    static void divide(TensorView<T, cuda> g, double divisor) {
        const index_t n = g.numel();
        if (n == 0) return;
        cuda_kernels::divide<<<blocks(n), threads, 0, cuda_detail::stream()>>>(g.data(), n, divisor);
        GCL_CUDA_CHECK_LAUNCH();
    }

    // As on the CPU: adds this batch's sums into the host array sums [3, G, C].
    static index_t dice_sums(ConstView<double, cuda> prob, ConstView<index_t, cuda> targets, index_t ignore_index,
                             bool per_image, index_t first_image, index_t groups, double* sums) {
        const index_t N = prob.dim(0), C = prob.dim(1), S = prob.dim(2);
        if (N * S == 0 || C == 0) return 0;
        const index_t local_groups = per_image ? N : 1;
        Buffer<double, cuda> device(static_cast<std::size_t>(local_groups * C * 4));
        cuda_kernels::dice_sums<<<static_cast<unsigned>(local_groups * C), cuda_kernels::dice_threads, 0,
                                  cuda_detail::stream()>>>(prob.data(), targets.data(), ignore_index, per_image, N, C,
                                                           S, device.data());
        GCL_CUDA_CHECK_LAUNCH();
        std::vector<double> host(device.size());
        cuda_detail::copy_to_host(host.data(), device.data(), device.bytes());
        double* inter = sums;
        double* sum_p = inter + groups * C;
        double* sum_t = sum_p + groups * C;
        index_t counted = 0;
        for (index_t l = 0; l < local_groups; ++l) {
            const index_t g = per_image ? first_image + l : 0;
            for (index_t c = 0; c < C; ++c) {
                const double* v = host.data() + (l * C + c) * 4;
                sum_p[g * C + c] += v[0];
                inter[g * C + c] += v[1];
                sum_t[g * C + c] += v[2];
            }
            counted += static_cast<index_t>(host[static_cast<std::size_t>(l * C * 4 + 3)]);  // class 0's block
        }
        return counted;
    }

    template <class T>
    static void dice_grad(ConstView<double, cuda> prob, ConstView<index_t, cuda> targets, index_t ignore_index,
                          bool per_image, index_t first_image, const double* class_weight, double norm,
                          const double* pos, const double* neg, TensorView<T, cuda> grad) {
        const index_t N = prob.dim(0), C = prob.dim(1), S = prob.dim(2);
        if (N * S == 0) return;
        const index_t G = per_image ? first_image + N : 1;  // the groups the batch's images reach
        const Buffer<double, cuda> weights = upload(class_weight, C);
        const Buffer<double, cuda> pos_device = upload(pos, G * C), neg_device = upload(neg, G * C);
        cuda_kernels::dice_grad<<<blocks(N * S), threads, 0, cuda_detail::stream()>>>(
            prob.data(), targets.data(), ignore_index, per_image, first_image, N, C, S, weights.data(), norm,
            pos_device.data(), neg_device.data(), grad.data());
        GCL_CUDA_CHECK_LAUNCH();
    }

private:
    static constexpr int threads = cuda_detail::elementwise_threads;
    static unsigned blocks(index_t n) { return cuda_detail::grid_blocks(n, threads); }

    // A device copy of n host doubles.
    static Buffer<double, cuda> upload(const double* host, index_t n) {
        Buffer<double, cuda> device(static_cast<std::size_t>(n));
        if (n > 0) cuda_detail::copy_to_device(device.data(), host, device.bytes());
        return device;
    }
};

}  // namespace gcl::backend
