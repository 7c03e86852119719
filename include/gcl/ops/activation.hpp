#pragma once
// ReLU and LeakyReLU. Element by element: y may be x itself and dx may be dy itself.
//
//   ops::leaky_relu_forward(x, y.view(), 0.01);
//   ops::leaky_relu_backward(dy, x, dx.view(), 0.01);   // x: the forward's input or output
//
// The backward passes only look at the signs of x, so the forward's output (same signs, for a
// non-negative slope) serves as well, which lets the forward pass run in place.
//
// At x == 0 the gradient is the negative side's (0 for ReLU), as in PyTorch.
#include "gcl/backend/cpu/activation.hpp"
#include "gcl/ops/common.hpp"

namespace gcl::ops {

inline constexpr double default_leaky_relu_slope = 0.01;  // PyTorch's default

namespace detail {
template <class T, class Device>
void check_elementwise_pair(std::string_view op, const ConstView<T, Device>& in, const TensorView<T, Device>& out,
                            std::string_view in_name, std::string_view out_name) {
    check_same_shape(op, in.shape(), out.shape(), in_name, out_name);
    require_contiguous(op, in, in_name);
    require_contiguous(op, out, out_name);
    require_disjoint_or_same(op, out, in, out_name, in_name);
}
}  // namespace detail

template <class T, class Device>
void leaky_relu_forward(Input<T, Device> x, TensorView<T, Device> y, Scalar<T> slope = default_leaky_relu_slope) {
    detail::check_elementwise_pair("ops::leaky_relu_forward", x, y, "x", "y");
    backend::Activation<Device>::leaky_relu_forward(x, y, slope);
}

template <class T, class Device>
void leaky_relu_backward(Input<T, Device> dy, Input<T, Device> x, TensorView<T, Device> dx,
                         Scalar<T> slope = default_leaky_relu_slope) {
    constexpr std::string_view op = "ops::leaky_relu_backward";
    check_same_shape(op, dy.shape(), x.shape(), "dy", "x");
    detail::check_elementwise_pair(op, dy, dx, "dy", "dx");
    detail::check_elementwise_pair(op, x, dx, "x", "dx");
    backend::Activation<Device>::leaky_relu_backward(dy, x, dx, slope);
}

template <class T, class Device>
void relu_forward(Input<T, Device> x, TensorView<T, Device> y) {
    detail::check_elementwise_pair("ops::relu_forward", x, y, "x", "y");
    backend::Activation<Device>::relu_forward(x, y);
}

template <class T, class Device>
void relu_backward(Input<T, Device> dy, Input<T, Device> x, TensorView<T, Device> dx) {
    constexpr std::string_view op = "ops::relu_backward";
    check_same_shape(op, dy.shape(), x.shape(), "dy", "x");
    detail::check_elementwise_pair(op, dy, dx, "dy", "dx");
    detail::check_elementwise_pair(op, x, dx, "x", "dx");
    backend::Activation<Device>::relu_backward(dy, x, dx);
}

}  // namespace gcl::ops
