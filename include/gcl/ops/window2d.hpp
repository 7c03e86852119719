#pragma once
// Sliding 2-d windows: the checks of the window parameters (core/window2d.hpp) and the output
// shapes they give. Every impossible combination throws gcl::Error naming the op, the shapes and
// the parameters.
#include <algorithm>
#include <string>
#include <string_view>

#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/window2d.hpp"

namespace gcl::ops {

// The window parameter types are gcl's (core/window2d.hpp); ops' functions take them, and the ops
// API spells them ops::Conv2dParams, ops::Pool2dParams, ... beside the ops that use them.
using gcl::Conv2dParams;
using gcl::ConvTranspose2dParams;
using gcl::Extent2;
using gcl::Pool2dParams;

namespace detail {

// "3x3": how messages print a pair of extents.
inline std::string str(const Extent2& e) { return std::to_string(e[0]) + "x" + std::to_string(e[1]); }

inline void check_conv_params(std::string_view op, const Extent2& stride, const Extent2& padding,
                              const Extent2& dilation) {
    for (int i = 0; i < 2; ++i) {
        if (stride[i] < 1) fail(op, "stride must be positive, got ", str(stride));
        if (padding[i] < 0) fail(op, "padding must not be negative, got ", str(padding));
        if (dilation[i] < 1) fail(op, "dilation must be positive, got ", str(dilation));
    }
}

// Output extent of a convolution along one dimension; -1 when the dilated kernel does not fit.
inline index_t conv_extent(index_t in, index_t kernel, index_t stride, index_t padding, index_t dilation) {
    const index_t span = dilation * (kernel - 1) + 1;
    if (in + 2 * padding < span) return -1;
    return (in + 2 * padding - span) / stride + 1;
}

inline Shape conv2d_output_shape(std::string_view op, const Shape& x, const Shape& w, const Conv2dParams& p) {
    if (x.rank() != 4) fail(op, "input must have shape [N, C, H, W], got ", x, " (weight ", w, ")");
    if (w.rank() != 4) fail(op, "weight must have shape [K, C, R, S], got ", w, " (input ", x, ")");
    if (x[1] != w[1])
        fail(op, "input ", x, " has ", x[1], " channels but weight ", w, " expects ", w[1]);
    if (w[2] < 1 || w[3] < 1) fail(op, "weight ", w, " has an empty kernel");
    check_conv_params(op, p.stride, p.padding, p.dilation);
    const index_t oh = conv_extent(x[2], w[2], p.stride[0], p.padding[0], p.dilation[0]);
    const index_t ow = conv_extent(x[3], w[3], p.stride[1], p.padding[1], p.dilation[1]);
    if (oh < 1 || ow < 1)
        fail(op, "input ", x, " with padding ", str(p.padding), " is smaller than the kernel of weight ", w,
             " dilated by ", str(p.dilation));
    return Shape{x[0], w[0], oh, ow};
}

inline Shape conv_transpose2d_output_shape(std::string_view op, const Shape& x, const Shape& w,
                                           const ConvTranspose2dParams& p) {
    if (x.rank() != 4) fail(op, "input must have shape [N, C_in, H, W], got ", x, " (weight ", w, ")");
    if (w.rank() != 4) fail(op, "weight must have shape [C_in, C_out, R, S], got ", w, " (input ", x, ")");
    if (x[1] != w[0])
        fail(op, "input ", x, " has ", x[1], " channels but weight ", w, " expects ", w[0]);
    if (w[2] < 1 || w[3] < 1) fail(op, "weight ", w, " has an empty kernel");
    check_conv_params(op, p.stride, p.padding, p.dilation);
    index_t out[2];
    for (int i = 0; i < 2; ++i) {
        if (p.output_padding[i] < 0 || p.output_padding[i] >= std::max(p.stride[i], p.dilation[i]))
            fail(op, "output padding ", str(p.output_padding), " must be non-negative and smaller than the stride ",
                 str(p.stride), " or the dilation ", str(p.dilation));
        out[i] = (x[2 + i] - 1) * p.stride[i] - 2 * p.padding[i] + p.dilation[i] * (w[2 + i] - 1) +
                 p.output_padding[i] + 1;
    }
    if (x[2] < 1 || x[3] < 1 || out[0] < 1 || out[1] < 1)
        fail(op, "input ", x, " with weight ", w, ", stride ", str(p.stride), ", padding ", str(p.padding),
             " and output padding ", str(p.output_padding), " gives an empty output ", out[0], "x", out[1]);
    return Shape{x[0], w[1], out[0], out[1]};
}

inline Shape max_pool2d_output_shape(std::string_view op, const Shape& x, const Pool2dParams& p) {
    if (x.rank() != 4) fail(op, "input must have shape [N, C, H, W], got ", x);
    for (int i = 0; i < 2; ++i) {
        if (p.kernel[i] < 1) fail(op, "kernel must be positive, got ", str(p.kernel));
        if (p.stride[i] < 1) fail(op, "stride must be positive, got ", str(p.stride));
        if (p.padding[i] < 0 || 2 * p.padding[i] > p.kernel[i])
            fail(op, "padding ", str(p.padding), " must be between 0 and half the kernel ", str(p.kernel));
    }
    const index_t oh = conv_extent(x[2], p.kernel[0], p.stride[0], p.padding[0], 1);
    const index_t ow = conv_extent(x[3], p.kernel[1], p.stride[1], p.padding[1], 1);
    if (oh < 1 || ow < 1)
        fail(op, "input ", x, " with padding ", str(p.padding), " is smaller than the pooling window ", str(p.kernel));
    return Shape{x[0], x[1], oh, ow};
}

}  // namespace detail

// [N, K, OH, OW] for input x [N, C, H, W] and weight w [K, C, R, S].
inline Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& params = {}) {
    return detail::conv2d_output_shape("ops::conv2d_output_shape", x, w, params);
}

// [N, C_out, OH, OW] for input x [N, C_in, H, W] and weight w [C_in, C_out, R, S] (PyTorch's
// ConvTranspose2d layout), OH = (H - 1) stride - 2 padding + dilation (R - 1) + output_padding + 1.
inline Shape conv_transpose2d_output_shape(const Shape& x, const Shape& w, const ConvTranspose2dParams& params = {}) {
    return detail::conv_transpose2d_output_shape("ops::conv_transpose2d_output_shape", x, w, params);
}

// [N, C, OH, OW] for input x [N, C, H, W].
inline Shape max_pool2d_output_shape(const Shape& x, const Pool2dParams& params = {}) {
    return detail::max_pool2d_output_shape("ops::max_pool2d_output_shape", x, params);
}

}  // namespace gcl::ops
