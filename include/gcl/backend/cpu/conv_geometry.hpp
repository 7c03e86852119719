#pragma once
// The geometry of one 2-d convolution on the CPU, shared by the im2col path (conv2d.hpp) and the
// oneDNN path (onednn_conv2d.hpp).
#include <array>

#include "gcl/core/shape.hpp"
#include "gcl/core/window2d.hpp"

namespace gcl::backend::cpu_detail {

struct ConvGeometry {
    index_t batch, channels, height, width;  // input
    index_t filters, kernel_h, kernel_w;     // weight [filters, channels, kernel_h, kernel_w]
    index_t out_h, out_w;                    // output
    index_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;

    index_t col_rows() const { return channels * kernel_h * kernel_w; }
    index_t col_cols() const { return out_h * out_w; }
    index_t input_size() const { return channels * height * width; }
    index_t output_size() const { return filters * out_h * out_w; }
    // The padding after the last row / column that gives exactly out_h x out_w (oneDNN asks
    // for it; negative where the output drops trailing input rows).
    index_t pad_bottom() const { return (out_h - 1) * stride_h + (kernel_h - 1) * dilation_h + 1 - height - pad_h; }
    index_t pad_right() const { return (out_w - 1) * stride_w + (kernel_w - 1) * dilation_w + 1 - width - pad_w; }
    std::array<index_t, 15> key() const {
        return {batch, channels, height,   width,    filters, kernel_h,   kernel_w,  out_h,
                out_w, stride_h, stride_w, pad_h,    pad_w,   dilation_h, dilation_w};
    }
    // col_n is the input image itself.
    bool pointwise() const {
        return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0 &&
               out_h == height && out_w == width;
    }
};

inline ConvGeometry conv_geometry(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p) {
    return ConvGeometry{x[0],        x[1],        x[2],       x[3],       w[0],       w[2],
                        w[3],        y[2],        y[3],       p.stride[0], p.stride[1], p.padding[0],
                        p.padding[1], p.dilation[0], p.dilation[1]};
}

}  // namespace gcl::backend::cpu_detail
