#pragma once
// Soft Dice loss on the softmax of the logits, with class weights and an ignore index.
// For a group g of pixels (the whole batch, or each image) and a class c, over pixels not ignored:
//   I = sum p_c t_c,  Sp = sum p_c,  St = sum t_c,  dice_gc = (2 I + smooth) / (Sp + St + smooth)
//   L = 1 - sum_{g,c} w_c dice_gc / (G sum_c w_c)
// (t: one-hot targets; a class weight of 0 leaves a class out, e.g. the background). The gradient
// goes through the softmax to the logits; ignored pixels get none.
#include <vector>

#include "gcl/loss/segmentation_input.hpp"

namespace gcl::loss {

struct DiceOptions {
    std::vector<double> class_weights;  // C values, empty: all 1
    index_t ignore_index = -100;
    double smooth = 1e-5;
    bool per_image = false;  // false: one Dice per class over the batch; true: per image, averaged
};

template <class T>
SegmentationLoss<T> soft_dice(ConstView<T> logits, ConstView<index_t> targets, const DiceOptions& options = {}) {
    const auto [N, C, S] = detail::check_segmentation_input<T>("soft_dice", logits, targets, options.class_weights,
                                                              options.ignore_index);
    check(options.smooth >= 0 && std::isfinite(options.smooth), "soft_dice", "smooth must be >= 0, got ",
          options.smooth);
    const auto weight = [&](index_t c) { return options.class_weights.empty() ? 1.0 : options.class_weights[c]; };
    double weight_sum = 0;
    for (index_t c = 0; c < C; ++c) weight_sum += weight(c);
    check(weight_sum > 0, "soft_dice", "the class weights must not all be zero");
    const index_t G = options.per_image ? N : 1;

    // Softmax of every counted pixel (double), and the sums per group and class.
    std::vector<double> prob(static_cast<std::size_t>(N * C * S), 0.0);
    std::vector<double> inter(static_cast<std::size_t>(G * C), 0.0), sum_p(inter.size(), 0.0), sum_t(inter.size(), 0.0);
    std::vector<double> p(static_cast<std::size_t>(C));
    SegmentationLoss<T> r;
    for (index_t n = 0; n < N; ++n)
        for (index_t s = 0; s < S; ++s) {
            const index_t y = targets.data()[n * S + s];
            if (y == options.ignore_index) continue;
            ++r.counted;
            detail::pixel_softmax(logits.data(), C, S, n, s, p.data());
            const index_t g = options.per_image ? n : 0;
            for (index_t c = 0; c < C; ++c) {
                prob[(n * C + c) * S + s] = p[c];
                sum_p[g * C + c] += p[c];
            }
            inter[g * C + y] += p[y];
            sum_t[g * C + y] += 1;
        }

    // dL/dp for counted pixels, then through the softmax.
    std::vector<double> dice(inter.size()), ddice_dp_pos(inter.size()), ddice_dp_neg(inter.size());
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
    r.loss = 1.0 - mean_dice / norm;
    r.grad = Tensor<T>(logits.shape());
    std::vector<double> dp(static_cast<std::size_t>(C));
    for (index_t n = 0; n < N; ++n)
        for (index_t s = 0; s < S; ++s) {
            const index_t y = targets.data()[n * S + s];
            if (y == options.ignore_index) continue;
            const index_t g = options.per_image ? n : 0;
            double pdp = 0;
            for (index_t c = 0; c < C; ++c) {
                const index_t k = g * C + c;
                dp[c] = -weight(c) / norm * (c == y ? ddice_dp_pos[k] : ddice_dp_neg[k]);
                pdp += prob[(n * C + c) * S + s] * dp[c];
            }
            for (index_t c = 0; c < C; ++c) {
                const double pc = prob[(n * C + c) * S + s];
                r.grad.data()[(n * C + c) * S + s] = static_cast<T>(pc * (dp[c] - pdp));
            }
        }
    return r;
}

}  // namespace gcl::loss
