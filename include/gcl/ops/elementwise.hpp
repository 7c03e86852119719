#pragma once
// Element-wise arithmetic on views of equal shape (no broadcasting; see ops/bias.hpp for the
// per-channel case). Views are contiguous, except for copy, which takes any strides. Outputs
// may be one of the inputs exactly (in place), but must not partly overlap them.
//
//   ops::add(a, b, out.view());          // out = a + b       (also sub, mul, div)
//   ops::scale(x, 0.5, out.view());      // out = 0.5 x
//   ops::add_scalar(x, 1.0, out.view()); // out = x + 1
//   ops::axpy(-lr, grad, w.view());      // w += -lr grad
//   ops::axpby(a, x, b, y.view());       // y = a x + b y
//   ops::fill(out.view(), 0.0);
//   ops::copy(x.view().transpose(0, 1), out.view());
//   ops::convert(x_float, x_double.view());   // out = static_cast<double>(x)
#include "gcl/backend/cpu/elementwise.hpp"
#include "gcl/ops/common.hpp"

namespace gcl::ops {

namespace detail {
template <class T, class Device>
void check_binary(std::string_view op, const ConstView<T, Device>& a, const ConstView<T, Device>& b,
                  const TensorView<T, Device>& out) {
    check_same_shape(op, a.shape(), b.shape(), "a", "b");
    check_same_shape(op, a.shape(), out.shape(), "a", "out");
    require_contiguous(op, a, "a");
    require_contiguous(op, b, "b");
    require_contiguous(op, out, "out");
    require_disjoint_or_same(op, out, a, "out", "a");
    require_disjoint_or_same(op, out, b, "out", "b");
}

template <class T, class Device>
void check_unary(std::string_view op, const ConstView<T, Device>& x, const TensorView<T, Device>& out,
                 std::string_view out_name) {
    check_same_shape(op, x.shape(), out.shape(), "x", out_name);
    require_contiguous(op, x, "x");
    require_contiguous(op, out, out_name);
    require_disjoint_or_same(op, out, x, out_name, "x");
}
}  // namespace detail

template <class T, class Device>
void fill(TensorView<T, Device> out, Scalar<T> value) {
    require_contiguous("ops::fill", out, "out");
    backend::Elementwise<Device>::fill(out, value);
}

// out = in, for any strides (the way to make a strided view contiguous).
template <class T, class Device>
void copy(Input<T, Device> in, TensorView<T, Device> out) {
    constexpr std::string_view op = "ops::copy";
    check_same_shape(op, in.shape(), out.shape(), "in", "out");
    require_disjoint_or_same(op, out, in, "out", "in");
    backend::Elementwise<Device>::copy(in, out);
}

// out = in converted to out's element type; contiguous views of equal shape.
template <class S, class T, class Device>
void convert(ConstView<S, Device> in, TensorView<T, Device> out) {
    constexpr std::string_view op = "ops::convert";
    check_same_shape(op, in.shape(), out.shape(), "in", "out");
    require_contiguous(op, in, "in");
    require_contiguous(op, out, "out");
    backend::Elementwise<Device>::convert(in, out);
}

template <class T, class Device>
void add(Input<T, Device> a, Input<T, Device> b, TensorView<T, Device> out) {
    detail::check_binary("ops::add", a, b, out);
    backend::Elementwise<Device>::binary(backend::BinaryOp::add, a, b, out);
}

template <class T, class Device>
void sub(Input<T, Device> a, Input<T, Device> b, TensorView<T, Device> out) {
    detail::check_binary("ops::sub", a, b, out);
    backend::Elementwise<Device>::binary(backend::BinaryOp::sub, a, b, out);
}

template <class T, class Device>
void mul(Input<T, Device> a, Input<T, Device> b, TensorView<T, Device> out) {
    detail::check_binary("ops::mul", a, b, out);
    backend::Elementwise<Device>::binary(backend::BinaryOp::mul, a, b, out);
}

template <class T, class Device>
void div(Input<T, Device> a, Input<T, Device> b, TensorView<T, Device> out) {
    detail::check_binary("ops::div", a, b, out);
    backend::Elementwise<Device>::binary(backend::BinaryOp::div, a, b, out);
}

// out = alpha x.
template <class T, class Device>
void scale(Input<T, Device> x, Scalar<T> alpha, TensorView<T, Device> out) {
    detail::check_unary("ops::scale", x, out, "out");
    backend::Elementwise<Device>::affine(x, alpha, T(0), out);
}

// out = x + value.
template <class T, class Device>
void add_scalar(Input<T, Device> x, Scalar<T> value, TensorView<T, Device> out) {
    detail::check_unary("ops::add_scalar", x, out, "out");
    backend::Elementwise<Device>::affine(x, T(1), value, out);
}

// y += alpha x.
template <class T, class Device>
void axpy(Scalar<T> alpha, Input<T, Device> x, TensorView<T, Device> y) {
    detail::check_unary("ops::axpy", x, y, "y");
    backend::Elementwise<Device>::axpby(alpha, x, T(1), y);
}

// y = alpha x + beta y; with beta == 0, y's old contents are not read.
template <class T, class Device>
void axpby(Scalar<T> alpha, Input<T, Device> x, Scalar<T> beta, TensorView<T, Device> y) {
    detail::check_unary("ops::axpby", x, y, "y");
    backend::Elementwise<Device>::axpby(alpha, x, beta, y);
}

}  // namespace gcl::ops
