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
#include <algorithm>
#include <cstdint>

#include "gcl/core/tensor.hpp"
#include "gcl/loss/multi_label_contrast.hpp"
#include "gcl/loss/pixel_contrast.hpp"
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
    template <class T>
    Tensor<std::uint8_t> mask(const loss::ContrastResult<T>& pix, const Tensor<T>& guidance, GclStepReport& report) const {
        const Tensor<T> magnitudes = loss::pair_grad_magnitudes(pix);  // |sum_m dL_m/ds|, A x A
        const index_t A = magnitudes.dim(0);
        const ConstView<T> anchor_weights = guidance.empty() ? ConstView<T>() : guidance.cview();
        report.candidate_pairs += A * A;
        if (filter == PixelFilter::pairs) {
            surgery::FilterResult kept = surgery::filter_pairs<T>(magnitudes.cview(), filter_options, anchor_weights);
            report.kept_pairs += kept.indices.dim(0);
            return std::move(kept.mask);
        }
        // Anchors: each scored by the summed magnitude of its pair gradients; GradFilter ranks the
        // A x 1 scores globally (times the guidance weights) and keeps the top anchor_ratio.
        Tensor<T> scores(Shape{A, 1});
        for (index_t i = 0; i < A; ++i) {
            double sum = 0;
            for (index_t a = 0; a < A; ++a) sum += static_cast<double>(magnitudes(i, a));
            scores(i, 0) = static_cast<T>(sum);
        }
        const surgery::FilterResult kept = surgery::filter_pairs<T>(
            scores.cview(), {.rule = surgery::FilterRule::top_ratio_global, .ratio = anchor_ratio}, anchor_weights);
        Tensor<std::uint8_t> mask(Shape{A, A});
        for (index_t i = 0; i < A; ++i)
            if (kept.mask(i, 0)) std::fill(mask.data() + i * A, mask.data() + (i + 1) * A, std::uint8_t{1});
        report.kept_pairs += kept.indices.dim(0) * A;
        return mask;
    }

    // The contrast's per-label gradients [labels, A, C] over the kept pairs (all pairs with none).
    template <class T>
    Tensor<T> gradients(const loss::ContrastResult<T>& pix, const Tensor<T>& guidance, GclStepReport& report) const {
        if (filter == PixelFilter::none) return pix.grads;
        const Tensor<std::uint8_t> kept = mask(pix, guidance, report);
        const Tensor<T> masked = loss::masked_pair_grads(pix, kept.cview());
        return loss::contrast_backward<T>(pix, masked.cview());
    }
};

}  // namespace gcl::train
