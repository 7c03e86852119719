#pragma once
// Label maps drawn over their images, for looking at predictions: the image in grey (its own
// minimum black, maximum white), each foreground class tinted in its fixed colour
// (data::class_colours: RV blue, myocardium green, LV red) and outlined, and a prediction shown
// beside its ground truth.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/montage.hpp"
#include "gcl/data/png.hpp"

namespace gcl::report {

// image (H, W) any range (min-max scaled to grey), labels (H, W) class map; class c > 0 blended
// in a fixed colour with opacity alpha, and its border pixels with at least 0.9 so that a
// region's outline stays visible at any alpha. (H, W, 3) RGB.
inline Tensor<std::uint8_t> overlay_labels(ConstView<float> image, ConstView<std::uint8_t> labels, double alpha = 0.45) {
    constexpr const char* op = "report::overlay_labels";
    check(image.rank() == 2 && image.numel() > 0, op, "image must be a non-empty (H, W) slice, got ", image.shape());
    check(labels.shape() == image.shape(), op, "labels of shape ", labels.shape(), " do not match the image's ",
          image.shape());
    check(alpha >= 0 && alpha <= 1, op, "alpha ", alpha, " is outside [0, 1]");
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (index_t r = 0; r < image.dim(0); ++r)
        for (index_t c = 0; c < image.dim(1); ++c) {
            const float v = image(r, c);
            check(std::isfinite(v), op, "image value ", v, " at (", r, ", ", c, ") is not finite");
            lo = std::min(lo, v), hi = std::max(hi, v);
        }
    data::OverlayOptions options;
    options.low = lo;
    options.high = hi > lo ? hi : lo + 1.0f;  // a constant image draws black
    options.fill_alpha = alpha;
    options.edge_alpha = std::max(alpha, 0.9);
    return data::overlay(image, labels, options);
}

// The image twice, side by side: with the prediction (left) and with the ground truth (right).
inline Tensor<std::uint8_t> overlay_comparison(ConstView<float> image, ConstView<std::uint8_t> prediction,
                                               ConstView<std::uint8_t> truth, double alpha = 0.45) {
    std::vector<Tensor<std::uint8_t>> tiles;
    tiles.push_back(overlay_labels(image, prediction, alpha));
    tiles.push_back(overlay_labels(image, truth, alpha));
    return data::montage(tiles, 2, 4);
}

inline void write_overlay_png(const std::filesystem::path& png, ConstView<float> image, ConstView<std::uint8_t> labels,
                              double alpha = 0.45) {
    data::write_png(png, overlay_labels(image, labels, alpha).cview());
}

}  // namespace gcl::report
