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
//
// The embeddings and every gradient live on the model's device D. The meta labels are host data
// [K, N]: they only decide which embeddings are positives, and the positives are built from them
// on the host (supcon_label_positives, PositivePairs) and moved to D once per contrast
// (positives_on).
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/loss/pixel_contrast.hpp"
#include "gcl/loss/positive_pairs.hpp"
#include "gcl/loss/supcon.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/normalize.hpp"
#include "gcl/ops/transfer.hpp"
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
    template <class T, class D = cpu>
    static Tensor<T, D> columns(ConstView<T, D> x, index_t first, index_t count) {
        const ConstView<T, D> part = x.narrow(1, first, count);
        Tensor<T, D> out(part.shape());
        ops::copy(part, out.view());
        return out;
    }

    // The K per-label loss values of a contrast, on the host.
    template <class T, class D>
    static std::vector<double> host_losses(const Tensor<T, D>& losses) {
        const Tensor<T> host = ops::device_to_host(losses.cview());
        return std::vector<double>(host.data(), host.data() + host.numel());
    }

    // SupCon over the image embeddings z [N, width] with every label's positives (meta [K, N] on
    // the host): per-label gradients [K, N, width] (zero outside label m's part in per_label spaces).
    template <class T, class D = cpu>
    PerLabelGradients<T, D> image_contrast(ConstView<T, D> z, ConstView<std::int64_t> meta,
                                           GclStepReport& report) const
    {
        const index_t K = meta.dim(0), N = z.dim(0), width = z.dim(1);
        PerLabelGradients<T, D> r;
        if (space == LabelSpace::shared) {
            loss::ContrastResult<T, D> c = loss::supcon<T, D>(z, loss::positives_on<D>(loss::supcon_label_positives(meta)),
                                                              {.temperature = temperature, .normalize = false});
            r.losses = host_losses(c.losses);
            report.image_anchors_without_positives = c.anchors_without_positives;
            r.grads = std::move(c.grads);
            r.grad_sum = std::move(c.grad_sum);
        } else {
            const index_t d = part_size(width, K, "image embedding");
            const std::vector<double>& taus = image_temperatures;
            check(taus.empty() || static_cast<index_t>(taus.size()) == K, "train::GclObjective", "image_temperatures has ",
                  taus.size(), " values for ", K, " meta labels");
            r.grads = Tensor<T, D>(Shape{K, N, width});
            r.grad_sum = Tensor<T, D>(Shape{N, width});
            Tensor<T, D> unit(Shape{N, d}), grad(Shape{N, d});
            for (index_t m = 0; m < K; ++m) {
                const Tensor<T, D> part = columns<T, D>(z, m * d, d);
                ops::l2_normalize_forward(part.cview(), unit.view(), 1);
                const loss::ContrastResult<T, D> c = loss::supcon<T, D>(
                    unit.cview(), loss::positives_on<D>(loss::supcon_label_positives(meta.narrow(0, m, 1))),
                    {.temperature = taus.empty() ? temperature : taus[static_cast<std::size_t>(m)], .normalize = false});
                ops::l2_normalize_backward(c.grads.cview().select(0, 0), part.cview(), grad.view(), 1);
                r.losses.push_back(host_losses(c.losses)[0]);
                report.image_anchors_without_positives.push_back(c.anchors_without_positives[0]);
                // Label m's gradient is its part's; the parts are disjoint, so the sum is a copy too.
                ops::copy(grad.cview(), r.grads.view().select(0, m).narrow(1, m * d, d));
                ops::copy(grad.cview(), r.grad_sum.view().narrow(1, m * d, d));
            }
        }
        report.image_losses = r.losses;
        for (double l : r.losses) report.total += l;
        return r;
    }

    // The pixel contrast of the sampled locations [S] of features [N, C, h, w] with every label's
    // positives (meta [K, N] on the host; one image's pixels share its labels), filtered by
    // `filter` with the anchor weights `guidance` [A] (empty: unweighted): per-label gradients
    // [K, A, C], A = N S, not yet weighted; the report's total gains pixel_weight times each loss.
    template <class T, class D = cpu>
    PerLabelGradients<T, D> pixel_contrast(ConstView<T, D> features, ConstView<std::int64_t> meta,
                                           const Tensor<index_t, D>& locations, const PixelFilterPolicy& filter,
                                           const Tensor<T, D>& guidance, double pixel_weight,
                                           GclStepReport& report) const
    {
        const index_t K = meta.dim(0), N = features.dim(0), C = features.dim(1), B = N / 2;
        const index_t S = locations.dim(0), A = N * S;
        std::vector<Tensor<index_t>> values;
        for (index_t m = 0; m < K; ++m) {
            values.emplace_back(Shape{B});
            for (index_t i = 0; i < B; ++i) values[m](i) = meta(m, i);
        }
        PerLabelGradients<T, D> r;
        r.grads = Tensor<T, D>(Shape{K, A, C});
        r.grad_sum = Tensor<T, D>(Shape{A, C});
        const bool shared = space == LabelSpace::shared;
        const index_t c = part_size(C, K, "pixel embedding");
        // One contrast for all labels in a shared space, one per label (on its channels) otherwise.
        for (index_t group = 0; group < (shared ? 1 : K); ++group) {
            loss::PositivePairs pairs(B);
            for (index_t m = (shared ? 0 : group); m < (shared ? K : group + 1); ++m) pairs.add_labels(values[m].cview());
            // A label's own channels, re-normalised at every location.
            Tensor<T, D> part, unit;
            if (!shared) {
                part = columns<T, D>(features, group * c, c);
                unit.resize(part.shape());
                ops::l2_normalize_forward(part.cview(), unit.view(), 1);
            }
            const loss::ContrastResult<T, D> result = loss::pixel_contrast<T, D>(
                shared ? features : unit.cview(), locations.cview(), loss::positives_on<D>(pairs.pixel_positives(S)),
                {.temperature = temperature, .normalize = false, .keep_pair_grads = filter.needs_pair_grads()});
            Tensor<T, D> grads = filter.gradients(result, guidance, report);  // [labels in this group, A, c]
            if (!shared) {  // through the re-normalisation, pixel by pixel
                const Tensor<T, D> raw = loss::gather_pixels<T, D>(part.cview(), locations.cview());
                ops::l2_normalize_backward(grads.cview().select(0, 0), raw.cview(), grads.view().select(0, 0), 1);
            }
            const std::vector<double> losses = host_losses(result.losses);
            for (index_t k = 0; k < grads.dim(0); ++k) {
                const index_t m = shared ? k : group;
                r.losses.push_back(losses[static_cast<std::size_t>(k)]);
                ops::copy(grads.cview().select(0, k), r.grads.view().select(0, m).narrow(1, shared ? 0 : group * c, grads.dim(2)));
            }
        }
        // The sum over the labels, in label order (label m's gradient is zero outside its part).
        for (index_t m = 0; m < K; ++m) ops::add(r.grad_sum.cview(), r.grads.cview().select(0, m), r.grad_sum.view());
        report.pixel_losses = r.losses;
        for (double l : r.losses) report.total += pixel_weight * l;
        return r;
    }
};

}  // namespace gcl::train
