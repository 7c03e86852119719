#pragma once
// Softmax cross-entropy for segmentation, with class weights and an ignore index, as
// torch.nn.functional.cross_entropy(logits, targets, weight, ignore_index) with mean reduction:
//   L = sum_i w_{y_i} (-log softmax(x_i)_{y_i}) / sum_i w_{y_i}      over pixels i not ignored
//   dL/dx_ic = w_{y_i} (softmax(x_i)_c - [c = y_i]) / sum_i w_{y_i}
// A batch whose pixels are all ignored (or weigh zero) gives L = 0 and a zero gradient, with
// counted = 0 in the result, never a NaN.
#include <array>
#include <type_traits>
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
template <class T, class D = cpu>
struct CrossEntropyPartial {
    std::array<double, 2> sums{};  // sum_i w_{y_i} (-log p_{y_i}), sum_i w_{y_i}
    Tensor<T, D> grad;             // w_{y_i} (softmax(x_i)_c - [c = y_i]), shaped like the logits
    index_t counted = 0;
};

// logits: N x C x ... (any spatial rank, or none); targets: N x ... (int64 class indices).
template <class T, class D = cpu>
CrossEntropyPartial<T, D> cross_entropy_sums(std::type_identity_t<ConstView<T, D>> logits,
                                             std::type_identity_t<ConstView<index_t, D>> targets,
                                             const CrossEntropyOptions& options = {}) {
    const detail::SegmentationShape shape = detail::check_segmentation_input<T, D>(
        "softmax_cross_entropy", logits, targets, options.class_weights, options.ignore_index);
    const std::vector<double> weights = detail::class_weight_array(options.class_weights, shape.C);
    CrossEntropyPartial<T, D> r;
    r.grad = Tensor<T, D>(logits.shape());
    const Tensor<double, D> prob = detail::class_probabilities<T, D>(logits);
    const backend::CrossEntropySums sums = backend::Segmentation<D>::cross_entropy(
        detail::as_pixels(prob.cview(), shape), detail::targets_as_pixels(targets, shape), weights.data(),
        options.ignore_index, detail::as_pixels(r.grad.view(), shape));
    r.counted = sums.counted;
    r.sums = {sums.weighted_loss, sums.weight};
    return r;
}

// The loss from part.sums (the global batch's), and the gradient normalised by its weight.
template <class T, class D = cpu>
SegmentationLoss<T, D> cross_entropy_from_sums(CrossEntropyPartial<T, D> part) {
    SegmentationLoss<T, D> r;
    r.counted = part.counted;
    r.grad = std::move(part.grad);
    const double total_weight = part.sums[1];
    if (total_weight <= 0) {
        ops::fill(r.grad.view(), T(0));
        return r;
    }
    r.loss = part.sums[0] / total_weight;
    backend::Segmentation<D>::divide(r.grad.view(), total_weight);
    return r;
}

template <class T, class D = cpu>
SegmentationLoss<T, D> softmax_cross_entropy(std::type_identity_t<ConstView<T, D>> logits,
                                             std::type_identity_t<ConstView<index_t, D>> targets,
                                             const CrossEntropyOptions& options = {}) {
    return cross_entropy_from_sums<T, D>(cross_entropy_sums<T, D>(logits, targets, options));
}

}  // namespace gcl::loss
