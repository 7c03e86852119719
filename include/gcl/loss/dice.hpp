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
#include <type_traits>
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
template <class T, class D = cpu>
struct DicePartial {
    // [3, G, C]: I, Sp, St of every group of the global batch (G = 1, or its images with per_image;
    // a batch holding images [first_image, first_image + N) fills only their groups). On the host
    // whatever the device: processes sum these.
    std::vector<double> sums;
    index_t groups = 0, classes = 0, images = 0, spatial = 0, first_image = 0;
    Shape logits_shape;        // the gradient's shape
    Tensor<double, D> prob;    // [N, C, S] softmax of the logits (ignored pixels' are not used)
    Tensor<index_t, D> targets;  // [N, S]
    index_t counted = 0;
};

// Softmax and sums of logits [N, C, ...] against targets [N, ...]: images first_image.. of a
// global batch of total_images (defaults: the batch is the whole batch).
template <class T, class D = cpu>
DicePartial<T, D> dice_sums(std::type_identity_t<ConstView<T, D>> logits,
                            std::type_identity_t<ConstView<index_t, D>> targets, const DiceOptions& options = {},
                            index_t first_image = 0, index_t total_images = -1) {
    const detail::SegmentationShape shape = detail::check_segmentation_input<T, D>(
        "soft_dice", logits, targets, options.class_weights, options.ignore_index);
    const index_t N = shape.N, C = shape.C, S = shape.spatial;
    check(options.smooth >= 0 && std::isfinite(options.smooth), "soft_dice", "smooth must be >= 0, got ",
          options.smooth);
    double weight_sum = 0;
    for (double w : detail::class_weight_array(options.class_weights, C)) weight_sum += w;
    check(weight_sum > 0, "soft_dice", "the class weights must not all be zero");
    if (total_images < 0) total_images = N;
    check(first_image >= 0 && first_image + N <= total_images, "soft_dice", "images [", first_image, ", ",
          first_image + N, ") are not part of a global batch of ", total_images);

    DicePartial<T, D> part;
    part.groups = options.per_image ? total_images : 1;
    part.classes = C;
    part.images = N;
    part.spatial = S;
    part.first_image = first_image;
    part.logits_shape = logits.shape();
    part.sums.assign(static_cast<std::size_t>(3 * part.groups * C), 0.0);
    part.prob = detail::class_probabilities<T, D>(logits);
    part.prob.reshape(Shape{N, C, S});
    part.targets = Tensor<index_t, D>(Shape{N, S});
    ops::copy(detail::targets_as_pixels(targets, shape), part.targets.view());
    part.counted = backend::Segmentation<D>::dice_sums(part.prob.cview(), part.targets.cview(), options.ignore_index,
                                                       options.per_image, first_image, part.groups, part.sums.data());
    return part;
}

// The loss of the global batch and the gradient of this batch's logits, from part.sums holding
// the global batch's sums.
template <class T, class D = cpu>
SegmentationLoss<T, D> dice_from_sums(const DicePartial<T, D>& part, const DiceOptions& options = {}) {
    const index_t G = part.groups, C = part.classes;
    check(static_cast<index_t>(part.sums.size()) == 3 * G * C, "soft_dice", "the sums hold ", part.sums.size(),
          " values, not 3 x ", G, " x ", C);
    const std::vector<double> weights = detail::class_weight_array(options.class_weights, C);
    double weight_sum = 0;
    for (double w : weights) weight_sum += w;
    const double* inter = part.sums.data();
    const double* sum_p = inter + G * C;
    const double* sum_t = sum_p + G * C;

    // d dice / d p per group and class (small: on the host), then the gradient pass.
    std::vector<double> dice(static_cast<std::size_t>(G * C)), ddice_dp_pos(dice.size()), ddice_dp_neg(dice.size());
    double mean_dice = 0;
    for (index_t g = 0; g < G; ++g)
        for (index_t c = 0; c < C; ++c) {
            const index_t k = g * C + c;
            const double num = 2 * inter[k] + options.smooth, den = sum_p[k] + sum_t[k] + options.smooth;
            dice[k] = den > 0 ? num / den : 1.0;
            mean_dice += weights[static_cast<std::size_t>(c)] * dice[k];
            // d dice / d p_sc = (2 t_sc den - num) / den^2: with t = 1 and with t = 0.
            ddice_dp_pos[k] = den > 0 ? (2 * den - num) / (den * den) : 0.0;
            ddice_dp_neg[k] = den > 0 ? -num / (den * den) : 0.0;
        }
    const double norm = static_cast<double>(G) * weight_sum;
    SegmentationLoss<T, D> r;
    r.loss = 1.0 - mean_dice / norm;
    r.counted = part.counted;
    r.grad = Tensor<T, D>(part.logits_shape);
    backend::Segmentation<D>::dice_grad(part.prob.cview(), part.targets.cview(), options.ignore_index,
                                        options.per_image, part.first_image, weights.data(), norm,
                                        ddice_dp_pos.data(), ddice_dp_neg.data(),
                                        r.grad.view().reshape(part.prob.shape()));
    return r;
}

template <class T, class D = cpu>
SegmentationLoss<T, D> soft_dice(std::type_identity_t<ConstView<T, D>> logits,
                                 std::type_identity_t<ConstView<index_t, D>> targets, const DiceOptions& options = {}) {
    return dice_from_sums<T, D>(dice_sums<T, D>(logits, targets, options), options);
}

}  // namespace gcl::loss
