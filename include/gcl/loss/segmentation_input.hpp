#pragma once
// Shared input checks and result type of the segmentation losses (cross-entropy, soft Dice):
// logits N x C x (spatial dims...) and integer targets N x (spatial dims...), row-major.
#include <cmath>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::loss {

template <class T>
struct SegmentationLoss {
    double loss = 0;
    Tensor<T> grad;        // dL/dlogits, shaped like the logits
    index_t counted = 0;   // pixels that took part (not ignored)
};

namespace detail {

struct SegmentationShape {
    index_t N, C, spatial;  // images, classes, pixels per image
};

template <class T>
SegmentationShape check_segmentation_input(std::string_view op, ConstView<T> logits, ConstView<index_t> targets,
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
    for (index_t i = 0; i < targets.numel(); ++i) {
        const index_t t = targets.data()[i];
        check(t == ignore_index || (t >= 0 && t < C), op, "target ", t, " at ", i, " is not a class in [0, ", C,
              ") nor the ignore index ", ignore_index);
    }
    for (index_t i = 0; i < logits.numel(); ++i)
        check(std::isfinite(logits.data()[i]), op, "logit ", i, " is ", logits.data()[i]);
    return {logits.dim(0), C, logits.numel() / (logits.dim(0) * C)};
}

// Softmax over the classes of pixel s of image n, in double, into p[0..C).
template <class T>
void pixel_softmax(const T* logits, index_t C, index_t spatial, index_t n, index_t s, double* p) {
    const T* base = logits + n * C * spatial + s;
    double mx = static_cast<double>(base[0]);
    for (index_t c = 1; c < C; ++c) mx = std::max(mx, static_cast<double>(base[c * spatial]));
    double sum = 0;
    for (index_t c = 0; c < C; ++c) {
        p[c] = std::exp(static_cast<double>(base[c * spatial]) - mx);
        sum += p[c];
    }
    for (index_t c = 0; c < C; ++c) p[c] /= sum;
}

}  // namespace detail
}  // namespace gcl::loss
