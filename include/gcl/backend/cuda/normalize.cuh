#pragma once
// CUDA L2 normalisation with the CPU family's interface (backend/cpu/normalize.hpp): one thread
// per line along the normalised dimension, running the CPU's per-line rules
// (backend/detail/normalize_items.hpp): the same scaling by the largest magnitude, sums in
// double in index order. nvcc fuses the sums' multiply-adds, so results agree with the CPU
// within rounding; a run repeats bit for bit.
//
// The strict forward reports what the CPU reports: the first non-finite value in memory order
// (an atomicMin of the indices), else the first line without a direction (an atomicMin of the
// lines' numbers). It waits for those results; the other passes return without waiting.
#include "gcl/backend/cuda/elementwise.cuh"
#include "gcl/backend/cuda/first_index.cuh"
#include "gcl/backend/detail/normalize_items.hpp"
#include "gcl/backend/detail/reduce_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

namespace cuda_kernels {

template <class T>
struct NormalizeLine {
    const T* x;
    T* y;
    index_t extent, inner;
    double eps;
    GCL_DEVICE void operator()(index_t line) const {
        detail::l2_normalize_line(x, y, detail::line_first(line, extent, inner), inner, extent, eps);
    }
};

template <class T>
struct NormalizeBackwardLine {
    const T* dy;
    const T* x;
    T* dx;
    index_t extent, inner;
    double eps;
    GCL_DEVICE void operator()(index_t line) const {
        detail::l2_normalize_backward_line(dy, x, dx, detail::line_first(line, extent, inner), inner, extent, eps);
    }
};

template <class T>
struct NormLine {
    const T* x;
    T* norms;
    index_t extent, inner;
    GCL_DEVICE void operator()(index_t line) const { detail::l2_norm_line(x, norms, line, extent, inner); }
};

// Normalises line `line` strictly; its key is line * 4 + problem when it has no direction, so
// the smallest key is the first such line, with its problem.
template <class T>
struct StrictNormalizeLine {
    const T* x;
    T* y;
    T* norms;
    index_t extent, inner;
    GCL_DEVICE unsigned long long operator()(index_t line) const {
        const StrictNormalizeStatus::Problem problem =
            detail::l2_normalize_strict_line(x, y, norms, line, extent, inner);
        return problem == StrictNormalizeStatus::none ? cuda_detail::no_key
                                                      : static_cast<unsigned long long>(line) * 4 + problem;
    }
};

template <class T>
struct StrictNormalizeBackwardLine {
    const T* dy;
    const T* y;
    const T* norms;
    T* dx;
    index_t extent, inner;
    GCL_DEVICE void operator()(index_t line) const {
        detail::l2_normalize_strict_backward_line(dy, y, norms, dx, line, extent, inner);
    }
};

}  // namespace cuda_kernels

template <>
struct Normalize<cuda> {
    // y = x / max(||x||, eps) along the middle dimension of [outer, extent, inner].
    template <class T>
    static void l2_forward(ConstView<T, cuda> x, TensorView<T, cuda> y, index_t outer, index_t extent, index_t inner,
                           double eps) {
        cuda_detail::for_each_item(outer * inner, cuda_kernels::NormalizeLine<T>{x.data(), y.data(), extent, inner, eps});
    }

    // With n = ||x||: dx = (dy - y sum(dy y)) / n where n >= eps, and dx = dy / eps where the
    // norm is clamped.
    template <class T>
    static void l2_backward(ConstView<T, cuda> dy, ConstView<T, cuda> x, TensorView<T, cuda> dx, index_t outer,
                            index_t extent, index_t inner, double eps) {
        cuda_detail::for_each_item(outer * inner, cuda_kernels::NormalizeBackwardLine<T>{dy.data(), x.data(), dx.data(),
                                                                                          extent, inner, eps});
    }

    // norms[line] = ||x|| of every line, whatever its values (a zero line has norm 0).
    template <class T>
    static void l2_norms(ConstView<T, cuda> x, TensorView<T, cuda> norms, index_t outer, index_t extent,
                         index_t inner) {
        cuda_detail::for_each_item(outer * inner, cuda_kernels::NormLine<T>{x.data(), norms.data(), extent, inner});
    }

    // Strict mode: y = x / ||x|| and norms[line] = ||x||, or the CPU's report of the problem
    // (waits for the device).
    template <class T>
    static StrictNormalizeStatus l2_forward_strict(ConstView<T, cuda> x, TensorView<T, cuda> y,
                                                   TensorView<T, cuda> norms, index_t outer, index_t extent,
                                                   index_t inner) {
        const index_t bad = cuda_detail::first_index_where(x.numel(), cuda_detail::NonfiniteAt<T>{x.data()});
        if (bad >= 0) return detail::strict_non_finite_status(bad, extent, inner);
        const unsigned long long key = cuda_detail::smallest_key(
            outer * inner, cuda_kernels::StrictNormalizeLine<T>{x.data(), y.data(), norms.data(), extent, inner});
        if (key == cuda_detail::no_key) return {};
        return {static_cast<StrictNormalizeStatus::Problem>(key % 4), static_cast<index_t>(key / 4), 0};
    }

    // Strict mode's gradient from the forward's output y and norms: dx = (dy - y (y . dy)) / ||x||.
    template <class T>
    static void l2_backward_strict(ConstView<T, cuda> dy, ConstView<T, cuda> y, ConstView<T, cuda> norms,
                                   TensorView<T, cuda> dx, index_t outer, index_t extent, index_t inner) {
        cuda_detail::for_each_item(outer * inner, cuda_kernels::StrictNormalizeBackwardLine<T>{
                                                      dy.data(), y.data(), norms.data(), dx.data(), extent, inner});
    }
};

}  // namespace gcl::backend
