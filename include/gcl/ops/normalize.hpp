#pragma once
// L2 normalisation, gcl's one implementation, in two modes:
//
// eps mode, as PyTorch's F.normalize(x, p=2, dim, eps): y = x / max(||x||_2, eps) along `dim`;
// eps guards all-zero (or tiny) vectors, which are divided by eps instead of their norm.
//
//   ops::l2_normalize_forward(z, e.view(), 1);          // rows of z [N, D] to unit length
//   ops::l2_normalize_backward(de, z, dz.view(), 1);    // z: the forward's input
//
// strict mode, for vectors that must have a direction: y = x / ||x||, and a zero vector, a
// non-finite value or a norm beyond T's range is a gcl::Error naming the op and the vector
// (the contrastive losses normalise their embeddings this way).
//
//   ops::l2_normalize_strict_forward(z, u.view(), norms.view(), 1, "supcon");  // norms [N]
//   ops::l2_normalize_strict_backward(du, u, norms, dz.view(), 1);           // u: the forward's output
//
// The norms alone, of any vectors (a zero vector has norm 0):
//
//   ops::l2_norm(g, norms.view(), 1);   // norms [N] of the rows of g [N, D]
//
// Norms are computed after scaling by the largest magnitude, so vectors with norms near 1e200 or
// 1e-160 (double) normalise as accurately as unit ones. y may be x itself; dx may be dy (and,
// in eps mode, x).
#include "gcl/backend/cpu/normalize.hpp"
#include "gcl/ops/common.hpp"

#include <cmath>
#include <limits>
#include <string_view>

namespace gcl::ops {

inline constexpr double default_normalize_eps = 1e-12;  // PyTorch's default

namespace detail {
// The checks both backward passes share: dy and dx shaped like `ref` (the forward's x in eps
// mode, its y in strict mode), all contiguous, dx disjoint from dy or dy itself.
template <class T, class Device>
DimSplit check_normalize_backward(std::string_view op, const ConstView<T, Device>& dy, const ConstView<T, Device>& ref,
                                  const TensorView<T, Device>& dx, int dim, std::string_view ref_name) {
    const int d = resolve_dim(op, ref.shape(), dim);
    check_same_shape(op, dy.shape(), ref.shape(), "dy", ref_name);
    check_same_shape(op, dx.shape(), ref.shape(), "dx", ref_name);
    require_contiguous(op, dy, "dy");
    require_contiguous(op, ref, ref_name);
    require_contiguous(op, dx, "dx");
    require_disjoint_or_same(op, dx, dy, "dx", "dy");
    return split_at(ref.shape(), d);
}
}  // namespace detail

template <class T, class Device>
void l2_normalize_forward(Input<T, Device> x, TensorView<T, Device> y, int dim, double eps = default_normalize_eps) {
    constexpr std::string_view op = "ops::l2_normalize_forward";
    const int d = resolve_dim(op, x.shape(), dim);
    if (!(eps > 0)) fail(op, "eps must be positive, got ", eps);
    check_same_shape(op, x.shape(), y.shape(), "x", "y");
    require_contiguous(op, x, "x");
    require_contiguous(op, y, "y");
    require_disjoint_or_same(op, y, x, "y", "x");
    const DimSplit s = split_at(x.shape(), d);
    backend::Normalize<Device>::l2_forward(x, y, s.outer, s.extent, s.inner, eps);
}

template <class T, class Device>
void l2_normalize_backward(Input<T, Device> dy, Input<T, Device> x, TensorView<T, Device> dx, int dim,
                           double eps = default_normalize_eps) {
    constexpr std::string_view op = "ops::l2_normalize_backward";
    resolve_dim(op, x.shape(), dim);
    if (!(eps > 0)) fail(op, "eps must be positive, got ", eps);
    const DimSplit s = detail::check_normalize_backward(op, dy, x, dx, dim, "x");
    require_disjoint_or_same(op, dx, x, "dx", "x");
    backend::Normalize<Device>::l2_backward(dy, x, dx, s.outer, s.extent, s.inner, eps);
}

// norms (x's shape without `dim`) = ||x|| along `dim`, for any values: 0 for a zero vector,
// NaN or infinity where x holds one, infinity for a norm beyond T's range.
template <class T, class Device>
void l2_norm(Input<T, Device> x, TensorView<T, Device> norms, int dim) {
    constexpr std::string_view op = "ops::l2_norm";
    const int d = resolve_dim(op, x.shape(), dim);
    check_same_shape(op, norms.shape(), remove_dim(x.shape(), d), "norms", "x without the normalised dimension");
    require_contiguous(op, x, "x");
    require_contiguous(op, norms, "norms");
    require_disjoint(op, norms, x, "norms", "x");
    const DimSplit s = split_at(x.shape(), d);
    backend::Normalize<Device>::l2_norms(x, norms, s.outer, s.extent, s.inner);
}

// Strict mode: y = x / ||x|| along `dim`, norms (x's shape without `dim`) receives ||x||. A
// vector that is zero, holds a non-finite value or has a norm beyond T's range is a gcl::Error
// naming `op` and the vector, called `what` (vectors are numbered as the norms' elements: the
// rows of a matrix).
template <class T, class Device>
void l2_normalize_strict_forward(Input<T, Device> x, TensorView<T, Device> y, TensorView<T, Device> norms, int dim,
                                 std::string_view op = "ops::l2_normalize_strict_forward",
                                 std::string_view what = "vector") {
    const int d = resolve_dim(op, x.shape(), dim);
    check_same_shape(op, x.shape(), y.shape(), "x", "y");
    check_same_shape(op, norms.shape(), remove_dim(x.shape(), d), "norms", "x without the normalised dimension");
    require_contiguous(op, x, "x");
    require_contiguous(op, y, "y");
    require_contiguous(op, norms, "norms");
    require_disjoint_or_same(op, y, x, "y", "x");
    const DimSplit s = split_at(x.shape(), d);
    const backend::StrictNormalizeStatus status =
        backend::Normalize<Device>::l2_forward_strict(x, y, norms, s.outer, s.extent, s.inner);
    using Problem = backend::StrictNormalizeStatus::Problem;
    if (status.problem == Problem::non_finite)
        fail(op, what, " ", status.line, " holds a non-finite value at ", status.position,
             " and cannot be L2-normalised");
    if (status.problem == Problem::zero) fail(op, what, " ", status.line, " is zero and cannot be L2-normalised");
    if (status.problem == Problem::overflow)
        fail(op, "the norm of ", what, " ", status.line, " overflows the element type; scale the input down");
}

// Strict mode's gradient from the forward's output y and norms: dx = (dy - y (y . dy)) / ||x||.
template <class T, class Device>
void l2_normalize_strict_backward(Input<T, Device> dy, Input<T, Device> y, Input<T, Device> norms,
                                  TensorView<T, Device> dx, int dim) {
    constexpr std::string_view op = "ops::l2_normalize_strict_backward";
    const DimSplit s = detail::check_normalize_backward(op, dy, y, dx, dim, "y");
    check_same_shape(op, norms.shape(), remove_dim(y.shape(), resolve_dim(op, y.shape(), dim)), "norms",
                     "y without the normalised dimension");
    require_contiguous(op, norms, "norms");
    require_disjoint(op, dx, y, "dx", "y");
    backend::Normalize<Device>::l2_backward_strict(dy, y, norms, dx, s.outer, s.extent, s.inner);
}

}  // namespace gcl::ops
