#pragma once
// CUDA pooling with the CPU family's interface and rules (backend/cpu/pooling.hpp), around the
// per-item rules of backend/detail/pooling_items.hpp.
//
// Max pooling forward, its backward and global average pooling's backward give the CPU's bits:
// the backward is one warp per plane walking the outputs in chunks of 32 in order, the lowest
// lane of each group of equal indices adding the group's gradients in output order, so
// overlapping windows sum in the CPU's order and a run repeats bit for bit. Global average
// pooling's forward is one block per plane summing in double in block_sum's fixed order: it
// repeats bit for bit and agrees with the CPU within rounding.
#include "gcl/backend/cuda/block_sum.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/index_check.cuh"
#include "gcl/backend/cuda/launch.cuh"
#include "gcl/backend/cuda/stream.cuh"
#include "gcl/backend/detail/pooling_items.hpp"
#include "gcl/backend/detail/reduce_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/core/window2d.hpp"

namespace gcl::backend {

namespace cuda_kernels {

// Output e of y [planes, oh, ow]: its window's maximum and position.
template <class T>
__global__ void max_pool2d_forward(const T* x, T* y, index_t* indices, index_t n, index_t h, index_t w, index_t oh,
                                   index_t ow, index_t kh, index_t kw, index_t sh, index_t sw, index_t ph,
                                   index_t pw) {
    for (index_t e = blockIdx.x * index_t{blockDim.x} + threadIdx.x; e < n; e += index_t{gridDim.x} * blockDim.x) {
        const index_t plane = e / (oh * ow), i = (e / ow) % oh, j = e % ow;
        T best;
        indices[e] = detail::max_pool_window(x + plane * h * w, h, w, i * sh - ph, j * sw - pw, kh, kw, best);
        y[e] = best;
    }
}

inline constexpr int pool_backward_threads = 256;  // one warp per plane, 8 planes a block

template <class T>
__global__ void __launch_bounds__(pool_backward_threads)
    max_pool2d_backward(const T* dy, const index_t* indices, T* dx, index_t planes, index_t plane_size,
                        index_t outputs) {
    constexpr int warps = pool_backward_threads / cuda_detail::warp_size;
    __shared__ index_t targets[warps][cuda_detail::warp_size];
    __shared__ T values[warps][cuda_detail::warp_size];
    const int warp = static_cast<int>(threadIdx.x) / cuda_detail::warp_size;
    const int lane = static_cast<int>(threadIdx.x) % cuda_detail::warp_size;
    for (index_t plane = index_t{blockIdx.x} * warps + warp; plane < planes; plane += index_t{gridDim.x} * warps) {
        T* out = dx + plane * plane_size;
        for (index_t q = lane; q < plane_size; q += cuda_detail::warp_size) out[q] = T(0);
        __syncwarp();
        for (index_t chunk = 0; chunk < outputs; chunk += cuda_detail::warp_size) {
            const index_t k = chunk + lane;
            const index_t at = k < outputs ? indices[plane * outputs + k] : -1;
            targets[warp][lane] = at >= 0 && at < plane_size ? at : -1;
            values[warp][lane] = k < outputs ? dy[plane * outputs + k] : T(0);
            __syncwarp();
            const int count = static_cast<int>(outputs - chunk < cuda_detail::warp_size ? outputs - chunk
                                                                                        : cuda_detail::warp_size);
            if (lane < count) detail::max_pool_scatter_lane(targets[warp], values[warp], count, lane, out);
            __syncwarp();  // this chunk's writes land before the next chunk reads or the lanes reuse shared
        }
    }
}

inline constexpr int global_pool_threads = 256;

// One block per plane: y[plane] = mean of its `size` elements, summed in double.
template <class T>
__global__ void __launch_bounds__(global_pool_threads)
    global_avg_pool_forward(const T* x, T* y, index_t size) {
    __shared__ double shared[global_pool_threads / cuda_detail::warp_size];
    const index_t plane = blockIdx.x;
    const double mine[1] = {
        detail::strided_sum(x + plane * size, size, index_t{threadIdx.x}, index_t{global_pool_threads})};
    const double total = cuda_detail::block_sum<global_pool_threads, 1>(mine, shared);
    if (threadIdx.x == 0) y[plane] = static_cast<T>(total / static_cast<double>(size));
}

template <class T>
__global__ void global_avg_pool_backward(const T* dy, T* dx, index_t n, index_t size) {
    for (index_t e = blockIdx.x * index_t{blockDim.x} + threadIdx.x; e < n; e += index_t{gridDim.x} * blockDim.x)
        dx[e] = detail::global_avg_pool_backward_item(dy, size, e);
}

}  // namespace cuda_kernels

template <>
struct Pooling<cuda> {
    // y [N, C, OH, OW] = window maxima of x [N, C, H, W]; indices holds each maximum's position
    // h * W + w within its plane. Ties go to the first element in row-major order; NaN wins.
    template <class T>
    static void max_pool2d_forward(ConstView<T, cuda> x, TensorView<T, cuda> y, TensorView<index_t, cuda> indices,
                                   const Pool2dParams& p) {
        const index_t n = y.numel();
        if (n == 0) return;
        cuda_kernels::max_pool2d_forward<<<blocks(n), threads, 0, cuda_detail::stream()>>>(
            x.data(), y.data(), indices.data(), n, x.dim(2), x.dim(3), y.dim(2), y.dim(3), p.kernel[0], p.kernel[1],
            p.stride[0], p.stride[1], p.padding[0], p.padding[1]);
        GCL_CUDA_CHECK_LAUNCH();
    }

    // dx = 0, then dx[plane][indices] += dy (overlapping windows add up, in output order).
    // Throws when an index lies outside its plane (waits for the device to count them).
    template <class T>
    static void max_pool2d_backward(ConstView<T, cuda> dy, ConstView<index_t, cuda> indices, TensorView<T, cuda> dx) {
        const index_t planes = dx.dim(0) * dx.dim(1), plane_size = dx.dim(2) * dx.dim(3);
        const index_t outputs = dy.dim(2) * dy.dim(3);
        if (planes * plane_size == 0) return;
        constexpr int warps = cuda_kernels::pool_backward_threads / cuda_detail::warp_size;
        cuda_kernels::max_pool2d_backward<<<cuda_detail::grid_blocks(planes, warps),
                                            cuda_kernels::pool_backward_threads, 0, cuda_detail::stream()>>>(
            dy.data(), indices.data(), dx.data(), planes, plane_size, outputs);
        GCL_CUDA_CHECK_LAUNCH();
        const index_t bad = cuda_detail::count_outside(indices.data(), indices.numel(), plane_size);
        if (bad > 0)
            fail("ops::max_pool2d_backward", bad, " indices lie outside their input plane of ", dx.dim(2), "x",
                 dx.dim(3), " (indices of shape ", indices.shape(), ")");
    }

    // y[p] = mean of plane p of x, for `planes` planes of `size` elements.
    template <class T>
    static void global_avg_pool_forward(ConstView<T, cuda> x, TensorView<T, cuda> y, index_t planes, index_t size) {
        if (planes == 0) return;
        cuda_kernels::global_avg_pool_forward<<<static_cast<unsigned>(planes), cuda_kernels::global_pool_threads, 0,
                                                cuda_detail::stream()>>>(x.data(), y.data(), size);
        GCL_CUDA_CHECK_LAUNCH();
    }

    // dx[p, i] = dy[p] / size.
    template <class T>
    static void global_avg_pool_backward(ConstView<T, cuda> dy, TensorView<T, cuda> dx, index_t planes,
                                         index_t size) {
        const index_t n = planes * size;
        if (n == 0) return;
        cuda_kernels::global_avg_pool_backward<<<blocks(n), threads, 0, cuda_detail::stream()>>>(dy.data(), dx.data(),
                                                                                                 n, size);
        GCL_CUDA_CHECK_LAUNCH();
    }

private:
    static constexpr int threads = cuda_detail::elementwise_threads;
    static unsigned blocks(index_t n) { return cuda_detail::grid_blocks(n, threads); }
};

}  // namespace gcl::backend
