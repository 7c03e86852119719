#pragma once
// CPU L2 normalisation, one line along the normalised dimension per task. Norms are taken in
// double after scaling by the line's largest magnitude, so they neither overflow (values near
// 1e200) nor lose digits to underflow (near 1e-160) wherever the norm itself is representable.
#include <algorithm>
#include <cmath>

#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct Normalize<cpu> {
    // y = x / max(||x||, eps) along the middle dimension of [outer, extent, inner].
    template <class T>
    static void l2_forward(ConstView<T, cpu> x, TensorView<T, cpu> y, index_t outer, index_t extent, index_t inner,
                           double eps) {
        const T* in = x.data();
        T* out = y.data();
        cpu_detail::for_each_line(outer, extent, inner, [&](index_t first, index_t stride) {
            const double norm = std::max(line_norm(in, first, stride, extent), eps);
            for (index_t k = 0; k < extent; ++k) {
                const index_t at = first + k * stride;
                out[at] = static_cast<T>(static_cast<double>(in[at]) / norm);
            }
        });
    }

    // With n = ||x||: dx = (dy - y sum(dy y)) / n where n >= eps, and dx = dy / eps where the
    // norm is clamped (the clamp passes no gradient to n), as PyTorch's F.normalize.
    template <class T>
    static void l2_backward(ConstView<T, cpu> dy, ConstView<T, cpu> x, TensorView<T, cpu> dx, index_t outer,
                            index_t extent, index_t inner, double eps) {
        const T* g = dy.data();
        const T* in = x.data();
        T* res = dx.data();
        cpu_detail::for_each_line(outer, extent, inner, [&](index_t first, index_t stride) {
            const double norm = line_norm(in, first, stride, extent);
            if (norm < eps) {
                for (index_t k = 0; k < extent; ++k) {
                    const index_t at = first + k * stride;
                    res[at] = static_cast<T>(static_cast<double>(g[at]) / eps);
                }
                return;
            }
            double dot = 0;
            for (index_t k = 0; k < extent; ++k) {
                const index_t at = first + k * stride;
                dot += static_cast<double>(g[at]) * (static_cast<double>(in[at]) / norm);
            }
            for (index_t k = 0; k < extent; ++k) {
                const index_t at = first + k * stride;
                res[at] = static_cast<T>((static_cast<double>(g[at]) - static_cast<double>(in[at]) / norm * dot) / norm);
            }
        });
    }

    // ||x|| of `extent` values `stride` apart: m sqrt(sum (x/m)^2) with m = max |x|. NaN when a
    // value is NaN, infinity when one is infinite.
    template <class T>
    static double line_norm(const T* in, index_t first, index_t stride, index_t extent) {
        double largest = 0;
        for (index_t k = 0; k < extent; ++k) {
            const double v = std::abs(static_cast<double>(in[first + k * stride]));
            if (std::isnan(v)) return v;
            largest = std::max(largest, v);
        }
        if (largest == 0 || std::isinf(largest)) return largest;
        double squares = 0;
        for (index_t k = 0; k < extent; ++k) {
            const double v = static_cast<double>(in[first + k * stride]) / largest;
            squares += v * v;
        }
        return largest * std::sqrt(squares);
    }
};

}  // namespace gcl::backend
