#pragma once
// The per-row and per-pair rules of the contrastive losses' passes (backend::Contrast), shared by
// the CPU loops and the CUDA kernels and replayed on the host by the tests. The A x A matrices
// are row-major: pair e = i * A + a is anchor i and embedding a. Sums run in double, in index
// order per anchor; a label's loss sums its anchors in anchor order.
#include <cmath>
#include <cstdint>

#include "gcl/backend/detail/reduce_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/config.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::backend::detail {

// Label m's positives read from keys [K, A]: a is a positive of i when their keys are equal.
struct KeyPositives {
    const index_t* keys;  // label m's row
    GCL_HOST_DEVICE bool operator()(index_t i, index_t a) const { return keys[i] == keys[a]; }
};

// Label m's positives read from masks [K, A, A]: a is a positive of i when mask(i, a) != 0.
struct MaskPositives {
    const std::uint8_t* mask;  // label m's A x A block
    index_t A;
    GCL_HOST_DEVICE bool operator()(index_t i, index_t a) const { return mask[i * A + a] != 0; }
};

// Calls f with label m's positives rule, from keys (by_keys) or masks.
template <class F>
void with_positives(const index_t* keys, const std::uint8_t* masks, bool by_keys, index_t m, index_t A, F&& f) {
    if (by_keys)
        f(KeyPositives{keys + m * A});
    else
        f(MaskPositives{masks + m * A * A, A});
}

// Whether a similarity s, or s / tau in T, is not finite: the softmax refuses such input.
template <class T>
GCL_HOST_DEVICE inline bool similarity_overflows(T s, double tau) {
    return !finite_value(s) || !finite_value(static_cast<T>(static_cast<double>(s) / tau));
}

// Row i of the off-diagonal softmax: on entry prob_row holds the similarities s_i*; on return
// logits_row = s / tau (in T) and prob_row = the softmax over a != i of the logits, 0 at a = i.
// Returns log sum_{b != i} exp(logit_ib).
template <class T>
GCL_HOST_DEVICE inline double contrast_softmax_row(T* prob_row, T* logits_row, index_t i, index_t A, double tau) {
    double top = -INFINITY;
    for (index_t a = 0; a < A; ++a) {
        logits_row[a] = static_cast<T>(static_cast<double>(prob_row[a]) / tau);
        const double v = static_cast<double>(logits_row[a]);
        if (a != i) top = top < v ? v : top;
    }
    double z_sum = 0;
    for (index_t a = 0; a < A; ++a) {
        const double e = a == i ? 0.0 : exp(static_cast<double>(logits_row[a]) - top);
        prob_row[a] = static_cast<T>(e);
        z_sum += e;
    }
    for (index_t a = 0; a < A; ++a) prob_row[a] = static_cast<T>(static_cast<double>(prob_row[a]) / z_sum);
    return top + log(z_sum);
}

// Anchor i's term of a label's loss: n_pos = |P(i)| and, when it is not zero,
// log_norm_i - mean of the positives' logits (else 0).
template <class T, class Positives>
GCL_HOST_DEVICE inline double contrast_anchor_loss(const T* logits_row, double log_norm, const Positives& positive,
                                                   index_t i, index_t A, index_t& n_pos) {
    index_t np = 0;
    double pos_logits = 0;
    for (index_t a = 0; a < A; ++a)
        if (a != i && positive(i, a)) {
            ++np;
            pos_logits += static_cast<double>(logits_row[a]);
        }
    n_pos = np;
    return np > 0 ? log_norm - pos_logits / static_cast<double>(np) : 0.0;
}

// A label's loss from its A anchor terms: their mean over the anchors with positives, summed in
// anchor order.
GCL_HOST_DEVICE inline ContrastLabelLoss contrast_label_total(const index_t* n_pos, const double* anchor_loss,
                                                              index_t A) {
    double loss_sum = 0;
    ContrastLabelLoss r;
    for (index_t i = 0; i < A; ++i)
        if (n_pos[i] > 0) {
            loss_sum += anchor_loss[i];
            ++r.counted;
        }
    r.mean = r.counted > 0 ? loss_sum / static_cast<double>(r.counted) : 0.0;
    return r;
}

// The loss value a label stores in its T slot.
template <class T>
GCL_HOST_DEVICE inline T contrast_label_value(const ContrastLabelLoss& r) {
    return r.counted > 0 ? static_cast<T>(r.mean) : T(0);
}

// Pair e = (i, a)'s gradient: (p_ia - [a in P(i)] / |P(i)|) * scale for a != i; 0 on the
// diagonal and in the rows of anchors without positives.
template <class T, class Positives>
GCL_HOST_DEVICE inline T pair_grad_item(const T* prob, const index_t* n_pos, const Positives& positive, index_t A,
                                        double scale, index_t e) {
    const index_t i = e / A, a = e % A;
    const index_t np = n_pos[i];
    if (np == 0 || a == i) return T(0);
    const double target = positive(i, a) ? 1.0 / static_cast<double>(np) : 0.0;
    return static_cast<T>((static_cast<double>(prob[e]) - target) * scale);
}

// |sum_{m in [first, last)} g[m, e]| for pair e of n = A * A pairs, summed in label order.
template <class T>
GCL_HOST_DEVICE inline T pair_grad_magnitude_item(const T* pair_grads, index_t n, index_t first, index_t last,
                                                  index_t e) {
    double s = 0;
    for (index_t m = first; m < last; ++m) s += static_cast<double>(pair_grads[m * n + e]);
    return static_cast<T>(fabs(s));
}

// Pair e of the K labels' gradients set to zero where keep[e] is zero.
template <class T>
GCL_HOST_DEVICE inline void mask_pair_grads_item(const std::uint8_t* keep, T* pair_grads, index_t n, index_t K,
                                                 index_t e) {
    if (keep[e]) return;
    for (index_t m = 0; m < K; ++m) pair_grads[m * n + e] = T(0);
}

// Whether a sampled location lies outside a map of hw pixels.
GCL_HOST_DEVICE inline bool location_outside(index_t location, index_t hw) {
    return location < 0 || location >= hw;
}

// Element e of the [N S, C] sampled pixel rows is element (n, c, locations[s]) of the
// [N, C, H W] map, with e = (n S + s) C + c: that element's flat index.
GCL_HOST_DEVICE inline index_t sampled_pixel_index(const index_t* locations, index_t S, index_t C, index_t hw,
                                                   index_t e) {
    const index_t n = e / (S * C), s = (e / C) % S, c = e % C;
    return (n * C + c) * hw + locations[s];
}

// The scatter of the sampled pixels' gradients [N S, C] into plane nc = n C + c of the
// [N, C, H W] map: out[n, c, locations[s]] += grads[n S + s, c] for s in order, so a location
// sampled twice receives both gradients, in the order of the samples.
template <class T>
GCL_HOST_DEVICE inline void scatter_pixel_plane(const T* grads, const index_t* locations, T* out, index_t S, index_t C,
                                                index_t hw, index_t nc) {
    const index_t n = nc / C, c = nc % C;
    T* plane = out + nc * hw;
    for (index_t s = 0; s < S; ++s) plane[locations[s]] += grads[(n * S + s) * C + c];
}

}  // namespace gcl::backend::detail
