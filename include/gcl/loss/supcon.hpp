#pragma once
// Image-wise contrast under several meta labels: the supervised contrastive loss L_img^m of the
// N = 2B image embeddings (B images x 2 views) for each meta label m (multi_label_contrast.hpp).
//
//   gcl::loss::PositivePairs pairs(B);
//   pairs.add_labels(patient_ids.cview()).add_bins<float>(positions.cview(), 4);
//   auto r = gcl::loss::supcon<float>(z.cview() /* N x D */, pairs, {.temperature = 0.1, .normalize = true});
//   r.losses (K), r.grads (K x N x D, for representation-level mitigation), r.grad_sum (N x D)
#include "gcl/loss/multi_label_contrast.hpp"
#include "gcl/loss/positive_pairs.hpp"

namespace gcl::loss {

template <class T>
ContrastResult<T> supcon(ConstView<T> z, const PositivePairs& pairs, const ContrastOptions& options = {}) {
    check_rank("supcon", z.shape(), 2, "embeddings");
    check(pairs.embeddings() == z.dim(0), "supcon", "the positive pairs describe ", pairs.embeddings(),
          " embeddings but z has shape ", z.shape());
    check(pairs.labels() >= 1, "supcon", "no meta label was added to the positive pairs");
    return multi_label_contrast<T>(
        "supcon", z, pairs.labels(), [&](index_t m, index_t i, index_t a) { return pairs.positive(m, i, a); }, options);
}

}  // namespace gcl::loss
