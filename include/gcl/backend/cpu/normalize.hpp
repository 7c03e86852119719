#pragma once
// CPU L2 normalisation, one line along the normalised dimension per task. Norms are taken in
// double after scaling by the line's largest magnitude, so they neither overflow (values near
// 1e200) nor lose digits to underflow (near 1e-160) wherever the norm itself is representable.
#include <algorithm>
#include <cmath>
#include <limits>

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

    // Strict mode: y = x / ||x|| and norms[line] = ||x|| for every line, when every line has a
    // direction (no zero vector, no non-finite value, a norm within T's range). Otherwise nothing
    // is guaranteed about y and the problem of the first offending line is returned (lines are
    // numbered outer-major, as the norms).
    template <class T>
    static StrictNormalizeStatus l2_forward_strict(ConstView<T, cpu> x, TensorView<T, cpu> y, TensorView<T, cpu> norms,
                                                   index_t outer, index_t extent, index_t inner) {
        const T* in = x.data();
        T* out = y.data();
        T* n = norms.data();
        for (index_t i = 0; i < x.numel(); ++i)
            if (!std::isfinite(in[i]))
                return {StrictNormalizeStatus::non_finite, (i / (extent * inner)) * inner + i % inner,
                        (i / inner) % extent};
        const double largest = static_cast<double>(std::numeric_limits<T>::max());
        for (index_t line = 0; line < outer * inner; ++line) {
            const index_t first = (line / inner) * extent * inner + line % inner;
            const double norm = line_norm(in, first, inner, extent);
            if (norm == 0) return {StrictNormalizeStatus::zero, line, 0};
            if (norm > largest) return {StrictNormalizeStatus::overflow, line, 0};
            n[line] = static_cast<T>(norm);
            for (index_t k = 0; k < extent; ++k) {
                const index_t at = first + k * inner;
                out[at] = static_cast<T>(static_cast<double>(in[at]) / norm);
            }
        }
        return {};
    }

    // Strict mode's gradient from the forward's output y and norms: dx = (dy - y (y . dy)) / ||x||.
    template <class T>
    static void l2_backward_strict(ConstView<T, cpu> dy, ConstView<T, cpu> y, ConstView<T, cpu> norms,
                                   TensorView<T, cpu> dx, index_t outer, index_t extent, index_t inner) {
        const T* g = dy.data();
        const T* u = y.data();
        const T* n = norms.data();
        T* res = dx.data();
        for (index_t line = 0; line < outer * inner; ++line) {
            const index_t first = (line / inner) * extent * inner + line % inner;
            double dot = 0;
            for (index_t k = 0; k < extent; ++k) {
                const index_t at = first + k * inner;
                dot += static_cast<double>(u[at]) * static_cast<double>(g[at]);
            }
            const double norm = static_cast<double>(n[line]);
            for (index_t k = 0; k < extent; ++k) {
                const index_t at = first + k * inner;
                res[at] = static_cast<T>((static_cast<double>(g[at]) - static_cast<double>(u[at]) * dot) / norm);
            }
        }
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
