#pragma once
// Label spaces: which part of an embedding each meta label's contrast uses, and the per-label
// losses and gradients of the image-wise and the pixel-wise contrasts in that space.
//
//   shared:    every label contrasts the whole embedding (one SupCon with K labels).
//   per_label: the embedding is cut into K equal parts; label m contrasts part m, re-normalised,
//              so label m's gradient is zero outside its part.
//
//   train::LabelSpaces spaces = train::LabelSpaces::of(options);
//   train::PerLabelGradients<float> img = spaces.image_contrast(z, meta, report);
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/loss/pixel_contrast.hpp"
#include "gcl/loss/positive_pairs.hpp"
#include "gcl/loss/supcon.hpp"
#include "gcl/ops/normalize.hpp"
#include "gcl/train/gcl_options.hpp"
#include "gcl/train/gcl_stage.hpp"
#include "gcl/train/pixel_filter_policy.hpp"

namespace gcl::train {

struct LabelSpaces {
    LabelSpace space = LabelSpace::per_label;
    double temperature = 0.5;
    std::vector<double> image_temperatures = {};  // per label (per_label only); empty: `temperature`

    static LabelSpaces of(const GclObjectiveOptions& o) {
        return {.space = o.label_space, .temperature = o.temperature, .image_temperatures = o.image_temperatures};
    }

    // The width of one label's part of an embedding of `width` channels (all of it when shared).
    index_t part_size(index_t width, index_t K, const char* what) const {
        if (space == LabelSpace::shared) return width;
        check(width % K == 0, "train::LabelSpaces", "per-label spaces need the ", what, " width (", width,
              ") to be a multiple of the number of meta labels (", K, ")");
        return width / K;
    }

    // A contiguous copy of channels [first, first + count) of [rows, width] or [N, width, h, w].
    template <class T>
    static Tensor<T> columns(ConstView<T> x, index_t first, index_t count) {
        return Tensor<T>::copy_of(x.narrow(1, first, count));
    }

    // SupCon over the image embeddings z [N, D] with every label's positives: per-label
    // gradients [K, N, D] (zero outside label m's part in per_label spaces).
    template <class T>
    PerLabelGradients<T> image_contrast(ConstView<T> z, ConstView<std::int64_t> meta, GclStepReport& report) const {
        const index_t K = meta.dim(0), N = z.dim(0), D = z.dim(1);
        const Tensor<std::int64_t> labels = Tensor<std::int64_t>::copy_of(meta);
        PerLabelGradients<T> r;
        if (space == LabelSpace::shared) {
            loss::ContrastResult<T> c = loss::supcon<T>(z, labels.cview(), {.temperature = temperature, .normalize = false});
            for (index_t m = 0; m < K; ++m) r.losses.push_back(static_cast<double>(c.losses(m)));
            report.image_anchors_without_positives = c.anchors_without_positives;
            r.grads = std::move(c.grads);
            r.grad_sum = std::move(c.grad_sum);
        } else {
            const index_t d = part_size(D, K, "image embedding");
            const std::vector<double>& taus = image_temperatures;
            check(taus.empty() || static_cast<index_t>(taus.size()) == K, "train::GclObjective", "image_temperatures has ",
                  taus.size(), " values for ", K, " meta labels");
            r.grads = Tensor<T>(Shape{K, N, D});
            r.grad_sum = Tensor<T>(Shape{N, D});
            Tensor<T> unit(Shape{N, d}), grad(Shape{N, d});
            for (index_t m = 0; m < K; ++m) {
                const Tensor<T> part = columns<T>(z, m * d, d);
                ops::l2_normalize_forward(part.cview(), unit.view(), 1);
                const Tensor<std::int64_t> row = Tensor<std::int64_t>::copy_of(labels.cview().narrow(0, m, 1));
                const loss::ContrastResult<T> c =
                    loss::supcon<T>(unit.cview(), row.cview(),
                                    {.temperature = taus.empty() ? temperature : taus[static_cast<std::size_t>(m)],
                                     .normalize = false});
                ops::l2_normalize_backward(c.grads.cview().select(0, 0), part.cview(), grad.view(), 1);
                r.losses.push_back(static_cast<double>(c.losses(0)));
                report.image_anchors_without_positives.push_back(c.anchors_without_positives[0]);
                for (index_t n = 0; n < N; ++n)
                    for (index_t j = 0; j < d; ++j) {
                        r.grads(m, n, m * d + j) = grad(n, j);
                        r.grad_sum(n, m * d + j) = grad(n, j);
                    }
            }
        }
        report.image_losses = r.losses;
        for (double l : r.losses) report.total += l;
        return r;
    }

    // The pixel contrast of the sampled locations [S] of features [N, C, h, w] with every label's
    // positives (one image's pixels share its labels), filtered by `filter` with the anchor
    // weights `guidance` [A] (empty: unweighted): per-label gradients [K, A, C], A = N S, not yet
    // weighted; the report's total gains pixel_weight times each loss.
    template <class T>
    PerLabelGradients<T> pixel_contrast(ConstView<T> features, ConstView<std::int64_t> meta,
                                        const Tensor<index_t>& locations, const PixelFilterPolicy& filter,
                                        const Tensor<T>& guidance, double pixel_weight, GclStepReport& report) const {
        const index_t K = meta.dim(0), N = features.dim(0), C = features.dim(1), B = N / 2;
        const index_t S = locations.dim(0), A = N * S;
        std::vector<Tensor<index_t>> values;
        for (index_t m = 0; m < K; ++m) {
            values.emplace_back(Shape{B});
            for (index_t i = 0; i < B; ++i) values[m](i) = meta(m, i);
        }
        PerLabelGradients<T> r;
        r.grads = Tensor<T>(Shape{K, A, C});
        r.grad_sum = Tensor<T>(Shape{A, C});
        const bool shared = space == LabelSpace::shared;
        const index_t c = part_size(C, K, "pixel embedding");
        // One contrast for all labels in a shared space, one per label (on its channels) otherwise.
        for (index_t group = 0; group < (shared ? 1 : K); ++group) {
            loss::PositivePairs pairs(B);
            for (index_t m = (shared ? 0 : group); m < (shared ? K : group + 1); ++m) pairs.add_labels(values[m].cview());
            // A label's own channels, re-normalised at every location.
            Tensor<T> part, unit;
            if (!shared) {
                part = columns<T>(features, group * c, c);
                unit.resize(part.shape());
                ops::l2_normalize_forward(part.cview(), unit.view(), 1);
            }
            const loss::ContrastResult<T> result = loss::pixel_contrast<T>(
                shared ? features : unit.cview(), locations.cview(), pairs,
                {.temperature = temperature, .normalize = false, .keep_pair_grads = filter.needs_pair_grads()});
            Tensor<T> grads = filter.gradients(result, guidance, report);  // [labels in this group, A, c]
            if (!shared) {  // through the re-normalisation, pixel by pixel
                const Tensor<T> raw = loss::gather_pixels<T>(part.cview(), locations.cview());
                ops::l2_normalize_backward(grads.cview().select(0, 0), raw.cview(), grads.view().select(0, 0), 1);
            }
            for (index_t k = 0; k < grads.dim(0); ++k) {
                const index_t m = shared ? k : group;
                r.losses.push_back(static_cast<double>(result.losses(k)));
                const index_t offset = shared ? 0 : group * c;
                for (index_t a = 0; a < A; ++a)
                    for (index_t j = 0; j < grads.dim(2); ++j) {
                        r.grads(m, a, offset + j) = grads(k, a, j);
                        r.grad_sum(a, offset + j) += grads(k, a, j);
                    }
            }
        }
        report.pixel_losses = r.losses;
        for (double l : r.losses) report.total += pixel_weight * l;
        return r;
    }
};

}  // namespace gcl::train
