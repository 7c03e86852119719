#pragma once
// Pixel-wise contrast under several meta labels.
//
// S locations are sampled once per batch (seeded) and read in every image's feature map, so
// location s of one image corresponds to location s of every other. The A = N S sampled pixel
// embeddings are contrasted with multi_label_contrast: under label m, pixel (n, s) and pixel
// (n', s') are positives when s = s' and the images of n and n' are positives under m (or are the
// two views of one image). Memory is bounded by A, never by the size of the feature map: the
// loss holds A x A matrices and returns gradients for the A sampled pixels only.
//
//   auto loc = gcl::loss::sample_locations(H, W, S, rng);
//   auto r = gcl::loss::pixel_contrast<float>(features /* N x C x H x W */, loc.cview(), pairs,
//                                             {.temperature = 0.1, .normalize = true, .keep_pair_grads = true});
//   // r.pair_grads: dL_m/ds per pixel pair, closed form; filter them, then contrast_backward
//   gcl::loss::scatter_pixel_grads<float>(r.grad_sum.cview(), loc.cview(), dfeatures.view());
#include <algorithm>
#include <cmath>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/loss/multi_label_contrast.hpp"
#include "gcl/loss/positive_pairs.hpp"

namespace gcl::loss {

// S distinct flat locations (y * W + x) of an H x W map, drawn with `rng`, in ascending order.
inline Tensor<index_t> sample_locations(index_t height, index_t width, index_t samples, Rng& rng) {
    const index_t n = height * width;
    check(height >= 1 && width >= 1, "sample_locations", "the map must not be empty, got ", height, " x ", width);
    check(samples >= 1 && samples <= n, "sample_locations", "cannot sample ", samples, " distinct locations of a ",
          height, " x ", width, " map");
    std::vector<index_t> all(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) all[i] = i;
    for (index_t t = 0; t < samples; ++t) {  // partial Fisher-Yates
        const auto j = t + static_cast<index_t>(rng.below(static_cast<std::uint64_t>(n - t)));
        std::swap(all[t], all[j]);
    }
    std::sort(all.begin(), all.begin() + samples);
    Tensor<index_t> loc(Shape{samples});
    std::copy(all.begin(), all.begin() + samples, loc.data());
    return loc;
}

namespace detail {
template <class T>
void check_pixel_input(std::string_view op, ConstView<T> features, ConstView<index_t> locations) {
    check_rank(op, features.shape(), 4, "features (N x C x H x W)");
    check(features.is_contiguous(), op, "features must be contiguous");
    check_rank(op, locations.shape(), 1, "locations");
    check(locations.dim(0) >= 1, op, "at least one location is needed");
    const index_t hw = features.dim(2) * features.dim(3);
    for (index_t s = 0; s < locations.dim(0); ++s)
        check(locations(s) >= 0 && locations(s) < hw, op, "location ", s, " = ", locations(s), " is outside the ",
              features.dim(2), " x ", features.dim(3), " map");
}
}  // namespace detail

// The sampled pixel embeddings, A x C with row n * S + s = features[n, :, locations[s]].
template <class T>
Tensor<T> gather_pixels(ConstView<T> features, ConstView<index_t> locations) {
    detail::check_pixel_input<T>("gather_pixels", features, locations);
    const index_t N = features.dim(0), C = features.dim(1), HW = features.dim(2) * features.dim(3);
    const index_t S = locations.dim(0);
    Tensor<T> out(Shape{N * S, C});
    for (index_t n = 0; n < N; ++n)
        for (index_t s = 0; s < S; ++s)
            for (index_t c = 0; c < C; ++c) out(n * S + s, c) = features.data()[(n * C + c) * HW + locations(s)];
    return out;
}

// Adds the gradients of the sampled pixels (A x C) into a gradient map shaped like the features.
template <class T>
void scatter_pixel_grads(ConstView<T> grads, ConstView<index_t> locations, TensorView<T> out) {
    detail::check_pixel_input<T>("scatter_pixel_grads", ConstView<T>(out), locations);
    const index_t N = out.dim(0), C = out.dim(1), HW = out.dim(2) * out.dim(3), S = locations.dim(0);
    check(grads.rank() == 2 && grads.dim(0) == N * S && grads.dim(1) == C, "scatter_pixel_grads", "grads must be [",
          N * S, ", ", C, "], got ", grads.shape());
    for (index_t n = 0; n < N; ++n)
        for (index_t s = 0; s < S; ++s)
            for (index_t c = 0; c < C; ++c) out.data()[(n * C + c) * HW + locations(s)] += grads(n * S + s, c);
}

// Per sampled pixel, the L2 norm over channels of a feature-map gradient (N x C x H x W), e.g. of
// the image branch's loss: anchor weights for GradFilter. Returns [N * S].
template <class T>
Tensor<T> location_magnitudes(ConstView<T> grad_features, ConstView<index_t> locations) {
    const Tensor<T> g = gather_pixels<T>(grad_features, locations);
    Tensor<T> out(Shape{g.dim(0)});
    for (index_t i = 0; i < g.dim(0); ++i) {
        double s = 0;
        for (index_t c = 0; c < g.dim(1); ++c) s += static_cast<double>(g(i, c)) * static_cast<double>(g(i, c));
        out(i) = static_cast<T>(std::sqrt(s));
    }
    return out;
}

// The multi-label contrast of the sampled pixels; `pairs` describes the N images of the batch.
template <class T>
ContrastResult<T> pixel_contrast(ConstView<T> features, ConstView<index_t> locations, const PositivePairs& pairs,
                                 const ContrastOptions& options = {.keep_pair_grads = true}) {
    detail::check_pixel_input<T>("pixel_contrast", features, locations);
    check(pairs.embeddings() == features.dim(0), "pixel_contrast", "the positive pairs describe ", pairs.embeddings(),
          " feature maps but features has shape ", features.shape());
    check(pairs.labels() >= 1, "pixel_contrast", "no meta label was added to the positive pairs");
    const Tensor<T> z = gather_pixels<T>(features, locations);
    return multi_label_contrast<T, cpu>("pixel_contrast", z.cview(), pairs.pixel_positives(locations.dim(0)), options);
}

// |sum_m dL_m/ds| per pair (A x A), or |dL_m/ds| for one label m >= 0: what GradFilter ranks.
template <class T>
Tensor<T> pair_grad_magnitudes(const ContrastResult<T>& r, index_t label = -1) {
    check(r.pair_grads.rank() == 3, "pair_grad_magnitudes", "the forward pass did not keep its pair gradients");
    const index_t K = r.pair_grads.dim(0), A = r.pair_grads.dim(1);
    check(label < K, "pair_grad_magnitudes", "label ", label, " out of range for ", K, " labels");
    Tensor<T> out(Shape{A, A});
    for (index_t i = 0; i < A * A; ++i) {
        double s = 0;
        for (index_t m = (label < 0 ? 0 : label); m < (label < 0 ? K : label + 1); ++m)
            s += static_cast<double>(r.pair_grads.data()[m * A * A + i]);
        out.data()[i] = static_cast<T>(std::abs(s));
    }
    return out;
}

// Pair gradients of the forward pass with the pairs outside `mask` (A x A, e.g. GradFilter's)
// set to zero, ready for contrast_backward.
template <class T>
Tensor<T> masked_pair_grads(const ContrastResult<T>& r, ConstView<std::uint8_t> mask) {
    check(r.pair_grads.rank() == 3, "masked_pair_grads", "the forward pass did not keep its pair gradients");
    const index_t K = r.pair_grads.dim(0), A = r.pair_grads.dim(1);
    check(mask.rank() == 2 && mask.dim(0) == A && mask.dim(1) == A && mask.is_contiguous(), "masked_pair_grads",
          "mask must be a contiguous [", A, ", ", A, "], got ", mask.shape());
    Tensor<T> out = r.pair_grads;
    for (index_t m = 0; m < K; ++m)
        for (index_t i = 0; i < A * A; ++i)
            if (!mask.data()[i]) out.data()[m * A * A + i] = T(0);
    return out;
}

}  // namespace gcl::loss
