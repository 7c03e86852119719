#pragma once
// Surface distances between two binary masks (2D or 3D, anisotropic spacing): the Hausdorff
// distance, its 95th percentile (HD95) and the average symmetric surface distance (ASSD).
//
// A surface voxel is a mask voxel with a face neighbour outside the mask or outside the image
// (MedPy's and MONAI's edges with connectivity 1); distances run from each surface voxel of one
// mask to the nearest surface voxel of the other, in physical units (spacing), from an exact
// Euclidean distance transform (Felzenszwalb & Huttenlocher 2012), linear in the voxels.
//
// The libraries aggregate these distances differently, so each definition is offered by name:
//   Hd95Definition::medpy   95th percentile of both directions' distances pooled (medpy hd95)
//   Hd95Definition::monai   larger of the two directed 95th percentiles (MONAI
//                           compute_hausdorff_distance(percentile=95))
//   AssdDefinition::pooled  mean of both directions' distances pooled (MedPy 0.5 assd, MONAI
//                           compute_average_surface_distance(symmetric=True))
//   AssdDefinition::mean_of_directed  mean of the two directed means (MedPy 0.4 assd)
// Percentiles interpolate linearly (NumPy's default), as both libraries do.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::metrics {

namespace detail {

// One pass of the squared distance transform along a line of n samples spaced `spacing` apart:
// out[p] = min_q ((p - q) spacing)^2 + f[q]. Infinite f marks "no source here".
inline void squared_edt_1d(const double* f, double* out, index_t n, double spacing, std::vector<index_t>& v,
                           std::vector<double>& z) {
    v.resize(static_cast<std::size_t>(n));
    z.resize(static_cast<std::size_t>(n) + 1);
    const double inf = std::numeric_limits<double>::infinity();
    index_t k = -1;  // index of the rightmost parabola in the lower envelope
    for (index_t q = 0; q < n; ++q) {
        if (f[q] == inf) continue;
        const double xq = static_cast<double>(q) * spacing;
        for (;;) {
            if (k < 0) {
                k = 0;
                v[0] = q;
                z[0] = -inf;
                z[1] = inf;
                break;
            }
            const double xv = static_cast<double>(v[k]) * spacing;
            const double s = ((f[q] + xq * xq) - (f[v[k]] + xv * xv)) / (2.0 * (xq - xv));
            if (s <= z[k]) {
                --k;
                continue;
            }
            ++k;
            v[k] = q;
            z[k] = s;
            z[k + 1] = inf;
            break;
        }
    }
    if (k < 0) {
        for (index_t p = 0; p < n; ++p) out[p] = inf;
        return;
    }
    index_t j = 0;
    for (index_t p = 0; p < n; ++p) {
        const double xp = static_cast<double>(p) * spacing;
        while (z[j + 1] < xp) ++j;
        const double d = xp - static_cast<double>(v[j]) * spacing;
        out[p] = d * d + f[v[j]];
    }
}

inline std::array<index_t, 3> as_3d(const Shape& s) {
    if (s.rank() == 2) return {1, s[0], s[1]};
    return {s[0], s[1], s[2]};
}

}  // namespace detail

// Euclidean distance from every voxel to the nearest nonzero voxel of `sources` (rank 2 or 3),
// with `spacing` per dimension; infinity everywhere when there is no source.
template <class M>
Tensor<double> distance_transform(ConstView<M> sources, const std::vector<double>& spacing) {
    const Shape& s = sources.shape();
    check(s.rank() == 2 || s.rank() == 3, "distance_transform", "needs a 2D or 3D mask, got shape ", s);
    check(static_cast<int>(spacing.size()) == s.rank(), "distance_transform", "needs ", s.rank(),
          " spacings for shape ", s, ", got ", spacing.size());
    for (double sp : spacing)
        check(std::isfinite(sp) && sp > 0, "distance_transform", "spacing must be positive and finite, got ", sp);
    check(sources.is_contiguous(), "distance_transform", "the mask must be contiguous");

    const auto [D, H, W] = detail::as_3d(s);
    const std::array<double, 3> sp = s.rank() == 2 ? std::array<double, 3>{1.0, spacing[0], spacing[1]}
                                                   : std::array<double, 3>{spacing[0], spacing[1], spacing[2]};
    Tensor<double> dist(s);
    double* d = dist.data();
    const double inf = std::numeric_limits<double>::infinity();
    for (index_t i = 0; i < s.numel(); ++i) d[i] = sources.data()[i] != M(0) ? 0.0 : inf;

    // Separable: transform along W, then H, then D, each line independently.
    const std::array<index_t, 3> extent{D, H, W};
    const std::array<index_t, 3> stride{H * W, W, 1};
    for (int axis = 2; axis >= 0; --axis) {
        const index_t n = extent[axis];
        if (n <= 1 && axis == 0) continue;
        const index_t lines = s.numel() / n;
#pragma omp parallel
        {
            std::vector<double> in(static_cast<std::size_t>(n)), out(static_cast<std::size_t>(n));
            std::vector<index_t> v;
            std::vector<double> z;
#pragma omp for schedule(static)
            for (index_t line = 0; line < lines; ++line) {
                // The line's first voxel: decompose `line` over the two other axes.
                index_t base = 0, rest = line;
                for (int a = 2; a >= 0; --a) {
                    if (a == axis) continue;
                    base += (rest % extent[a]) * stride[a];
                    rest /= extent[a];
                }
                for (index_t p = 0; p < n; ++p) in[p] = d[base + p * stride[axis]];
                detail::squared_edt_1d(in.data(), out.data(), n, sp[axis], v, z);
                for (index_t p = 0; p < n; ++p) d[base + p * stride[axis]] = out[p];
            }
        }
    }
    for (index_t i = 0; i < s.numel(); ++i) d[i] = std::sqrt(d[i]);
    return dist;
}

// The surface of a binary mask: mask voxels with a face neighbour outside the mask or the image.
template <class M>
Tensor<std::uint8_t> mask_surface(ConstView<M> mask) {
    const Shape& s = mask.shape();
    check(s.rank() == 2 || s.rank() == 3, "mask_surface", "needs a 2D or 3D mask, got shape ", s);
    check(mask.is_contiguous(), "mask_surface", "the mask must be contiguous");
    // Named copies, not a structured binding: the lambda below captures them (clang < 16 cannot
    // capture a binding).
    const std::array<index_t, 3> dims = detail::as_3d(s);
    const index_t D = dims[0], H = dims[1], W = dims[2];
    const bool three_d = s.rank() == 3;
    Tensor<std::uint8_t> surface(s);
    const M* m = mask.data();
    auto in = [&](index_t z, index_t y, index_t x) {
        return z >= 0 && z < D && y >= 0 && y < H && x >= 0 && x < W && m[(z * H + y) * W + x] != M(0);
    };
    for (index_t z = 0; z < D; ++z)
        for (index_t y = 0; y < H; ++y)
            for (index_t x = 0; x < W; ++x) {
                if (!in(z, y, x)) continue;
                bool edge = !in(z, y - 1, x) || !in(z, y + 1, x) || !in(z, y, x - 1) || !in(z, y, x + 1);
                if (three_d) edge = edge || !in(z - 1, y, x) || !in(z + 1, y, x);
                surface.data()[(z * H + y) * W + x] = edge ? 1 : 0;
            }
    return surface;
}

enum class Hd95Definition { medpy, monai };
enum class AssdDefinition { pooled, mean_of_directed };

inline std::string_view name(Hd95Definition d) { return d == Hd95Definition::medpy ? "medpy" : "monai"; }
inline std::string_view name(AssdDefinition d) { return d == AssdDefinition::pooled ? "pooled" : "mean_of_directed"; }

inline std::string_view describe(Hd95Definition d) {
    return d == Hd95Definition::medpy ? "95th percentile of both directions' surface distances pooled (MedPy)"
                                      : "larger of the two directed 95th percentiles (MONAI)";
}
inline std::string_view describe(AssdDefinition d) {
    return d == AssdDefinition::pooled ? "mean of both directions' surface distances pooled (MedPy 0.5, MONAI)"
                                       : "mean of the two directed mean distances (MedPy 0.4)";
}

struct SurfaceDistance {
    double hausdorff = 0;              // largest distance, either direction
    double hd95_medpy = 0;             // 95th percentile of both directions pooled
    double hd95_monai = 0;             // max of the directed 95th percentiles
    double assd_pooled = 0;            // mean of both directions pooled
    double assd_mean_of_directed = 0;  // mean of the two directed means

    double hd95(Hd95Definition d = Hd95Definition::medpy) const {
        return d == Hd95Definition::medpy ? hd95_medpy : hd95_monai;
    }
    double assd(AssdDefinition d = AssdDefinition::pooled) const {
        return d == AssdDefinition::pooled ? assd_pooled : assd_mean_of_directed;
    }
};

// Linear-interpolation percentile (NumPy's default) of unsorted values, q in [0, 100].
inline double percentile(std::vector<double> values, double q) {
    check(!values.empty(), "percentile", "no values");
    check(q >= 0 && q <= 100, "percentile", "q must be in [0, 100], got ", q);
    std::sort(values.begin(), values.end());
    const double pos = q / 100.0 * static_cast<double>(values.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

// Surface distances between the voxels equal to `label` in two label maps (or two binary masks
// with label 1). Empty when either holds no such voxel: the distance is then undefined.
template <class L>
std::optional<SurfaceDistance> surface_distance(ConstView<L> prediction, ConstView<L> target, L label,
                                                const std::vector<double>& spacing) {
    check_same_shape("surface_distance", prediction.shape(), target.shape(), "prediction", "target");
    Tensor<std::uint8_t> a(prediction.shape()), b(target.shape());
    bool any_a = false, any_b = false;
    for (index_t i = 0; i < a.numel(); ++i) {
        a.data()[i] = prediction.data()[i] == label;
        b.data()[i] = target.data()[i] == label;
        any_a = any_a || a.data()[i];
        any_b = any_b || b.data()[i];
    }
    if (!any_a || !any_b) return std::nullopt;
    const Tensor<std::uint8_t> surface_a = mask_surface<std::uint8_t>(a.cview());
    const Tensor<std::uint8_t> surface_b = mask_surface<std::uint8_t>(b.cview());
    const Tensor<double> to_b = distance_transform<std::uint8_t>(surface_b.cview(), spacing);
    const Tensor<double> to_a = distance_transform<std::uint8_t>(surface_a.cview(), spacing);
    std::vector<double> ab, ba;  // prediction surface -> target surface, and back
    for (index_t i = 0; i < a.numel(); ++i) {
        if (surface_a.data()[i]) ab.push_back(to_b.data()[i]);
        if (surface_b.data()[i]) ba.push_back(to_a.data()[i]);
    }
    const auto sum = [](const std::vector<double>& v) {
        double total = 0;
        for (double x : v) total += x;
        return total;
    };
    std::vector<double> all = ab;
    all.insert(all.end(), ba.begin(), ba.end());
    SurfaceDistance r;
    r.hausdorff = *std::max_element(all.begin(), all.end());
    r.hd95_medpy = percentile(all, 95.0);
    r.hd95_monai = std::max(percentile(ab, 95.0), percentile(ba, 95.0));
    r.assd_pooled = sum(all) / static_cast<double>(all.size());
    r.assd_mean_of_directed =
        0.5 * (sum(ab) / static_cast<double>(ab.size()) + sum(ba) / static_cast<double>(ba.size()));
    return r;
}

}  // namespace gcl::metrics
