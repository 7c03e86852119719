#pragma once
// Transposed 2-d convolution (PyTorch's ConvTranspose2d): the adjoint of conv2d, used for
// learned up-sampling.
//
//   x [N, C_in, H, W]   w [C_in, C_out, R, S]   bias [C_out]
//   y [N, C_out, OH, OW], OH = (H - 1) stride - 2 padding + dilation (R - 1) + output_padding + 1
//
// Its forward pass is conv2d's backward-data pass with the same weight, and its backward-data
// pass is conv2d's forward pass, so it runs on every backend that provides Conv2d.
#include "gcl/backend/cpu/conv2d.hpp"
#include "gcl/ops/bias.hpp"
#include "gcl/ops/common.hpp"
#include "gcl/ops/conv2d.hpp"
#include "gcl/ops/window2d.hpp"

namespace gcl::ops {

namespace detail {
inline void check_conv_transpose2d_shapes(std::string_view op, const Shape& in, const Shape& w, const Shape& out,
                                          const ConvTranspose2dParams& p, std::string_view in_name,
                                          std::string_view out_name) {
    const Shape expected = conv_transpose2d_output_shape(op, in, w, p);
    if (!(out == expected))
        fail(op, out_name, " is ", out, " but ", in_name, " ", in, " and weight ", w, " give ", expected);
}
}  // namespace detail

// y = conv_transpose(x, w); y is overwritten.
template <class T, class Device>
void conv_transpose2d_forward(Input<T, Device> x, Input<T, Device> w, TensorView<T, Device> y,
                              const ConvTranspose2dParams& params = {}) {
    constexpr std::string_view op = "ops::conv_transpose2d_forward";
    detail::check_conv_transpose2d_shapes(op, x.shape(), w.shape(), y.shape(), params, "x", "y");
    detail::check_conv2d_views(op, x, w, y, "x", "w", "y");
    backend::Conv2d<Device>::backward_data(x, w, y, params.adjoint());
}

// y = conv_transpose(x, w) + bias (bias [C_out]).
template <class T, class Device>
void conv_transpose2d_forward(Input<T, Device> x, Input<T, Device> w, Input<T, Device> bias, TensorView<T, Device> y,
                              const ConvTranspose2dParams& params = {}) {
    detail::check_conv_transpose2d_shapes("ops::conv_transpose2d_forward", x.shape(), w.shape(), y.shape(), params,
                                          "x", "y");
    detail::check_bias("ops::conv_transpose2d_forward", bias, y, 1, "bias", "y");
    conv_transpose2d_forward(x, w, y, params);
    backend::Bias<Device>::add(bias, y, y.dim(0), y.dim(1), y.dim(2) * y.dim(3));
}

// dx = d(sum dy * y)/dx; dx is overwritten.
template <class T, class Device>
void conv_transpose2d_backward_data(Input<T, Device> dy, Input<T, Device> w, TensorView<T, Device> dx,
                                    const ConvTranspose2dParams& params = {}) {
    constexpr std::string_view op = "ops::conv_transpose2d_backward_data";
    detail::check_conv_transpose2d_shapes(op, dx.shape(), w.shape(), dy.shape(), params, "dx", "dy");
    detail::check_conv2d_views(op, dy, w, dx, "dy", "w", "dx");
    backend::Conv2d<Device>::forward(dy, w, dx, params.adjoint());
}

// dw = (or +=) d(sum dy * y)/dw, summed over the batch.
template <class T, class Device>
void conv_transpose2d_backward_weight(Input<T, Device> dy, Input<T, Device> x, TensorView<T, Device> dw,
                                      const ConvTranspose2dParams& params = {},
                                      WriteMode mode = WriteMode::overwrite) {
    constexpr std::string_view op = "ops::conv_transpose2d_backward_weight";
    detail::check_conv_transpose2d_shapes(op, x.shape(), dw.shape(), dy.shape(), params, "x", "dy");
    detail::check_conv2d_views(op, x, dy, dw, "x", "dy", "dw");
    backend::Conv2d<Device>::backward_weight(x, dy, dw, params.adjoint(), mode == WriteMode::accumulate);
}

// db = (or +=) the sum of dy [N, C_out, OH, OW] over N, OH and OW.
template <class T, class Device>
void conv_transpose2d_backward_bias(Input<T, Device> dy, TensorView<T, Device> db,
                                    WriteMode mode = WriteMode::overwrite) {
    check_rank("ops::conv_transpose2d_backward_bias", dy.shape(), 4, "dy");
    detail::bias_backward("ops::conv_transpose2d_backward_bias", dy, db, 1, mode);
}

}  // namespace gcl::ops
