#pragma once
// The per-line rules of the L2 normalisation (eps and strict modes), shared by the CPU loops and
// the CUDA kernels (one thread per line) and replayed on the host by the tests. A line is the
// `extent` values first, first + stride, ... of a tensor seen as [outer, extent, inner]
// (stride = inner), numbered outer-major as the strict mode's norms. Norms are taken in double
// after scaling by the line's largest magnitude, so they neither overflow (values near 1e200)
// nor lose digits to underflow (near 1e-160) wherever the norm itself is representable.
#include <cfloat>
#include <cmath>
#include <type_traits>

#include "gcl/backend/detail/reduce_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/config.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::backend::detail {

// The largest finite value of T (float or double), as a double.
template <class T>
GCL_HOST_DEVICE constexpr double largest_finite() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "L2 normalisation works on float or double");
    if constexpr (std::is_same_v<T, float>)
        return static_cast<double>(FLT_MAX);
    else
        return DBL_MAX;
}

// ||x|| of the line at `first`: m sqrt(sum (x/m)^2) with m = max |x|. NaN when a value is NaN,
// infinity when one is infinite.
template <class T>
GCL_HOST_DEVICE inline double l2_line_norm(const T* in, index_t first, index_t stride, index_t extent) {
    double largest = 0;
    for (index_t k = 0; k < extent; ++k) {
        const double v = fabs(static_cast<double>(in[first + k * stride]));
        if (v != v) return v;
        largest = largest < v ? v : largest;
    }
    if (largest == 0 || largest == INFINITY) return largest;
    double squares = 0;
    for (index_t k = 0; k < extent; ++k) {
        const double v = static_cast<double>(in[first + k * stride]) / largest;
        squares += v * v;
    }
    return largest * sqrt(squares);
}

// norms[line] = ||x|| of line `line`, as T: zero for a zero line, NaN or infinity for one
// with a non-finite value, infinity for a norm beyond T's range.
template <class T>
GCL_HOST_DEVICE inline void l2_norm_line(const T* in, T* norms, index_t line, index_t extent, index_t inner) {
    norms[line] = static_cast<T>(l2_line_norm(in, line_first(line, extent, inner), inner, extent));
}

// eps mode: out = x / max(||x||, eps) on the line at `first`. out may be in.
template <class T>
GCL_HOST_DEVICE inline void l2_normalize_line(const T* in, T* out, index_t first, index_t stride, index_t extent,
                                              double eps) {
    const double n = l2_line_norm(in, first, stride, extent);
    const double norm = n < eps ? eps : n;
    for (index_t k = 0; k < extent; ++k) {
        const index_t at = first + k * stride;
        out[at] = static_cast<T>(static_cast<double>(in[at]) / norm);
    }
}

// eps mode's gradient on the line at `first`, with n = ||x||: dx = (dy - y sum(dy y)) / n where
// n >= eps, and dx = dy / eps where the norm is clamped (the clamp passes no gradient to n), as
// PyTorch's F.normalize. dx may be dy or x.
template <class T>
GCL_HOST_DEVICE inline void l2_normalize_backward_line(const T* dy, const T* x, T* dx, index_t first, index_t stride,
                                                       index_t extent, double eps) {
    const double norm = l2_line_norm(x, first, stride, extent);
    if (norm < eps) {
        for (index_t k = 0; k < extent; ++k) {
            const index_t at = first + k * stride;
            dx[at] = static_cast<T>(static_cast<double>(dy[at]) / eps);
        }
        return;
    }
    double dot = 0;
    for (index_t k = 0; k < extent; ++k) {
        const index_t at = first + k * stride;
        dot += static_cast<double>(dy[at]) * (static_cast<double>(x[at]) / norm);
    }
    for (index_t k = 0; k < extent; ++k) {
        const index_t at = first + k * stride;
        dx[at] = static_cast<T>((static_cast<double>(dy[at]) - static_cast<double>(x[at]) / norm * dot) / norm);
    }
}

// Strict mode on line `line` of finite values: y = x / ||x|| and norms[line] = ||x||, returning
// none; or, for a zero vector or a norm beyond T's range, that problem, writing nothing. y may be x.
template <class T>
GCL_HOST_DEVICE inline StrictNormalizeStatus::Problem l2_normalize_strict_line(const T* in, T* out, T* norms,
                                                                               index_t line, index_t extent,
                                                                               index_t inner) {
    const index_t first = line_first(line, extent, inner);
    const double norm = l2_line_norm(in, first, inner, extent);
    if (norm == 0) return StrictNormalizeStatus::zero;
    if (norm > largest_finite<T>()) return StrictNormalizeStatus::overflow;
    norms[line] = static_cast<T>(norm);
    for (index_t k = 0; k < extent; ++k) {
        const index_t at = first + k * inner;
        out[at] = static_cast<T>(static_cast<double>(in[at]) / norm);
    }
    return StrictNormalizeStatus::none;
}

// The strict mode's report of a non-finite value at flat index i: its line and its position
// along the line.
GCL_HOST_DEVICE inline StrictNormalizeStatus strict_non_finite_status(index_t i, index_t extent, index_t inner) {
    StrictNormalizeStatus s;
    s.problem = StrictNormalizeStatus::non_finite;
    s.line = (i / (extent * inner)) * inner + i % inner;
    s.position = (i / inner) % extent;
    return s;
}

// Strict mode's gradient on line `line`, from the forward's output y and norms:
// dx = (dy - y (y . dy)) / ||x||. dx may be dy (not y).
template <class T>
GCL_HOST_DEVICE inline void l2_normalize_strict_backward_line(const T* dy, const T* y, const T* norms, T* dx,
                                                              index_t line, index_t extent, index_t inner) {
    const index_t first = line_first(line, extent, inner);
    double dot = 0;
    for (index_t k = 0; k < extent; ++k) {
        const index_t at = first + k * inner;
        dot += static_cast<double>(y[at]) * static_cast<double>(dy[at]);
    }
    const double norm = static_cast<double>(norms[line]);
    for (index_t k = 0; k < extent; ++k) {
        const index_t at = first + k * inner;
        dx[at] = static_cast<T>((static_cast<double>(dy[at]) - static_cast<double>(y[at]) * dot) / norm);
    }
}

}  // namespace gcl::backend::detail
