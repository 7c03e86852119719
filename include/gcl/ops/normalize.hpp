#pragma once
// L2 normalisation along one dimension, as PyTorch's F.normalize(x, p=2, dim, eps):
//   y = x / max(||x||_2, eps)
// eps guards all-zero (or tiny) vectors: they are divided by eps instead of their norm.
//
//   ops::l2_normalize_forward(z, e.view(), 1);          // rows of z [N, D] to unit length
//   ops::l2_normalize_backward(de, z, dz.view(), 1);    // z: the forward's input
//
// y may be x itself; dx may be dy or x itself.
#include "gcl/backend/cpu/normalize.hpp"
#include "gcl/ops/common.hpp"

namespace gcl::ops {

inline constexpr double default_normalize_eps = 1e-12;  // PyTorch's default

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
    const int d = resolve_dim(op, x.shape(), dim);
    if (!(eps > 0)) fail(op, "eps must be positive, got ", eps);
    check_same_shape(op, dy.shape(), x.shape(), "dy", "x");
    check_same_shape(op, dx.shape(), x.shape(), "dx", "x");
    require_contiguous(op, dy, "dy");
    require_contiguous(op, x, "x");
    require_contiguous(op, dx, "dx");
    require_disjoint_or_same(op, dx, dy, "dx", "dy");
    require_disjoint_or_same(op, dx, x, "dx", "x");
    const DimSplit s = split_at(x.shape(), d);
    backend::Normalize<Device>::l2_backward(dy, x, dx, s.outer, s.extent, s.inner, eps);
}

}  // namespace gcl::ops
