#pragma once
// The supervised contrastive loss (SupCon, Khosla et al. 2020, the L_out form) of one set of A
// embeddings under K meta labels at once; the image-wise and the pixel-wise losses both call it.
//
// With u_i the (L2-normalised) embeddings, s_ia = u_i . u_a, tau the temperature and P_m(i) the
// positives of anchor i under label m:
//   p_ia   = exp(s_ia / tau) / sum_{b != i} exp(s_ib / tau)                (a != i)
//   l_m(i) = -1/|P_m(i)| sum_{a in P_m(i)} log p_ia
//   L_m    = mean of l_m(i) over the anchors with |P_m(i)| > 0 (0 when there are none)
// The denominators do not depend on the label, so the softmax is computed once for all K labels.
// The gradient with respect to a similarity has a closed form (no extra backward pass):
//   dL_m/ds_ia = (p_ia - [a in P_m(i)] / |P_m(i)|) / (tau n_m)              (n_m: anchors counted)
// and dL_m/dU = (G_m + G_m^T) U for the A x A matrix G_m of those values.
//
// Built on ops: ops::gemm for the similarities and the embedding gradients, the strict L2
// normalisation, and the backend's Contrast family for the per-pair passes; the positives are
// data (Positives<D>: keys or masks, contract.hpp), so the loss instantiates on any device.
//
// Memory: the A x A similarity/softmax matrix, one A x A scratch per label (kept when the pair
// gradients are requested), and K x A x D gradients: bounded by the number of embeddings.
#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include "gcl/backend/cpu/contrast.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/loss/contract.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/finite.hpp"
#include "gcl/ops/gemm.hpp"
#include "gcl/ops/normalize.hpp"

namespace gcl::loss {

namespace detail {

template <class T, class D>
void check_contrast_input(std::string_view op, ConstView<T, D> z, const ContrastOptions& options) {
    check_rank(op, z.shape(), 2, "embeddings");
    check(z.dim(0) >= 2, op, "contrast needs at least two embeddings, got shape ", z.shape());
    check(z.dim(1) >= 1, op, "embeddings must have at least one dimension, got shape ", z.shape());
    check(options.temperature > 0 && std::isfinite(options.temperature), op, "temperature must be positive, got ",
          options.temperature);
}

// dL/dU = (G + G^T) U for the given pair gradients G (A x A), then through the normalisation
// when there was one.
template <class T, class D>
void pair_grads_to_embeddings(const ContrastResult<T, D>& r, ConstView<T, D> pair_grad, TensorView<T, D> out) {
    const ConstView<T, D> U = r.embeddings.cview();
    ops::gemm(pair_grad, U, out);
    ops::gemm(pair_grad, U, out, {.transpose_a = true, .beta = 1});
    if (r.normalized) ops::l2_normalize_strict_backward(ConstView<T, D>(out), U, r.norms.cview(), out, 1);
}

}  // namespace detail

// z: A x D embeddings; positives: the positives of K meta labels over the A embeddings.
template <class T, class D = cpu>
ContrastResult<T, D> multi_label_contrast(std::string_view op, Input<T, D> z, const Positives<D>& positives,
                                          const ContrastOptions& options) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "contrastive losses work on float or double");
    detail::check_contrast_input<T, D>(op, z, options);
    detail::check_positives(op, positives, z.dim(0));
    const index_t A = z.dim(0), Dim = z.dim(1), K = positives.labels();
    const double tau = options.temperature;
    const ConstView<index_t, D> keys = positives.keys.cview();
    const ConstView<std::uint8_t, D> masks = positives.masks.cview();

    ContrastResult<T, D> r;
    r.embeddings = Tensor<T, D>(Shape{A, Dim});
    r.normalized = options.normalize;
    if (options.normalize) {
        r.norms = Tensor<T, D>(Shape{A});
        if (z.is_contiguous()) {
            ops::l2_normalize_strict_forward(z, r.embeddings.view(), r.norms.view(), 1, op, "embedding");
        } else {
            ops::copy(z, r.embeddings.view());
            ops::l2_normalize_strict_forward(r.embeddings.cview(), r.embeddings.view(), r.norms.view(), 1, op,
                                             "embedding");
        }
    } else {
        ops::copy(z, r.embeddings.view());
        const index_t bad = ops::first_nonfinite(r.embeddings);
        check(bad < 0, op, "embedding ", bad / Dim, " holds a non-finite value at ", bad % Dim);
    }

    // prob(i, a) = p_ia (0 on the diagonal); log_norm[i] = log sum_{b != i} exp(s_ib / tau).
    Tensor<T, D> prob(Shape{A, A});
    ops::gemm(r.embeddings.cview(), r.embeddings.cview(), prob.view(), {.transpose_b = true});
    Tensor<T, D> sim(Shape{A, A});  // s_ia / tau, kept for the positive terms of the loss
    Tensor<double, D> log_norm(Shape{A});
    // Without normalisation, large embeddings can overflow the similarities (or s / tau): an
    // error naming the pair, never a NaN loss.
    const index_t overflow = backend::Contrast<D>::off_diagonal_softmax(prob.view(), sim.view(), log_norm.view(), tau);
    if (overflow >= 0)
        fail(op, "the similarity of embeddings ", overflow / A, " and ", overflow % A, " divided by the temperature ",
             tau, " is not finite in the element type; normalise the embeddings (ContrastOptions::normalize) "
             "or scale them down");

    r.losses = Tensor<T, D>(Shape{K});
    r.grads = Tensor<T, D>(Shape{K, A, Dim});
    r.grad_sum = Tensor<T, D>(Shape{A, Dim});
    ops::fill(r.grad_sum.view(), T(0));
    r.anchors_without_positives.assign(static_cast<std::size_t>(K), 0);
    if (options.keep_pair_grads) r.pair_grads = Tensor<T, D>(Shape{K, A, A});
    Tensor<T, D> scratch(options.keep_pair_grads ? Shape{0} : Shape{A, A});
    Tensor<index_t, D> n_pos(Shape{A});
    Tensor<double, D> anchor_loss(Shape{A});

    for (index_t m = 0; m < K; ++m) {
        const backend::ContrastLabelLoss label = backend::Contrast<D>::label_loss(
            sim.cview(), log_norm.cview(), keys, masks, m, n_pos.view(), anchor_loss.view(), r.losses.view());
        r.anchors_without_positives[static_cast<std::size_t>(m)] = A - label.counted;
        r.total += label.mean;

        const TensorView<T, D> g = options.keep_pair_grads ? r.pair_grads.view().select(0, m) : scratch.view();
        const double scale = label.counted > 0 ? 1.0 / (tau * static_cast<double>(label.counted)) : 0.0;
        backend::Contrast<D>::pair_grads(prob.cview(), keys, masks, m, n_pos.cview(), scale, g);
        const TensorView<T, D> gm = r.grads.view().select(0, m);
        detail::pair_grads_to_embeddings(r, ConstView<T, D>(g), gm);
        ops::add(r.grad_sum.cview(), ConstView<T, D>(gm), r.grad_sum.view());
    }
    return r;
}

// dL/d(input embeddings) [K x A x D] for modified pair gradients (K x A x A, e.g. the kept pair
// gradients of a forward pass masked by GradFilter), through the same embeddings and normalisation.
template <class T, class D = cpu>
Tensor<T, D> contrast_backward(const ContrastResult<T, D>& forward, Input<T, D> pair_grads) {
    const index_t A = forward.embeddings.dim(0), Dim = forward.embeddings.dim(1);
    check(pair_grads.rank() == 3 && pair_grads.dim(1) == A && pair_grads.dim(2) == A, "contrast_backward",
          "pair_grads must be K x ", A, " x ", A, ", got ", pair_grads.shape());
    check(pair_grads.is_contiguous(), "contrast_backward", "pair_grads must be contiguous");
    const index_t K = pair_grads.dim(0);
    Tensor<T, D> grads(Shape{K, A, Dim});
    for (index_t m = 0; m < K; ++m)
        detail::pair_grads_to_embeddings(forward, pair_grads.select(0, m), grads.view().select(0, m));
    return grads;
}

}  // namespace gcl::loss
