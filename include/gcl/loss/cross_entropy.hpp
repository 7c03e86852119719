#pragma once
// Softmax cross-entropy for segmentation, with class weights and an ignore index, as
// torch.nn.functional.cross_entropy(logits, targets, weight, ignore_index) with mean reduction:
//   L = sum_i w_{y_i} (-log softmax(x_i)_{y_i}) / sum_i w_{y_i}      over pixels i not ignored
//   dL/dx_ic = w_{y_i} (softmax(x_i)_c - [c = y_i]) / sum_i w_{y_i}
// A batch whose pixels are all ignored (or weigh zero) gives L = 0 and a zero gradient, with
// counted = 0 in the result, never a NaN.
#include <array>
#include <utility>
#include <vector>

#include "gcl/loss/segmentation_input.hpp"

namespace gcl::loss {

struct CrossEntropyOptions {
    std::vector<double> class_weights;  // C values, empty: all 1
    index_t ignore_index = -100;
};

// The pieces of a batch split over several processes (soft_dice's dice_sums / dice_from_sums
// have the same shape): each process's weighted loss and weight sums and its unnormalised
// gradient w_{y_i} (softmax(x_i) - onehot(y_i)); with sums summed over the processes,
// cross_entropy_from_sums gives the global batch's loss and this batch's share of its gradient.
template <class T>
struct CrossEntropyPartial {
    std::array<double, 2> sums{};  // sum_i w_{y_i} (-log p_{y_i}), sum_i w_{y_i}
    Tensor<T> grad;                // w_{y_i} (softmax(x_i)_c - [c = y_i]), shaped like the logits
    index_t counted = 0;
};

// logits: N x C x ... (any spatial rank, or none); targets: N x ... (int64 class indices).
template <class T>
CrossEntropyPartial<T> cross_entropy_sums(ConstView<T> logits, ConstView<index_t> targets,
                                          const CrossEntropyOptions& options = {}) {
    const auto [N, C, S] = detail::check_segmentation_input<T>("softmax_cross_entropy", logits, targets,
                                                              options.class_weights, options.ignore_index);
    const auto weight = [&](index_t c) { return options.class_weights.empty() ? 1.0 : options.class_weights[c]; };
    CrossEntropyPartial<T> r;
    r.grad = Tensor<T>(logits.shape());
    double total_weight = 0, loss = 0;
    const Tensor<double> prob = detail::class_probabilities<T, cpu>(logits);
    for (index_t n = 0; n < N; ++n)
        for (index_t s = 0; s < S; ++s) {
            const index_t y = targets.data()[n * S + s];
            if (y == options.ignore_index) continue;
            ++r.counted;
            const double w = weight(y);
            total_weight += w;
            const double* p = prob.data() + n * C * S + s;
            loss -= w * std::log(std::max(p[y * S], 1e-300));
            T* g = r.grad.data() + n * C * S + s;
            for (index_t c = 0; c < C; ++c) g[c * S] = static_cast<T>(w * (p[c * S] - (c == y ? 1.0 : 0.0)));
        }
    r.sums = {loss, total_weight};
    return r;
}

// The loss from part.sums (the global batch's), and the gradient normalised by its weight.
template <class T>
SegmentationLoss<T> cross_entropy_from_sums(CrossEntropyPartial<T> part) {
    SegmentationLoss<T> r;
    r.counted = part.counted;
    r.grad = std::move(part.grad);
    const double total_weight = part.sums[1];
    if (total_weight <= 0) {
        r.grad.fill(T(0));
        return r;
    }
    r.loss = part.sums[0] / total_weight;
    for (index_t i = 0; i < r.grad.numel(); ++i)
        r.grad.data()[i] = static_cast<T>(static_cast<double>(r.grad.data()[i]) / total_weight);
    return r;
}

template <class T>
SegmentationLoss<T> softmax_cross_entropy(ConstView<T> logits, ConstView<index_t> targets,
                                          const CrossEntropyOptions& options = {}) {
    return cross_entropy_from_sums<T>(cross_entropy_sums<T>(logits, targets, options));
}

}  // namespace gcl::loss
