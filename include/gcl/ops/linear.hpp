#pragma once
// Fully connected layer: y = x w^T + bias, with x [N, in], w [out, in] (PyTorch's layout),
// bias [out], y [N, out]. Built from gemm and the bias ops, so it runs on every backend.
//
//   ops::linear_forward(x, w, bias, y.view());
//   ops::linear_backward_data(dy, w, dx.view());                        // dx = dy w
//   ops::linear_backward_weight(dy, x, dw.view(), WriteMode::accumulate); // dw (+)= dy^T x
//   ops::linear_backward_bias(dy, db.view());                           // db (+)= column sums of dy
#include "gcl/ops/bias.hpp"
#include "gcl/ops/common.hpp"
#include "gcl/ops/gemm.hpp"

namespace gcl::ops {

namespace detail {
inline Shape linear_output_shape(std::string_view op, const Shape& x, const Shape& w) {
    if (x.rank() != 2) fail(op, "input must have shape [N, in], got ", x, " (weight ", w, ")");
    if (w.rank() != 2) fail(op, "weight must have shape [out, in], got ", w, " (input ", x, ")");
    if (x[1] != w[1]) fail(op, "input ", x, " has ", x[1], " features but weight ", w, " expects ", w[1]);
    return Shape{x[0], w[0]};
}

inline void check_linear_shapes(std::string_view op, const Shape& x, const Shape& w, const Shape& y,
                                std::string_view x_name, std::string_view y_name) {
    const Shape expected = linear_output_shape(op, x, w);
    if (!(y == expected)) fail(op, y_name, " is ", y, " but ", x_name, " ", x, " and weight ", w, " give ", expected);
}
}  // namespace detail

// [N, out] for x [N, in] and w [out, in].
inline Shape linear_output_shape(const Shape& x, const Shape& w) {
    return detail::linear_output_shape("ops::linear_output_shape", x, w);
}

// y = x w^T; y is overwritten.
template <class T, class Device>
void linear_forward(Input<T, Device> x, Input<T, Device> w, TensorView<T, Device> y) {
    detail::check_linear_shapes("ops::linear_forward", x.shape(), w.shape(), y.shape(), "x", "y");
    gemm(x, w, y, {.transpose_b = true});
}

// y = x w^T + bias.
template <class T, class Device>
void linear_forward(Input<T, Device> x, Input<T, Device> w, Input<T, Device> bias, TensorView<T, Device> y) {
    constexpr std::string_view op = "ops::linear_forward";
    detail::check_linear_shapes(op, x.shape(), w.shape(), y.shape(), "x", "y");
    detail::check_bias(op, bias, y, 1, "bias", "y");
    gemm(x, w, y, {.transpose_b = true});
    add_bias(bias, y, 1);
}

// dx = dy w; dx is overwritten.
template <class T, class Device>
void linear_backward_data(Input<T, Device> dy, Input<T, Device> w, TensorView<T, Device> dx) {
    detail::check_linear_shapes("ops::linear_backward_data", dx.shape(), w.shape(), dy.shape(), "dx", "dy");
    gemm(dy, w, dx);
}

// dw = (or +=) dy^T x.
template <class T, class Device>
void linear_backward_weight(Input<T, Device> dy, Input<T, Device> x, TensorView<T, Device> dw,
                            WriteMode mode = WriteMode::overwrite) {
    detail::check_linear_shapes("ops::linear_backward_weight", x.shape(), dw.shape(), dy.shape(), "x", "dy");
    gemm(dy, x, dw, {.transpose_a = true, .beta = mode == WriteMode::accumulate ? 1.0 : 0.0});
}

// db = (or +=) the sum of dy [N, out] over N.
template <class T, class Device>
void linear_backward_bias(Input<T, Device> dy, TensorView<T, Device> db, WriteMode mode = WriteMode::overwrite) {
    check_rank("ops::linear_backward_bias", dy.shape(), 2, "dy");
    detail::bias_backward("ops::linear_backward_bias", dy, db, 1, mode);
}

}  // namespace gcl::ops
