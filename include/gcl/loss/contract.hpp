#pragma once
// The loss contract: what gcl's losses take and return, on any device D.
//
// Contrastive losses (supcon, pixel_contrast, both through multi_label_contrast) take A
// embeddings [A, D] and the positives of K meta labels as data (Positives<D>), and return a
// ContrastResult<T, D>:
//   losses      [K]          L_m, one per meta label
//   total                    sum_m L_m (host double)
//   grads       [K, A, D]    dL_m / d(input embeddings): the per-label gradients surgery mitigates
//   grad_sum    [A, D]       sum_m grads[m]
//   pair_grads  [K, A, A]    dL_m / ds_ia for the similarities s_ia = u_i . u_a (when kept): the
//                            closed-form pair gradients GradFilter ranks; contrast_backward turns
//                            (filtered) pair gradients back into embedding gradients
// The segmentation losses (softmax_cross_entropy, soft_dice) return a SegmentationLoss<T, D>:
// one loss value and dL/dlogits shaped like the logits.
//
// Positives are tensors, never host callbacks, so a loss instantiates on any device. Under label
// m, embedding a is a positive of anchor i (a != i) when either
//   keys [K, A] (int64) are given:   keys[m, i] == keys[m, a]   (labels, bins: equivalence classes)
//   masks [K, A, A] (uint8) instead:  masks[m, i, a] != 0       (thresholds, user masks: any relation)
// PositivePairs (positive_pairs.hpp) builds either from image-level labels, bins, thresholds and
// masks; supcon's [K, N] label overload builds the keys directly.
#include <cstdint>
#include <type_traits>
#include <vector>

#include "gcl/core/device.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::loss {

// An argument that takes its device (and element type) from another argument, so that a Tensor
// or a TensorView binds to it as to ops' inputs.
template <class T, class D>
using Input = std::type_identity_t<ConstView<T, D>>;

struct ContrastOptions {
    double temperature = 0.1;
    bool normalize = false;        // L2-normalise the embeddings inside the loss (strict mode) and chain its gradient
    bool keep_pair_grads = false;  // return dL_m/ds for every pair (K x A x A)
};

// The positives of K meta labels over A embeddings: exactly one of keys and masks is non-empty.
template <class D = cpu>
struct Positives {
    Tensor<index_t, D> keys;        // [K, A]: positives share a key
    Tensor<std::uint8_t, D> masks;  // [K, A, A]: nonzero = positive (the diagonal is ignored)

    bool by_keys() const { return keys.rank() == 2; }
    index_t labels() const { return by_keys() ? keys.dim(0) : masks.dim(0); }
    index_t embeddings() const { return by_keys() ? keys.dim(1) : masks.dim(1); }
};

template <class T, class D = cpu>
struct ContrastResult {
    Tensor<T, D> losses;      // [K] L_m
    double total = 0;         // sum_m L_m
    Tensor<T, D> grads;       // [K x A x D] dL_m / d(input embeddings)
    Tensor<T, D> grad_sum;    // [A x D] sum_m of grads
    Tensor<T, D> pair_grads;  // [K x A x A] dL_m/ds_ia, s_ia = u_i . u_a (only with keep_pair_grads)
    std::vector<index_t> anchors_without_positives;  // [K] anchors that contributed nothing
    Tensor<T, D> embeddings;  // [A x D] the u the similarities were computed from
    bool normalized = false;  // whether the loss normalised z (then norms holds ||z_i||)
    Tensor<T, D> norms;       // [A] ||z_i|| when normalized
};

template <class T, class D = cpu>
struct SegmentationLoss {
    double loss = 0;
    Tensor<T, D> grad;    // dL/dlogits, shaped like the logits
    index_t counted = 0;  // pixels that took part (not ignored)
};

namespace detail {
// The checks every positives argument gets: shapes against K labels (or any, K < 0) and A embeddings.
template <class D>
void check_positives(std::string_view op, const Positives<D>& positives, index_t embeddings) {
    const bool keys = positives.keys.rank() == 2, masks = positives.masks.rank() == 3;
    check(keys != masks, op, "positives must hold either keys [K, A] or masks [K, A, A], got keys of shape ",
          positives.keys.shape(), " and masks of shape ", positives.masks.shape());
    check(positives.labels() >= 1, op, "at least one meta label is needed");
    check(positives.embeddings() == embeddings && (keys || positives.masks.dim(2) == embeddings), op,
          "the positives describe ", keys ? positives.keys.shape() : positives.masks.shape(), " but there are ",
          embeddings, " embeddings");
}
}  // namespace detail

}  // namespace gcl::loss
