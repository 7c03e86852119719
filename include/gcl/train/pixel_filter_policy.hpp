#pragma once
// The pixel filter policy: which sampled pixels (or pixel pairs) GradFilter keeps in one pixel
// contrast, and the gradient of the contrast over what it keeps.
//
//   anchors: every sampled pixel is scored by the summed magnitude of its pair gradients |dL/ds|
//            (times the image guidance weight of its location), GradFilter keeps the top
//            anchor_ratio of them, each with all its pairs: the exact gradient of the pixel loss
//            over the kept anchors.
//   pairs:   filter_options applied to the A x A pair magnitudes themselves.
//   none:    every pair takes part.
//
//   train::PixelFilterPolicy policy{.filter = train::PixelFilter::anchors, .anchor_ratio = 0.5};
//   Tensor<float> grads = policy.gradients(contrast, guidance, report);  // [labels, A, C]
//
// Everything runs on the contrast's device D: the magnitudes, the ranking (GradFilter<T, D>) and
// the masks; only the kept counts reach the host (as shapes).
#include <algorithm>
#include <cstdint>

#include "gcl/core/tensor.hpp"
#include "gcl/loss/multi_label_contrast.hpp"
#include "gcl/loss/pixel_contrast.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/reduce.hpp"
#include "gcl/surgery/filter.hpp"
#include "gcl/train/gcl_options.hpp"

namespace gcl::train {

struct PixelFilterPolicy {
    PixelFilter filter = PixelFilter::anchors;
    double anchor_ratio = 0.5;
    surgery::FilterOptions filter_options = {.rule = surgery::FilterRule::top_k_per_anchor, .k = 64};
    bool image_guidance = true;  // scores weighted by the image branch's gradient magnitude at each anchor

    static PixelFilterPolicy of(const GclObjectiveOptions& o) {
        return {.filter = o.filter, .anchor_ratio = o.anchor_ratio, .filter_options = o.filter_options,
                .image_guidance = o.image_guidance};
    }

    // Whether the contrast must keep its pair gradients, and whether the policy reads guidance.
    bool needs_pair_grads() const { return filter != PixelFilter::none; }
    bool needs_guidance() const { return filter != PixelFilter::none && image_guidance; }

    // The A x A mask of the pixel pairs kept in one contrast (computed with keep_pair_grads);
    // `guidance` [A] weights the anchors (empty: unweighted). Counts the kept and candidate pairs.
    template <class T, class D>
    Tensor<std::uint8_t, D> mask(const loss::ContrastResult<T, D>& pix, const Tensor<T, D>& guidance,
                                 GclStepReport& report) const
    {
        const Tensor<T, D> magnitudes = loss::pair_grad_magnitudes<T, D>(pix);  // |sum_m dL_m/ds|, A x A
        const index_t A = magnitudes.dim(0);
        const ConstView<T, D> anchor_weights = guidance.empty() ? ConstView<T, D>() : guidance.cview();
        report.candidate_pairs += A * A;
        if (filter == PixelFilter::pairs) {
            surgery::BasicFilterResult<D> kept =
                surgery::GradFilter<T, D>(filter_options)({magnitudes.cview(), anchor_weights});
            report.kept_pairs += kept.indices.dim(0);
            return std::move(kept.mask);
        }
        // Anchors: each scored by the summed magnitude of its pair gradients; GradFilter ranks the
        // A x 1 scores globally (times the guidance weights) and keeps the top anchor_ratio.
        const Tensor<T, D> scores = anchor_scores<T, D>(magnitudes.cview());
        const surgery::BasicFilterResult<D> kept = surgery::GradFilter<T, D>(
            {.rule = surgery::FilterRule::top_ratio_global, .ratio = anchor_ratio})({scores.cview(), anchor_weights});
        report.kept_pairs += kept.indices.dim(0) * A;
        return anchor_rows<D>(kept.mask.cview());
    }

    // The contrast's per-label gradients [labels, A, C] over the kept pairs (all pairs with none).
    template <class T, class D>
    Tensor<T, D> gradients(const loss::ContrastResult<T, D>& pix, const Tensor<T, D>& guidance,
                           GclStepReport& report) const
    {
        if (filter == PixelFilter::none) return pix.grads;
        const Tensor<std::uint8_t, D> kept = mask(pix, guidance, report);
        const Tensor<T, D> masked = loss::masked_pair_grads<T, D>(pix, kept.cview());
        return loss::contrast_backward<T, D>(pix, masked.cview());
    }

    // Each anchor's score [A, 1]: the sum of its row of pair magnitudes [A, A] (in double, in
    // index order).
    template <class T, class D>
    static Tensor<T, D> anchor_scores(ConstView<T, D> magnitudes) {
        Tensor<T, D> scores(Shape{magnitudes.dim(0), 1});
        ops::sum(magnitudes, scores.view(), 1);
        return scores;
    }

    // The pair mask [A, A] of kept anchors [A, 1]: row i is kept[i] in every column (a copy from
    // the column read with a zero column stride).
    template <class D>
    static Tensor<std::uint8_t, D> anchor_rows(ConstView<std::uint8_t, D> kept) {
        const index_t A = kept.dim(0);
        Tensor<std::uint8_t, D> rows(Shape{A, A});
        ops::copy(ConstView<std::uint8_t, D>(kept.data(), Shape{A, A}, Strides{kept.stride(0), 0}), rows.view());
        return rows;
    }
};

}  // namespace gcl::train
