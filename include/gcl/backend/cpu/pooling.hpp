#pragma once
// CPU pooling: one (n, c) plane per parallel task.
#include <algorithm>
#include <cmath>
#include <limits>

#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/detail/pooling_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/core/window2d.hpp"

namespace gcl::backend {

template <>
struct Pooling<cpu> {
    // y [N, C, OH, OW] = window maxima of x [N, C, H, W]; indices holds each maximum's position
    // h * W + w within its plane (PyTorch's convention). Ties go to the first element in
    // row-major order; NaN wins, so it propagates (the rule is backend/detail/pooling_items.hpp's,
    // which the CUDA kernel runs too).
    template <class T>
    static void max_pool2d_forward(ConstView<T, cpu> x, TensorView<T, cpu> y, TensorView<index_t, cpu> indices,
                                   const Pool2dParams& p) {
        const index_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3), oh = y.dim(2), ow = y.dim(3);
        const index_t window = p.kernel[0] * p.kernel[1];
        const bool two_by_two = p.kernel[0] == 2 && p.kernel[1] == 2 && p.stride[0] == 2 && p.stride[1] == 2 &&
                                p.padding[0] == 0 && p.padding[1] == 0 && 2 * oh <= h && 2 * ow <= w;
        if (two_by_two) {  // the U-Net's pooling: four candidates, no bounds to clip
            cpu_detail::parallel_for(planes, cpu_detail::worth_parallel(planes, oh * ow * window), [&](index_t plane) {
                max_pool2x2_plane(x.data() + plane * h * w, w, y.data() + plane * oh * ow,
                                  indices.data() + plane * oh * ow, oh, ow);
            });
            return;
        }
        cpu_detail::parallel_for(planes, cpu_detail::worth_parallel(planes, oh * ow * window), [&](index_t plane) {
            const T* in = x.data() + plane * h * w;
            T* out = y.data() + plane * oh * ow;
            index_t* idx = indices.data() + plane * oh * ow;
            for (index_t i = 0; i < oh; ++i)
                for (index_t j = 0; j < ow; ++j)
                    idx[i * ow + j] = detail::max_pool_window(in, h, w, i * p.stride[0] - p.padding[0],
                                                              j * p.stride[1] - p.padding[1], p.kernel[0],
                                                              p.kernel[1], out[i * ow + j]);
        });
    }

    // One plane of a 2x2, stride-2 max pool with the general loop's rules: candidates in row-major
    // order, a later one taken only when it is larger (ties: the first) or NaN (the first NaN wins).
    // Written as selects over the four candidates so that the row loop vectorises.
    template <class T>
    static void max_pool2x2_plane(const T* in, index_t w, T* out, index_t* idx, index_t oh, index_t ow) {
        for (index_t i = 0; i < oh; ++i) {
            const T* top = in + 2 * i * w;
            const T* bottom = top + w;
            T* out_row = out + i * ow;
            index_t* idx_row = idx + i * ow;
            const index_t row_start = 2 * i * w;
#pragma omp simd
            for (index_t j = 0; j < ow; ++j) {
                const T b = top[2 * j + 1], c = bottom[2 * j], d = bottom[2 * j + 1];
                T best = top[2 * j];
                index_t offset = 0;  // of the best candidate in the window: 0, 1, w or w + 1
                bool take = beats(b, best);
                best = take ? b : best;
                offset = take ? 1 : offset;
                take = beats(c, best);
                best = take ? c : best;
                offset = take ? w : offset;
                take = beats(d, best);
                best = take ? d : best;
                offset = take ? w + 1 : offset;
                out_row[j] = best;
                idx_row[j] = row_start + 2 * j + offset;
            }
        }
    }

    // dx = 0, then dx[plane][indices] += dy (overlapping windows add up).
    template <class T>
    static void max_pool2d_backward(ConstView<T, cpu> dy, ConstView<index_t, cpu> indices, TensorView<T, cpu> dx) {
        const index_t planes = dx.dim(0) * dx.dim(1), plane_size = dx.dim(2) * dx.dim(3);
        const index_t outputs = dy.dim(2) * dy.dim(3);
        index_t bad = 0;
        cpu_detail::parallel_for(planes, cpu_detail::worth_parallel(planes, outputs + plane_size), [&](index_t plane) {
            T* out = dx.data() + plane * plane_size;
            const T* g = dy.data() + plane * outputs;
            const index_t* idx = indices.data() + plane * outputs;
            std::fill(out, out + plane_size, T(0));
            for (index_t k = 0; k < outputs; ++k) {
                if (idx[k] < 0 || idx[k] >= plane_size) {
#pragma omp atomic
                    ++bad;
                    continue;
                }
                out[idx[k]] += g[k];
            }
        });
        if (bad > 0)
            fail("ops::max_pool2d_backward", bad, " indices lie outside their input plane of ", dx.dim(2), "x",
                 dx.dim(3), " (indices of shape ", indices.shape(), ")");
    }

    // y[p] = mean of plane p of x, for `planes` planes of `size` elements.
    template <class T>
    static void global_avg_pool_forward(ConstView<T, cpu> x, TensorView<T, cpu> y, index_t planes, index_t size) {
        cpu_detail::parallel_for(planes, cpu_detail::worth_parallel(planes, size), [&](index_t plane) {
            const T* in = x.data() + plane * size;
            double sum = 0;
#pragma omp simd reduction(+ : sum)
            for (index_t i = 0; i < size; ++i) sum += static_cast<double>(in[i]);
            y.data()[plane] = static_cast<T>(sum / static_cast<double>(size));
        });
    }

    // dx[p, i] = dy[p] / size.
    template <class T>
    static void global_avg_pool_backward(ConstView<T, cpu> dy, TensorView<T, cpu> dx, index_t planes, index_t size) {
        cpu_detail::parallel_for(planes, cpu_detail::worth_parallel(planes, size), [&](index_t plane) {
            const T v = static_cast<T>(static_cast<double>(dy.data()[plane]) / static_cast<double>(size));
            std::fill(dx.data() + plane * size, dx.data() + (plane + 1) * size, v);
        });
    }

private:
    // Whether a later candidate v replaces the window's best so far (max_pool_window's rule).
    template <class T>
    static bool beats(T v, T best) {
        return best == best && (v > best || v != v);
    }
};

}  // namespace gcl::backend
