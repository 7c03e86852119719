#pragma once
// Pictures of the data for people: a slice in grey with its ground truth as a coloured overlay,
// and montages that tile many slices into one RGB image (write it with write_png).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/slice.hpp"

namespace gcl::data {

// Overlay colours per class: RV blue, myocardium green, LV red.
inline constexpr std::array<std::array<std::uint8_t, 3>, cls::count> class_colours{{
    {0, 0, 0},
    {40, 120, 255},
    {40, 220, 70},
    {255, 50, 50},
}};

struct OverlayOptions {
    float low = 0.0f, high = 1.0f;  // grey window: low -> black, high -> white
    double fill_alpha = 0.30;       // opacity of the class colour inside a region
    double edge_alpha = 0.95;       // opacity on the region's border pixels
};

// A (H, W, 3) RGB picture of a slice; with a label map (a non-null view), classes are tinted
// and outlined.
inline Tensor<std::uint8_t> overlay(ConstView<float> image, ConstView<std::uint8_t> label, const OverlayOptions& o = {}) {
    check(image.rank() == 2, "overlay", "image must be (H, W), got ", image.shape());
    const bool labelled = label.data() != nullptr;
    check(!labelled || label.shape() == image.shape(), "overlay", "label shape ", label.shape(),
          " differs from image shape ", image.shape());
    check(o.high > o.low, "overlay", "grey window [", o.low, ", ", o.high, "] is empty");
    const index_t h = image.dim(0), w = image.dim(1);
    Tensor<std::uint8_t> rgb(Shape{h, w, 3});
    for (index_t r = 0; r < h; ++r)
        for (index_t c = 0; c < w; ++c) {
            const double g = std::clamp((image(r, c) - o.low) / (o.high - o.low), 0.0f, 1.0f) * 255.0;
            std::array<double, 3> px{g, g, g};
            if (labelled) {
                const std::uint8_t k = label(r, c);
                check(k < cls::count, "overlay", "label value ", int(k), " at (", r, ", ", c, ") is not a class");
                if (k != cls::background) {
                    bool edge = false;
                    for (auto [dr, dc] : {std::pair<int, int>{-1, 0}, {1, 0}, {0, -1}, {0, 1}}) {
                        const index_t rr = r + dr, cc = c + dc;
                        if (rr >= 0 && rr < h && cc >= 0 && cc < w && label(rr, cc) != k) edge = true;
                    }
                    const double a = edge ? o.edge_alpha : o.fill_alpha;
                    for (int ch = 0; ch < 3; ++ch)
                        px[static_cast<std::size_t>(ch)] =
                            (1 - a) * px[static_cast<std::size_t>(ch)] + a * class_colours[k][static_cast<std::size_t>(ch)];
                }
            }
            for (int ch = 0; ch < 3; ++ch) rgb(r, c, ch) = static_cast<std::uint8_t>(std::lround(px[static_cast<std::size_t>(ch)]));
        }
    return rgb;
}

// Tiles (H, W, 3) pictures of equal size into rows of `columns`, separated by `gap` black pixels.
inline Tensor<std::uint8_t> montage(const std::vector<Tensor<std::uint8_t>>& tiles, index_t columns, index_t gap = 2) {
    check(!tiles.empty(), "montage", "no tiles");
    check(columns >= 1 && gap >= 0, "montage", "columns must be positive and gap non-negative, got ", columns, " and ", gap);
    const Shape& s = tiles.front().shape();
    check(s.rank() == 3 && s[2] == 3, "montage", "tiles must be (H, W, 3), got ", s);
    for (const auto& t : tiles) check(t.shape() == s, "montage", "tile shape ", t.shape(), " differs from ", s);
    const auto n = static_cast<index_t>(tiles.size());
    const index_t cols = std::min(columns, n), rows = (n + columns - 1) / columns;
    const index_t th = s[0], tw = s[1];
    Tensor<std::uint8_t> out(Shape{rows * th + (rows - 1) * gap, cols * tw + (cols - 1) * gap, 3});
    for (index_t i = 0; i < n; ++i) {
        const index_t r0 = (i / columns) * (th + gap), c0 = (i % columns) * (tw + gap);
        const auto& t = tiles[static_cast<std::size_t>(i)];
        for (index_t r = 0; r < th; ++r)
            for (index_t c = 0; c < tw; ++c)
                for (index_t ch = 0; ch < 3; ++ch) out(r0 + r, c0 + c, ch) = t(r, c, ch);
    }
    return out;
}

}  // namespace gcl::data
