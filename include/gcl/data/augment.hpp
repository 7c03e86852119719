#pragma once
// Seeded data augmentation for 2D slices: one geometric warp (random crop / pad, flips,
// rotation, scale) applied bilinearly to the image and by nearest neighbour to its label map,
// then intensity changes (gamma, contrast, Gaussian noise) to the image alone.
//
// Every random choice comes from the Rng passed in, in a fixed order, and the noise from
// counters reserved on it, so the same generator state always gives the same result.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "gcl/core/error.hpp"
#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/resample.hpp"

namespace gcl::data {

struct AugmentOptions {
    index_t height = 0, width = 0;   // output size; 0 keeps the input's
    double flip_horizontal = 0.5;    // probability of a left-right flip
    double flip_vertical = 0.0;      // probability of an up-down flip
    double max_rotation = 15.0;      // degrees; the angle is uniform in [-max, max]
    double min_scale = 0.9, max_scale = 1.1;  // zoom factor, log-uniform
    double max_shift = 0.0;          // extra translation, as a fraction of the output size
    double gamma_probability = 0.5;
    double min_gamma = 0.7, max_gamma = 1.5;  // log-uniform
    double contrast_probability = 0.5;
    double min_contrast = 0.75, max_contrast = 1.25;
    double noise_probability = 0.5;
    double max_noise = 0.05;         // noise sigma is uniform in [0, max_noise]
    float fill = 0.0f;               // image value outside the input (labels: background)
};

// The geometric part of one augmentation, as drawn.
struct AugmentDraw {
    bool flip_h = false, flip_v = false;
    double angle = 0;   // radians
    double scale = 1;
    double offset_r = 0, offset_c = 0;  // top-left of the output window in input pixels
    bool gamma = false, contrast = false, noise = false;
    double gamma_value = 1, contrast_value = 1, noise_sigma = 0;
};

namespace detail {

inline void check_augment_options(const AugmentOptions& o) {
    constexpr const char* op = "augment";
    check(o.height >= 0 && o.width >= 0, op, "output size must not be negative, got ", o.height, " x ", o.width);
    for (double p : {o.flip_horizontal, o.flip_vertical, o.gamma_probability, o.contrast_probability, o.noise_probability})
        check(p >= 0 && p <= 1, op, "probabilities must be in [0, 1], got ", p);
    check(o.max_rotation >= 0 && o.max_rotation <= 180, op, "max_rotation must be in [0, 180] degrees, got ", o.max_rotation);
    check(o.min_scale > 0 && o.min_scale <= o.max_scale, op, "scale range [", o.min_scale, ", ", o.max_scale, "] is invalid");
    check(o.min_gamma > 0 && o.min_gamma <= o.max_gamma, op, "gamma range [", o.min_gamma, ", ", o.max_gamma, "] is invalid");
    check(o.min_contrast >= 0 && o.min_contrast <= o.max_contrast, op, "contrast range [", o.min_contrast, ", ",
          o.max_contrast, "] is invalid");
    check(o.max_noise >= 0 && o.max_shift >= 0, op, "max_noise and max_shift must not be negative");
}

inline double log_uniform(Rng& rng, double lo, double hi) {
    return lo == hi ? lo : std::exp(rng.uniform(std::log(lo), std::log(hi)));
}

}  // namespace detail

// Draws one augmentation for an input of in_h x in_w and an output of out_h x out_w. Always
// takes the same number of draws from rng, whatever the options.
inline AugmentDraw draw_augment(const AugmentOptions& o, index_t in_h, index_t in_w, index_t out_h, index_t out_w, Rng& rng) {
    detail::check_augment_options(o);
    AugmentDraw d;
    d.flip_h = rng.bernoulli(o.flip_horizontal);
    d.flip_v = rng.bernoulli(o.flip_vertical);
    d.angle = rng.uniform(-o.max_rotation, o.max_rotation) * std::numbers::pi / 180.0;
    d.scale = detail::log_uniform(rng, o.min_scale, o.max_scale);
    // Random crop (input larger) or random placement inside padding (input smaller).
    const auto window = [&](index_t in, index_t out) {
        const double lo = std::min<double>(0, static_cast<double>(in - out)), hi = std::max<double>(0, static_cast<double>(in - out));
        return std::floor(rng.uniform(lo, hi + 1.0));  // integer offsets, both ends included
    };
    d.offset_r = std::min<double>(window(in_h, out_h), std::max<index_t>(0, in_h - out_h));
    d.offset_c = std::min<double>(window(in_w, out_w), std::max<index_t>(0, in_w - out_w));
    d.offset_r += rng.uniform(-o.max_shift, o.max_shift) * static_cast<double>(out_h);
    d.offset_c += rng.uniform(-o.max_shift, o.max_shift) * static_cast<double>(out_w);
    d.gamma = rng.bernoulli(o.gamma_probability);
    d.gamma_value = detail::log_uniform(rng, o.min_gamma, o.max_gamma);
    d.contrast = rng.bernoulli(o.contrast_probability);
    d.contrast_value = rng.uniform(o.min_contrast, o.max_contrast);
    d.noise = rng.bernoulli(o.noise_probability);
    d.noise_sigma = rng.uniform(0.0, o.max_noise);
    return d;
}

// The warp from output pixels to input positions: about the output window's centre, flip,
// then rotate, then zoom by `scale` (scale > 1 enlarges the anatomy).
inline Warp2D augment_warp(const AugmentDraw& d, index_t out_h, index_t out_w) {
    const double fr = d.flip_v ? -1.0 : 1.0, fc = d.flip_h ? -1.0 : 1.0;
    const double c = std::cos(d.angle) / d.scale, s = std::sin(d.angle) / d.scale;
    Warp2D w;
    w.m = {c * fr, -s * fc, s * fr, c * fc};
    const double out_r = 0.5 * static_cast<double>(out_h - 1), out_c = 0.5 * static_cast<double>(out_w - 1);
    const double in_r = d.offset_r + out_r, in_c = d.offset_c + out_c;
    w.t = {in_r - (w.m[0] * out_r + w.m[1] * out_c), in_c - (w.m[2] * out_r + w.m[3] * out_c)};
    return w;
}

struct Augmented {
    Tensor<float> image;         // (H, W)
    Tensor<std::uint8_t> label;  // (H, W); rank 0 when no label map was given
};

// Applies a drawn augmentation. Noise uses counters reserved on rng.
inline Augmented apply_augment(const AugmentDraw& d, ConstView<float> image, ConstView<std::uint8_t> label,
                               index_t out_h, index_t out_w, float fill, Rng& rng) {
    const Warp2D warp = augment_warp(d, out_h, out_w);
    Augmented out;
    out.image = Tensor<float>(Shape{out_h, out_w});
    warp_image(image, out.image.view(), warp, fill);
    if (label.data() != nullptr) {
        check(label.shape() == image.shape(), "augment", "label shape ", label.shape(), " differs from image shape ",
              image.shape());
        out.label = Tensor<std::uint8_t>(Shape{out_h, out_w});
        warp_label<std::uint8_t>(label, out.label.view(), warp, 0);
    }
    float* p = out.image.data();
    const index_t n = out.image.numel();
    if (d.gamma && d.gamma_value != 1.0) {
        // Gamma on the image's own range, which it keeps.
        const auto [mn, mx] = std::minmax_element(p, p + n);
        const double lo = *mn, range = *mx - *mn;
        if (range > 0)
            for (index_t i = 0; i < n; ++i)
                p[i] = static_cast<float>(lo + range * std::pow((p[i] - lo) / range, d.gamma_value));
    }
    if (d.contrast) {
        double mean = 0;
        for (index_t i = 0; i < n; ++i) mean += p[i];
        mean /= static_cast<double>(n);
        for (index_t i = 0; i < n; ++i) p[i] = static_cast<float>(mean + (p[i] - mean) * d.contrast_value);
    }
    const std::uint64_t first = rng.reserve(static_cast<std::uint64_t>(n));
    if (d.noise && d.noise_sigma > 0)
        for (index_t i = 0; i < n; ++i)
            p[i] += normal_at<float>(rng.seed(), rng.stream(), first + static_cast<std::uint64_t>(i), 0.0f,
                                     static_cast<float>(d.noise_sigma));
    return out;
}

// One random augmentation of a (H, W) image and, when label is a non-null view, its label map.
inline Augmented augment(ConstView<float> image, ConstView<std::uint8_t> label, const AugmentOptions& options, Rng& rng) {
    check(image.rank() == 2 && image.numel() > 0, "augment", "image must be a non-empty (H, W), got shape ", image.shape());
    const index_t out_h = options.height > 0 ? options.height : image.dim(0);
    const index_t out_w = options.width > 0 ? options.width : image.dim(1);
    const AugmentDraw d = draw_augment(options, image.dim(0), image.dim(1), out_h, out_w, rng);
    return apply_augment(d, image, label, out_h, out_w, options.fill, rng);
}

}  // namespace gcl::data
