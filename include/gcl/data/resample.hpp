#pragma once
// Geometric resampling of 2D images and label maps: an affine warp (bilinear for images,
// nearest neighbour for labels, so label values are never blended), resampling to another pixel
// spacing, and centred crop / pad to a size.
//
// Coordinates are (row, column) with pixel centres at integers. A warp maps every output pixel
// to the input position it reads from.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::data {

// in = m * out + t, with m row-major: in_row = m[0] * r + m[1] * c + t[0], in_col = m[2] * r + m[3] * c + t[1].
struct Warp2D {
    std::array<double, 4> m{1, 0, 0, 1};
    std::array<double, 2> t{0, 0};

    std::array<double, 2> operator()(double r, double c) const {
        return {m[0] * r + m[1] * c + t[0], m[2] * r + m[3] * c + t[1]};
    }
};

// Bilinear sample of a (H, W) image at (r, c). Positions within half a pixel of the border are
// clamped to it; anything farther out reads `fill`.
inline float sample_bilinear(const ConstView<float>& in, double r, double c, float fill) {
    const index_t h = in.shape()[0], w = in.shape()[1];
    if (!(r >= -0.5 && r <= static_cast<double>(h) - 0.5 && c >= -0.5 && c <= static_cast<double>(w) - 0.5)) return fill;
    r = std::clamp(r, 0.0, static_cast<double>(h - 1));
    c = std::clamp(c, 0.0, static_cast<double>(w - 1));
    const auto r0 = static_cast<index_t>(std::floor(r)), c0 = static_cast<index_t>(std::floor(c));
    const index_t r1 = std::min(r0 + 1, h - 1), c1 = std::min(c0 + 1, w - 1);
    const double fr = r - static_cast<double>(r0), fc = c - static_cast<double>(c0);
    const double top = (1 - fc) * in(r0, c0) + fc * in(r0, c1);
    const double bottom = (1 - fc) * in(r1, c0) + fc * in(r1, c1);
    return static_cast<float>((1 - fr) * top + fr * bottom);
}

// Nearest-neighbour sample of a (H, W) map at (r, c); `fill` outside.
template <class T>
T sample_nearest(const ConstView<T>& in, double r, double c, T fill) {
    const auto ri = static_cast<index_t>(std::floor(r + 0.5)), ci = static_cast<index_t>(std::floor(c + 0.5));
    if (ri < 0 || ri >= in.shape()[0] || ci < 0 || ci >= in.shape()[1]) return fill;
    return in(ri, ci);
}

inline void check_2d(std::string_view op, const Shape& s, const char* what) {
    check(s.rank() == 2, op, what, " must be 2D (H, W), got shape ", s);
}

// out(r, c) = in(warp(r, c)), bilinear.
inline void warp_image(ConstView<float> in, TensorView<float> out, const Warp2D& warp, float fill = 0.0f) {
    check_2d("warp_image", in.shape(), "input");
    check_2d("warp_image", out.shape(), "output");
    check(in.numel() > 0, "warp_image", "empty input of shape ", in.shape());
    const index_t h = out.shape()[0], w = out.shape()[1];
    for (index_t r = 0; r < h; ++r)
        for (index_t c = 0; c < w; ++c) {
            const auto p = warp(static_cast<double>(r), static_cast<double>(c));
            out(r, c) = sample_bilinear(in, p[0], p[1], fill);
        }
}

// out(r, c) = in(warp(r, c)), nearest neighbour (for label maps).
template <class T>
void warp_label(ConstView<T> in, TensorView<T> out, const Warp2D& warp, T fill = T(0)) {
    check_2d("warp_label", in.shape(), "input");
    check_2d("warp_label", out.shape(), "output");
    check(in.numel() > 0, "warp_label", "empty input of shape ", in.shape());
    const index_t h = out.shape()[0], w = out.shape()[1];
    for (index_t r = 0; r < h; ++r)
        for (index_t c = 0; c < w; ++c) {
            const auto p = warp(static_cast<double>(r), static_cast<double>(c));
            out(r, c) = sample_nearest<T>(in, p[0], p[1], fill);
        }
}

// The size an extent of n pixels at spacing `from` has at spacing `to`.
inline index_t resampled_extent(index_t n, double from, double to) {
    check(from > 0 && to > 0 && std::isfinite(from) && std::isfinite(to), "resample", "spacings must be positive, got ",
          from, " and ", to);
    return std::max<index_t>(1, static_cast<index_t>(std::lround(static_cast<double>(n) * from / to)));
}

// The warp from a grid at spacing `to` to one at spacing `from` ((row, column) spacings), with
// both grids covering the same field of view (pixel-area convention: edges, not centres, align).
inline Warp2D spacing_warp(std::array<double, 2> from, std::array<double, 2> to, std::array<index_t, 2> in_size,
                           std::array<index_t, 2> out_size) {
    Warp2D w;
    for (int d = 0; d < 2; ++d) {
        // Keep the field-of-view centres aligned even when rounding changed the extent.
        const double scale = to[static_cast<std::size_t>(d)] / from[static_cast<std::size_t>(d)];
        const double in_centre = 0.5 * static_cast<double>(in_size[static_cast<std::size_t>(d)] - 1);
        const double out_centre = 0.5 * static_cast<double>(out_size[static_cast<std::size_t>(d)] - 1);
        w.m[static_cast<std::size_t>(3 * d)] = scale;
        w.t[static_cast<std::size_t>(d)] = in_centre - scale * out_centre;
    }
    w.m[1] = w.m[2] = 0;
    return w;
}

// Resamples an image from spacing `from` to spacing `to` (millimetres per pixel, (row, column)).
inline Tensor<float> resample_image(ConstView<float> in, std::array<double, 2> from, std::array<double, 2> to) {
    check_2d("resample_image", in.shape(), "input");
    const std::array<index_t, 2> in_size{in.dim(0), in.dim(1)};
    const std::array<index_t, 2> out_size{resampled_extent(in.dim(0), from[0], to[0]),
                                          resampled_extent(in.dim(1), from[1], to[1])};
    Tensor<float> out(Shape{out_size[0], out_size[1]});
    warp_image(in, out.view(), spacing_warp(from, to, in_size, out_size));
    return out;
}

// Resamples a label map (nearest neighbour) from spacing `from` to spacing `to`.
template <class T>
Tensor<T> resample_label(ConstView<T> in, std::array<double, 2> from, std::array<double, 2> to) {
    check_2d("resample_label", in.shape(), "input");
    const std::array<index_t, 2> in_size{in.dim(0), in.dim(1)};
    const std::array<index_t, 2> out_size{resampled_extent(in.dim(0), from[0], to[0]),
                                          resampled_extent(in.dim(1), from[1], to[1])};
    Tensor<T> out(Shape{out_size[0], out_size[1]});
    warp_label<T>(in, out.view(), spacing_warp(from, to, in_size, out_size));
    return out;
}

// Centred crop and / or pad of a (H, W) map to (height, width); padding reads `fill`.
template <class T>
Tensor<T> crop_or_pad(ConstView<T> in, index_t height, index_t width, T fill = T(0)) {
    check_2d("crop_or_pad", in.shape(), "input");
    check(height > 0 && width > 0, "crop_or_pad", "target size must be positive, got ", height, " x ", width);
    Tensor<T> out(Shape{height, width}, fill);
    const index_t in_h = in.shape()[0], in_w = in.shape()[1];
    // Offset of the output window inside the input (negative: padding before the input).
    const index_t dr = (in_h - height) / 2, dc = (in_w - width) / 2;
    for (index_t r = 0; r < height; ++r) {
        const index_t ir = r + dr;
        if (ir < 0 || ir >= in_h) continue;
        for (index_t c = 0; c < width; ++c) {
            const index_t ic = c + dc;
            if (ic >= 0 && ic < in_w) out(r, c) = in(ir, ic);
        }
    }
    return out;
}

}  // namespace gcl::data
