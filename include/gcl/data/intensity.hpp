#pragma once
// Intensity normalisation of an image or a whole volume. MRI intensities have no absolute scale
// (they depend on the scanner, the coil and the gain), so every volume is mapped to a common
// range before training: by default its 1st and 99th percentiles go to 0 and 1.
#include <algorithm>
#include <cmath>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::data {

enum class Normalization {
    none,
    min_max,     // [min, max] -> [0, 1]
    percentile,  // [p_low, p_high] percentiles -> [0, 1], values outside are kept (not clipped)
    z_score,     // zero mean, unit standard deviation
};

struct NormalizeOptions {
    Normalization method = Normalization::percentile;
    double low_percentile = 1.0;
    double high_percentile = 99.0;
};

// The q-th percentile (0..100) of values, by linear interpolation between order statistics.
inline double percentile(std::vector<float> values, double q) {
    check(!values.empty(), "percentile", "no values");
    check(q >= 0.0 && q <= 100.0, "percentile", "q must be in [0, 100], got ", q);
    const double rank = q / 100.0 * static_cast<double>(values.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(rank));
    const std::size_t hi = std::min(lo + 1, values.size() - 1);
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(lo), values.end());
    const double a = values[lo];
    if (hi == lo) return a;
    const double b = *std::min_element(values.begin() + static_cast<std::ptrdiff_t>(lo) + 1, values.end());
    return a + (rank - static_cast<double>(lo)) * (b - a);
}

// Normalises a contiguous host view in place. A constant image becomes all zeros.
inline void normalize(TensorView<float, cpu> x, const NormalizeOptions& o = {}) {
    constexpr const char* op = "normalize";
    check(x.is_contiguous(), op, "view of shape ", x.shape(), " must be contiguous");
    if (o.method == Normalization::none || x.numel() == 0) return;
    float* p = x.data();
    const index_t n = x.numel();
    for (index_t i = 0; i < n; ++i)
        check(std::isfinite(p[i]), op, "non-finite value ", p[i], " at element ", i, " of shape ", x.shape());
    double lo = 0.0, scale = 1.0;
    if (o.method == Normalization::min_max) {
        const auto [mn, mx] = std::minmax_element(p, p + n);
        lo = *mn;
        scale = *mx - *mn;
    } else if (o.method == Normalization::percentile) {
        check(o.low_percentile >= 0 && o.low_percentile < o.high_percentile && o.high_percentile <= 100, op,
              "percentiles must satisfy 0 <= low < high <= 100, got ", o.low_percentile, " and ", o.high_percentile);
        const std::vector<float> values(p, p + n);
        lo = percentile(values, o.low_percentile);
        scale = percentile(values, o.high_percentile) - lo;
    } else {
        double mean = 0.0;
        for (index_t i = 0; i < n; ++i) mean += p[i];
        mean /= static_cast<double>(n);
        double var = 0.0;
        for (index_t i = 0; i < n; ++i) var += (p[i] - mean) * (p[i] - mean);
        lo = mean;
        scale = std::sqrt(var / static_cast<double>(n));
    }
    const double inv = scale > 0 ? 1.0 / scale : 0.0;
    for (index_t i = 0; i < n; ++i) p[i] = static_cast<float>((p[i] - lo) * inv);
}

}  // namespace gcl::data
