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
//
// gather_pixels, scatter_pixel_grads, the contrast on Positives<D> and the pair-gradient helpers
// are templates over the device (backend::Contrast), and so is the form that takes PositivePairs;
// sampling and building the positives run on the host.
#include <algorithm>
#include <cmath>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/loss/multi_label_contrast.hpp"
#include "gcl/loss/positive_pairs.hpp"
#include "gcl/ops/normalize.hpp"

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
template <class T, class D>
void check_pixel_input(std::string_view op, ConstView<T, D> features, ConstView<index_t, D> locations) {
    check_rank(op, features.shape(), 4, "features (N x C x H x W)");
    check(features.is_contiguous(), op, "features must be contiguous");
    check_rank(op, locations.shape(), 1, "locations");
    check(locations.dim(0) >= 1 && locations.is_contiguous(), op, "at least one location is needed, contiguous");
    const index_t bad = backend::Contrast<D>::first_bad_location(locations, features.dim(2) * features.dim(3));
    if (bad >= 0)
        fail(op, "location ", bad, " = ", backend::Reduce<D>::element(locations, bad), " is outside the ",
             features.dim(2), " x ", features.dim(3), " map");
}
}  // namespace detail

// The sampled pixel embeddings, A x C with row n * S + s = features[n, :, locations[s]].
template <class T, class D = cpu>
Tensor<T, D> gather_pixels(ConstView<T, D> features, ConstView<index_t, D> locations) {
    detail::check_pixel_input<T, D>("gather_pixels", features, locations);
    Tensor<T, D> out(Shape{features.dim(0) * locations.dim(0), features.dim(1)});
    backend::Contrast<D>::gather_pixels(features, locations, out.view());
    return out;
}

// Adds the gradients of the sampled pixels (A x C) into a gradient map shaped like the features.
template <class T, class D = cpu>
void scatter_pixel_grads(Input<T, D> grads, Input<index_t, D> locations, TensorView<T, D> out) {
    detail::check_pixel_input<T, D>("scatter_pixel_grads", ConstView<T, D>(out), locations);
    const index_t N = out.dim(0), C = out.dim(1), S = locations.dim(0);
    check(grads.rank() == 2 && grads.dim(0) == N * S && grads.dim(1) == C && grads.is_contiguous(),
          "scatter_pixel_grads", "grads must be a contiguous [", N * S, ", ", C, "], got ", grads.shape());
    backend::Contrast<D>::scatter_pixel_grads(grads, locations, out);
}

// Per sampled pixel, the L2 norm over channels of a feature-map gradient (N x C x H x W), e.g. of
// the image branch's loss: anchor weights for GradFilter. Returns [N * S].
template <class T, class D = cpu>
Tensor<T, D> location_magnitudes(ConstView<T, D> grad_features, ConstView<index_t, D> locations) {
    const Tensor<T, D> g = gather_pixels<T, D>(grad_features, locations);
    Tensor<T, D> out(Shape{g.dim(0)});
    ops::l2_norm(g.cview(), out.view(), 1);
    return out;
}

// The multi-label contrast of the sampled pixels, positives as data over the A = N S pixels
// (row n S + s; PositivePairs::pixel_positives builds them).
template <class T, class D = cpu>
ContrastResult<T, D> pixel_contrast(Input<T, D> features, Input<index_t, D> locations, const Positives<D>& positives,
                                    const ContrastOptions& options = {.keep_pair_grads = true}) {
    const Tensor<T, D> z = gather_pixels<T, D>(features, locations);
    return multi_label_contrast<T, D>("pixel_contrast", z.cview(), positives, options);
}

// The multi-label contrast of the sampled pixels; `pairs` describes the N images of the batch
// (its positives are built on the host and moved to D).
template <class T, class D = cpu>
ContrastResult<T, D> pixel_contrast(Input<T, D> features, Input<index_t, D> locations, const PositivePairs& pairs,
                                    const ContrastOptions& options = {.keep_pair_grads = true}) {
    detail::check_pixel_input<T, D>("pixel_contrast", features, locations);
    check(pairs.embeddings() == features.dim(0), "pixel_contrast", "the positive pairs describe ", pairs.embeddings(),
          " feature maps but features has shape ", features.shape());
    check(pairs.labels() >= 1, "pixel_contrast", "no meta label was added to the positive pairs");
    return pixel_contrast<T, D>(features, locations, positives_on<D>(pairs.pixel_positives(locations.dim(0))), options);
}

// |sum_m dL_m/ds| per pair (A x A), or |dL_m/ds| for one label m >= 0: what GradFilter ranks.
template <class T, class D = cpu>
Tensor<T, D> pair_grad_magnitudes(const ContrastResult<T, D>& r, index_t label = -1) {
    check(r.pair_grads.rank() == 3, "pair_grad_magnitudes", "the forward pass did not keep its pair gradients");
    const index_t K = r.pair_grads.dim(0), A = r.pair_grads.dim(1);
    check(label < K, "pair_grad_magnitudes", "label ", label, " out of range for ", K, " labels");
    Tensor<T, D> out(Shape{A, A});
    backend::Contrast<D>::pair_grad_magnitudes(r.pair_grads.cview(), label < 0 ? 0 : label, label < 0 ? K : label + 1,
                                               out.view());
    return out;
}

// Pair gradients of the forward pass with the pairs outside `mask` (A x A, e.g. GradFilter's)
// set to zero, ready for contrast_backward.
template <class T, class D = cpu>
Tensor<T, D> masked_pair_grads(const ContrastResult<T, D>& r, Input<std::uint8_t, D> mask) {
    check(r.pair_grads.rank() == 3, "masked_pair_grads", "the forward pass did not keep its pair gradients");
    const index_t A = r.pair_grads.dim(1);
    check(mask.rank() == 2 && mask.dim(0) == A && mask.dim(1) == A && mask.is_contiguous(), "masked_pair_grads",
          "mask must be a contiguous [", A, ", ", A, "], got ", mask.shape());
    Tensor<T, D> out(r.pair_grads.shape());
    ops::copy(r.pair_grads.cview(), out.view());
    backend::Contrast<D>::mask_pair_grads(mask, out.view());
    return out;
}

}  // namespace gcl::loss
