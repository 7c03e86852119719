#pragma once
// Surface distances between two binary masks (2D or 3D, anisotropic spacing): the 95th percentile
// Hausdorff distance (HD95) and the average symmetric surface distance (ASSD), as medical image
// segmentation papers report them.
//
// Conventions (those of MedPy's hd95 / assd): a surface voxel is a mask voxel with a face
// neighbour outside the mask or outside the image; distances run from each surface voxel of one
// mask to the nearest surface voxel of the other, in physical units (spacing); HD95 is the 95th
// percentile (linear interpolation) of both directions' distances together, and ASSD the mean of
// the two directions' means. Distances come from an exact Euclidean distance transform
// (Felzenszwalb & Huttenlocher 2012), linear in the number of voxels.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::train {

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
    const auto [D, H, W] = detail::as_3d(s);
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

struct SurfaceDistance {
    double hd95 = 0;     // 95th percentile of the surface distances of both directions
    double hausdorff = 0;  // their maximum
    double assd = 0;     // average symmetric surface distance
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
    std::vector<double> all;
    double sum_ab = 0, sum_ba = 0;
    index_t n_ab = 0, n_ba = 0;
    for (index_t i = 0; i < a.numel(); ++i) {
        if (surface_a.data()[i]) {
            all.push_back(to_b.data()[i]);
            sum_ab += to_b.data()[i];
            ++n_ab;
        }
        if (surface_b.data()[i]) {
            all.push_back(to_a.data()[i]);
            sum_ba += to_a.data()[i];
            ++n_ba;
        }
    }
    SurfaceDistance r;
    r.hausdorff = *std::max_element(all.begin(), all.end());
    r.hd95 = percentile(std::move(all), 95.0);
    r.assd = 0.5 * (sum_ab / static_cast<double>(n_ab) + sum_ba / static_cast<double>(n_ba));
    return r;
}

}  // namespace gcl::train
