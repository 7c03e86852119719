#pragma once
// Reductions: over all elements, and along one dimension (with their gradients). Sums are
// accumulated in double and do not depend on the thread count. Views are contiguous.
//
//   double total = ops::sum(x);                 // also mean, max, dot(a, b)
//   double q = ops::dot_double(a, b);           // the dot product without rounding to the element type
//   ops::sum(x, out.view(), 1);                 // out: x's shape without dimension 1, or with it as 1
//   ops::mean(x, out.view(), -1);
//   ops::max(x, out.view(), argmax.view(), 0);  // argmax: Tensor<index_t> of out's shape
//   ops::sum_backward(dout, dx.view(), 1);      // dx[..., k, ...] = dout[...]
//   ops::mean_backward(dout, dx.view(), -1);
//   ops::max_backward(dout, argmax, dx.view(), 0);
#include "gcl/backend/cpu/reduce.hpp"
#include "gcl/ops/common.hpp"

namespace gcl::ops {

// ---- over all elements ----

template <ReadableTensor X>
typename X::value_type sum(const X& x) {
    const ConstViewOf<X> v = x;
    require_contiguous("ops::sum", v, "x");
    return static_cast<typename X::value_type>(backend::Reduce<typename X::device_type>::sum(v));
}

template <ReadableTensor X>
typename X::value_type mean(const X& x) {
    const ConstViewOf<X> v = x;
    require_contiguous("ops::mean", v, "x");
    if (v.numel() == 0) fail("ops::mean", "x of shape ", v.shape(), " has no elements");
    return static_cast<typename X::value_type>(backend::Reduce<typename X::device_type>::sum(v) /
                                               static_cast<double>(v.numel()));
}

// The largest element (NaN if there is one).
template <ReadableTensor X>
typename X::value_type max(const X& x) {
    const ConstViewOf<X> v = x;
    require_contiguous("ops::max", v, "x");
    if (v.numel() == 0) fail("ops::max", "x of shape ", v.shape(), " has no elements");
    return backend::Reduce<typename X::device_type>::max(v);
}

// Sum of a[i] b[i] over views of equal shape, in the double it is accumulated in (no rounding
// to the element type: Gram matrices and cosines of float vectors keep their precision).
template <ReadableTensor A, ReadableTensor B>
    requires std::same_as<typename A::value_type, typename B::value_type> &&
             std::same_as<typename A::device_type, typename B::device_type>
double dot_double(const A& a, const B& b) {
    const ConstViewOf<A> va = a;
    const ConstViewOf<B> vb = b;
    check_same_shape("ops::dot", va.shape(), vb.shape(), "a", "b");
    require_contiguous("ops::dot", va, "a");
    require_contiguous("ops::dot", vb, "b");
    return backend::Reduce<typename A::device_type>::dot(va, vb);
}

// Sum of a[i] b[i] over views of equal shape.
template <ReadableTensor A, ReadableTensor B>
    requires std::same_as<typename A::value_type, typename B::value_type> &&
             std::same_as<typename A::device_type, typename B::device_type>
typename A::value_type dot(const A& a, const B& b) {
    return static_cast<typename A::value_type>(dot_double(a, b));
}

// ---- along a dimension ----

namespace detail {
// Checks that `reduced` is `full` without dimension `dim`, or with it as 1; returns the split.
inline DimSplit check_reduced_shape(std::string_view op, const Shape& full, const Shape& reduced, int dim,
                                    std::string_view full_name, std::string_view reduced_name) {
    const int d = resolve_dim(op, full, dim);
    Shape kept = full;
    kept[d] = 1;
    if (!(reduced == remove_dim(full, d)) && !(reduced == kept))
        fail(op, reduced_name, " must have shape ", remove_dim(full, d), " or ", kept, " (", full_name, " ", full,
             " reduced along dimension ", d, "), got ", reduced);
    return split_at(full, d);
}

template <class A, class B, class Device>
void check_reduce_views(std::string_view op, const TensorView<A, Device>& in, const TensorView<B, Device>& out,
                        std::string_view in_name, std::string_view out_name) {
    require_contiguous(op, in, in_name);
    require_contiguous(op, out, out_name);
    require_disjoint(op, out, in, out_name, in_name);
}
}  // namespace detail

// out = sum of x along dim.
template <class T, class Device>
void sum(Input<T, Device> x, TensorView<T, Device> out, int dim) {
    constexpr std::string_view op = "ops::sum";
    const DimSplit s = detail::check_reduced_shape(op, x.shape(), out.shape(), dim, "x", "out");
    detail::check_reduce_views(op, x, out, "x", "out");
    backend::Reduce<Device>::sum_dim(x, out, s.outer, s.extent, s.inner, 1.0);
}

// out = mean of x along dim.
template <class T, class Device>
void mean(Input<T, Device> x, TensorView<T, Device> out, int dim) {
    constexpr std::string_view op = "ops::mean";
    const DimSplit s = detail::check_reduced_shape(op, x.shape(), out.shape(), dim, "x", "out");
    detail::check_reduce_views(op, x, out, "x", "out");
    if (s.extent == 0) fail(op, "x of shape ", x.shape(), " has no elements along dimension ", dim);
    backend::Reduce<Device>::sum_dim(x, out, s.outer, s.extent, s.inner, 1.0 / static_cast<double>(s.extent));
}

// out = max of x along dim; indices = position of each maximum along dim (first one; NaN wins).
template <class T, class Device>
void max(Input<T, Device> x, TensorView<T, Device> out, TensorView<index_t, Device> indices, int dim) {
    constexpr std::string_view op = "ops::max";
    const DimSplit s = detail::check_reduced_shape(op, x.shape(), out.shape(), dim, "x", "out");
    check_same_shape(op, indices.shape(), out.shape(), "indices", "out");
    detail::check_reduce_views(op, x, out, "x", "out");
    detail::check_reduce_views(op, x, indices, "x", "indices");
    require_disjoint(op, indices, out, "indices", "out");
    if (s.extent == 0) fail(op, "x of shape ", x.shape(), " has no elements along dimension ", dim);
    backend::Reduce<Device>::max_dim(x, out, indices, s.outer, s.extent, s.inner);
}

// out = max of x along dim.
template <class T, class Device>
void max(Input<T, Device> x, TensorView<T, Device> out, int dim) {
    constexpr std::string_view op = "ops::max";
    const DimSplit s = detail::check_reduced_shape(op, x.shape(), out.shape(), dim, "x", "out");
    detail::check_reduce_views(op, x, out, "x", "out");
    if (s.extent == 0) fail(op, "x of shape ", x.shape(), " has no elements along dimension ", dim);
    backend::Reduce<Device>::max_dim(x, out, TensorView<index_t, Device>(), s.outer, s.extent, s.inner);
}

// dx = dy broadcast along dim: the gradient of sum(x, out, dim); dx is overwritten.
template <class T, class Device>
void sum_backward(Input<T, Device> dy, TensorView<T, Device> dx, int dim) {
    constexpr std::string_view op = "ops::sum_backward";
    const DimSplit s = detail::check_reduced_shape(op, dx.shape(), dy.shape(), dim, "dx", "dy");
    detail::check_reduce_views(op, dy, dx, "dy", "dx");
    backend::Reduce<Device>::broadcast_dim(dy, dx, s.outer, s.extent, s.inner, 1.0);
}

// dx = dy / extent broadcast along dim: the gradient of mean(x, out, dim).
template <class T, class Device>
void mean_backward(Input<T, Device> dy, TensorView<T, Device> dx, int dim) {
    constexpr std::string_view op = "ops::mean_backward";
    const DimSplit s = detail::check_reduced_shape(op, dx.shape(), dy.shape(), dim, "dx", "dy");
    detail::check_reduce_views(op, dy, dx, "dy", "dx");
    if (s.extent == 0) return;
    backend::Reduce<Device>::broadcast_dim(dy, dx, s.outer, s.extent, s.inner, 1.0 / static_cast<double>(s.extent));
}

// dx = 0 except at the maxima, which receive dy: the gradient of max(x, out, indices, dim).
template <class T, class Device>
void max_backward(Input<T, Device> dy, Input<index_t, Device> indices, TensorView<T, Device> dx, int dim) {
    constexpr std::string_view op = "ops::max_backward";
    const DimSplit s = detail::check_reduced_shape(op, dx.shape(), dy.shape(), dim, "dx", "dy");
    check_same_shape(op, indices.shape(), dy.shape(), "indices", "dy");
    detail::check_reduce_views(op, dy, dx, "dy", "dx");
    detail::check_reduce_views(op, indices, dx, "indices", "dx");
    backend::Reduce<Device>::scatter_dim(dy, indices, dx, s.outer, s.extent, s.inner);
}

}  // namespace gcl::ops
