#pragma once
// Shared input checks and class probabilities of the segmentation losses (cross-entropy, soft
// Dice): logits N x C x (spatial dims...) and integer targets N x (spatial dims...), row-major.
// Their result type, SegmentationLoss, is part of the loss contract (contract.hpp).
#include <cmath>
#include <type_traits>
#include <vector>

#include "gcl/backend/cpu/segmentation.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/loss/contract.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/finite.hpp"
#include "gcl/ops/softmax.hpp"

namespace gcl::loss {

namespace detail {

struct SegmentationShape {
    index_t N, C, spatial;  // images, classes, pixels per image
};

template <class T, class D>
SegmentationShape check_segmentation_input(std::string_view op, ConstView<T, D> logits, ConstView<index_t, D> targets,
                                           const std::vector<double>& class_weights, index_t ignore_index) {
    check(logits.rank() >= 2, op, "logits must be N x C x ..., got shape ", logits.shape());
    check(logits.is_contiguous() && targets.is_contiguous(), op, "logits and targets must be contiguous");
    check(logits.numel() > 0, op, "empty batch: logits of shape ", logits.shape());
    check(targets.rank() == logits.rank() - 1, op, "targets must be N x ... without the class dimension; logits ",
          logits.shape(), ", targets ", targets.shape());
    check(targets.dim(0) == logits.dim(0), op, "batch sizes differ: logits ", logits.shape(), ", targets ",
          targets.shape());
    for (int d = 1; d < targets.rank(); ++d)
        check(targets.dim(d) == logits.dim(d + 1), op, "spatial sizes differ: logits ", logits.shape(), ", targets ",
              targets.shape());
    const index_t C = logits.dim(1);
    check(class_weights.empty() || static_cast<index_t>(class_weights.size()) == C, op, "class_weights must hold ",
          C, " values, got ", class_weights.size());
    for (double w : class_weights) check(std::isfinite(w) && w >= 0, op, "class weights must be finite and >= 0, got ", w);
    const backend::BadTarget bad = backend::Segmentation<D>::first_bad_target(targets, C, ignore_index);
    check(bad.position < 0, op, "target ", bad.value, " at ", bad.position, " is not a class in [0, ", C,
          ") nor the ignore index ", ignore_index);
    ops::check_finite(op, logits, "logits");
    return {logits.dim(0), C, logits.numel() / (logits.dim(0) * C)};
}

// The C class weights as an array (all 1 when none are given).
inline std::vector<double> class_weight_array(const std::vector<double>& class_weights, index_t C) {
    return class_weights.empty() ? std::vector<double>(static_cast<std::size_t>(C), 1.0) : class_weights;
}

// A contiguous [N, C, ...] view as [N, C, S] and its [N, ...] targets as [N, S].
template <class T, class D>
TensorView<T, D> as_pixels(TensorView<T, D> v, const SegmentationShape& s) {
    return v.reshape(Shape{s.N, s.C, s.spatial});
}
template <class D>
ConstView<index_t, D> targets_as_pixels(ConstView<index_t, D> targets, const SegmentationShape& s) {
    return targets.reshape(Shape{s.N, s.spatial});
}

// The softmax over the classes (dimension 1) of every pixel, in double whatever T is: the
// losses sum these probabilities over whole batches.
template <class T, class D>
Tensor<double, D> class_probabilities(ConstView<T, D> logits) {
    Tensor<double, D> prob(logits.shape());
    if constexpr (std::is_same_v<T, double>) {
        ops::softmax_forward(logits, prob.view(), 1);
    } else {
        ops::convert(logits, prob.view());
        ops::softmax_forward(prob.cview(), prob.view(), 1);
    }
    return prob;
}

}  // namespace detail
}  // namespace gcl::loss
