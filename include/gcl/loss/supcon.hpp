#pragma once
// Image-wise contrast under several meta labels: the supervised contrastive loss L_img^m of the
// N = 2B image embeddings (B images x 2 views) for each meta label m (multi_label_contrast.hpp).
//
//   gcl::loss::PositivePairs pairs(B);
//   pairs.add_labels(patient_ids.cview()).add_bins<float>(positions.cview(), 4);
//   auto r = gcl::loss::supcon<float>(z.cview() /* N x D */, pairs, {.temperature = 0.1, .normalize = true});
//   r.losses (K), r.grads (K x N x D, for representation-level mitigation), r.grad_sum (N x D)
//
// Every form runs on any device D, given as the second template argument (the cpu by default):
//   auto r = gcl::loss::supcon<float, D>(z, pairs, options);       // PositivePairs, moved to D
//   auto r = gcl::loss::supcon<float, D>(z, labels, options);      // labels [K x N] on D
//   auto r = gcl::loss::supcon<float, D>(z, positives, options);   // Positives<D>: keys or masks
#include "gcl/loss/multi_label_contrast.hpp"
#include "gcl/loss/positive_pairs.hpp"

namespace gcl::loss {

template <class T, class D = cpu>
ContrastResult<T, D> supcon(Input<T, D> z, const Positives<D>& positives, const ContrastOptions& options = {}) {
    check_rank("supcon", z.shape(), 2, "embeddings");
    return multi_label_contrast<T, D>("supcon", z, positives, options);
}

// The positives described on the host by `pairs`, moved to D.
template <class T, class D = cpu>
ContrastResult<T, D> supcon(Input<T, D> z, const PositivePairs& pairs, const ContrastOptions& options = {}) {
    check_rank("supcon", z.shape(), 2, "embeddings");
    check(pairs.embeddings() == z.dim(0), "supcon", "the positive pairs describe ", pairs.embeddings(),
          " embeddings but z has shape ", z.shape());
    check(pairs.labels() >= 1, "supcon", "no meta label was added to the positive pairs");
    return supcon<T, D>(z, positives_on<D>(pairs.positives()), options);
}

// The keys of meta labels given as an integer matrix [K x N], one value per embedding, in the
// SupCon layout (embedding i is a view of image i mod N/2, so both views of an image carry the
// same values; negative: unknown, positives of the image's other view only). Equivalent to
// PositivePairs(N / 2) with add_labels for each row.
inline Positives<cpu> supcon_label_positives(ConstView<index_t> labels) {
    check_rank("supcon", labels.shape(), 2, "labels (K x N)");
    const index_t K = labels.dim(0), N = labels.dim(1);
    check(N >= 2 && N % 2 == 0, "supcon", "the SupCon layout needs an even number of embeddings (two views), got ", N);
    const index_t B = N / 2;
    Positives<cpu> p;
    p.keys = Tensor<index_t>(Shape{K, N});
    for (index_t m = 0; m < K; ++m)
        for (index_t b = 0; b < B; ++b) {
            check(labels(m, b) == labels(m, b + B), "supcon", "label ", m, " differs between the two views of image ",
                  b, " (", labels(m, b), " vs ", labels(m, b + B), ")");
            const index_t key = labels(m, b) >= 0 ? labels(m, b) : -1 - b;
            p.keys(m, b) = p.keys(m, b + B) = key;
        }
    return p;
}

// Labels [K x N] on D: read on the host, where their keys are built, which then move to D.
template <class T, class D = cpu>
ContrastResult<T, D> supcon(Input<T, D> z, Input<index_t, D> labels, const ContrastOptions& options = {}) {
    check_rank("supcon", labels.shape(), 2, "labels (K x N)");
    check_rank("supcon", z.shape(), 2, "embeddings");
    check(labels.dim(1) == z.dim(0), "supcon", "labels of shape ", labels.shape(), " do not match embeddings of shape ",
          z.shape());
    const Tensor<index_t> host = ops::device_to_host(labels);
    return supcon<T, D>(z, positives_on<D>(supcon_label_positives(host.cview())), options);
}

}  // namespace gcl::loss
