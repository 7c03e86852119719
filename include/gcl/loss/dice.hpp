#pragma once
// Soft Dice loss on the softmax of the logits, with class weights and an ignore index.
// For a group g of pixels (the whole batch, or each image) and a class c, over pixels not ignored:
//   I = sum p_c t_c,  Sp = sum p_c,  St = sum t_c,  dice_gc = (2 I + smooth) / (Sp + St + smooth)
//   L = 1 - sum_{g,c} w_c dice_gc / (G sum_c w_c)
// (t: one-hot targets; a class weight of 0 leaves a class out, e.g. the background). The gradient
// goes through the softmax to the logits; ignored pixels get none.
//
// Two pieces, so that a batch split over several processes gives the loss of the whole batch:
//   DicePartial<T> part = dice_sums<T>(logits, targets, options, first_image, total_images);
//   (sum part.sums over the processes: every process then holds the global I, Sp, St)
//   SegmentationLoss<T> r = dice_from_sums<T>(part, options);
// soft_dice is the two on one batch.
#include <vector>

#include "gcl/loss/segmentation_input.hpp"

namespace gcl::loss {

struct DiceOptions {
    std::vector<double> class_weights;  // C values, empty: all 1
    index_t ignore_index = -100;
    double smooth = 1e-5;
    bool per_image = false;  // false: one Dice per class over the batch; true: per image, averaged
};

// The per-group, per-class sums of one batch's pixels, and what the gradient pass needs again.
template <class T>
struct DicePartial {
    // [3, G, C]: I, Sp, St of every group of the global batch (G = 1, or its images with per_image;
    // a batch holding images [first_image, first_image + N) fills only their groups).
    std::vector<double> sums;
    index_t groups = 0, classes = 0, images = 0, spatial = 0, first_image = 0;
    Shape logits_shape;            // the gradient's shape
    Tensor<double> prob;           // [N, C, S] softmax of the logits (ignored pixels' are not used)
    std::vector<index_t> targets;  // [N, S]
    index_t counted = 0;
};

namespace detail {
inline double dice_class_weight(const DiceOptions& options, index_t c) {
    return options.class_weights.empty() ? 1.0 : options.class_weights[static_cast<std::size_t>(c)];
}
}  // namespace detail

// Softmax and sums of logits [N, C, ...] against targets [N, ...]: images first_image.. of a
// global batch of total_images (defaults: the batch is the whole batch).
template <class T>
DicePartial<T> dice_sums(ConstView<T> logits, ConstView<index_t> targets, const DiceOptions& options = {},
                         index_t first_image = 0, index_t total_images = -1) {
    const auto [N, C, S] = detail::check_segmentation_input<T>("soft_dice", logits, targets, options.class_weights,
                                                              options.ignore_index);
    check(options.smooth >= 0 && std::isfinite(options.smooth), "soft_dice", "smooth must be >= 0, got ",
          options.smooth);
    double weight_sum = 0;
    for (index_t c = 0; c < C; ++c) weight_sum += detail::dice_class_weight(options, c);
    check(weight_sum > 0, "soft_dice", "the class weights must not all be zero");
    if (total_images < 0) total_images = N;
    check(first_image >= 0 && first_image + N <= total_images, "soft_dice", "images [", first_image, ", ",
          first_image + N, ") are not part of a global batch of ", total_images);

    DicePartial<T> part;
    part.groups = options.per_image ? total_images : 1;
    part.classes = C;
    part.images = N;
    part.spatial = S;
    part.first_image = first_image;
    part.logits_shape = logits.shape();
    part.sums.assign(static_cast<std::size_t>(3 * part.groups * C), 0.0);
    part.prob = detail::class_probabilities<T, cpu>(logits);
    part.targets.assign(targets.data(), targets.data() + N * S);
    double* inter = part.sums.data();
    double* sum_p = inter + part.groups * C;
    double* sum_t = sum_p + part.groups * C;
    for (index_t n = 0; n < N; ++n)
        for (index_t s = 0; s < S; ++s) {
            const index_t y = targets.data()[n * S + s];
            if (y == options.ignore_index) continue;
            ++part.counted;
            const double* p = part.prob.data() + n * C * S + s;
            const index_t g = options.per_image ? first_image + n : 0;
            for (index_t c = 0; c < C; ++c) sum_p[g * C + c] += p[c * S];
            inter[g * C + y] += p[y * S];
            sum_t[g * C + y] += 1;
        }
    return part;
}

// The loss of the global batch and the gradient of this batch's logits, from part.sums holding
// the global batch's sums.
template <class T>
SegmentationLoss<T> dice_from_sums(const DicePartial<T>& part, const DiceOptions& options = {}) {
    const index_t G = part.groups, C = part.classes, N = part.images, S = part.spatial;
    check(static_cast<index_t>(part.sums.size()) == 3 * G * C, "soft_dice", "the sums hold ", part.sums.size(),
          " values, not 3 x ", G, " x ", C);
    const auto weight = [&](index_t c) { return detail::dice_class_weight(options, c); };
    double weight_sum = 0;
    for (index_t c = 0; c < C; ++c) weight_sum += weight(c);
    const double* inter = part.sums.data();
    const double* sum_p = inter + G * C;
    const double* sum_t = sum_p + G * C;

    // dL/dp for counted pixels, then through the softmax.
    std::vector<double> dice(static_cast<std::size_t>(G * C)), ddice_dp_pos(dice.size()), ddice_dp_neg(dice.size());
    double mean_dice = 0;
    for (index_t g = 0; g < G; ++g)
        for (index_t c = 0; c < C; ++c) {
            const index_t k = g * C + c;
            const double num = 2 * inter[k] + options.smooth, den = sum_p[k] + sum_t[k] + options.smooth;
            dice[k] = den > 0 ? num / den : 1.0;
            mean_dice += weight(c) * dice[k];
            // d dice / d p_sc = (2 t_sc den - num) / den^2: with t = 1 and with t = 0.
            ddice_dp_pos[k] = den > 0 ? (2 * den - num) / (den * den) : 0.0;
            ddice_dp_neg[k] = den > 0 ? -num / (den * den) : 0.0;
        }
    const double norm = static_cast<double>(G) * weight_sum;
    SegmentationLoss<T> r;
    r.loss = 1.0 - mean_dice / norm;
    r.counted = part.counted;
    r.grad = Tensor<T>(part.logits_shape);
    std::vector<double> dp(static_cast<std::size_t>(C));
    for (index_t n = 0; n < N; ++n)
        for (index_t s = 0; s < S; ++s) {
            const index_t y = part.targets[n * S + s];
            if (y == options.ignore_index) continue;
            const index_t g = options.per_image ? part.first_image + n : 0;
            double pdp = 0;
            for (index_t c = 0; c < C; ++c) {
                const index_t k = g * C + c;
                dp[c] = -weight(c) / norm * (c == y ? ddice_dp_pos[k] : ddice_dp_neg[k]);
                pdp += part.prob.data()[(n * C + c) * S + s] * dp[c];
            }
            for (index_t c = 0; c < C; ++c) {
                const double pc = part.prob.data()[(n * C + c) * S + s];
                r.grad.data()[(n * C + c) * S + s] = static_cast<T>(pc * (dp[c] - pdp));
            }
        }
    return r;
}

template <class T>
SegmentationLoss<T> soft_dice(ConstView<T> logits, ConstView<index_t> targets, const DiceOptions& options = {}) {
    return dice_from_sums<T>(dice_sums<T>(logits, targets, options), options);
}

}  // namespace gcl::loss
