#pragma once
// CPU L2 normalisation, one line along the normalised dimension per task, with the per-line
// rules of backend/detail/normalize_items.hpp (the CUDA kernels run the same rules).
#include <cmath>

#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/detail/normalize_items.hpp"
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
            detail::l2_normalize_line(in, out, first, stride, extent, eps);
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
            detail::l2_normalize_backward_line(g, in, res, first, stride, extent, eps);
        });
    }

    // norms[line] = ||x|| of every line along the middle dimension of [outer, extent, inner],
    // whatever its values (a zero line has norm 0).
    template <class T>
    static void l2_norms(ConstView<T, cpu> x, TensorView<T, cpu> norms, index_t outer, index_t extent, index_t inner) {
        const T* in = x.data();
        T* out = norms.data();
        cpu_detail::parallel_for(outer * inner, cpu_detail::worth_parallel(outer * inner, extent),
                                 [&](index_t line) { detail::l2_norm_line(in, out, line, extent, inner); });
    }

    // Strict mode: y = x / ||x|| and norms[line] = ||x|| for every line, when every line has a
    // direction (no zero vector, no non-finite value, a norm within T's range). Otherwise nothing
    // is guaranteed about y and the problem is returned: the first non-finite value in memory
    // order if there is one, else the first line (outer-major, as the norms) without a direction.
    template <class T>
    static StrictNormalizeStatus l2_forward_strict(ConstView<T, cpu> x, TensorView<T, cpu> y, TensorView<T, cpu> norms,
                                                   index_t outer, index_t extent, index_t inner) {
        const T* in = x.data();
        for (index_t i = 0; i < x.numel(); ++i)
            if (!std::isfinite(in[i])) return detail::strict_non_finite_status(i, extent, inner);
        for (index_t line = 0; line < outer * inner; ++line) {
            const StrictNormalizeStatus::Problem problem =
                detail::l2_normalize_strict_line(in, y.data(), norms.data(), line, extent, inner);
            if (problem != StrictNormalizeStatus::none) return {problem, line, 0};
        }
        return {};
    }

    // Strict mode's gradient from the forward's output y and norms: dx = (dy - y (y . dy)) / ||x||.
    template <class T>
    static void l2_backward_strict(ConstView<T, cpu> dy, ConstView<T, cpu> y, ConstView<T, cpu> norms,
                                   TensorView<T, cpu> dx, index_t outer, index_t extent, index_t inner) {
        for (index_t line = 0; line < outer * inner; ++line)
            detail::l2_normalize_strict_backward_line(dy.data(), y.data(), norms.data(), dx.data(), line, extent,
                                                      inner);
    }
};

}  // namespace gcl::backend
