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
// and dL_m/dU = (G_m + G_m^T) U for the A x A matrix G_m of those values; GEMMs go through Eigen.
//
// Memory: the A x A similarity/softmax matrix, one A x A scratch per label (kept when the pair
// gradients are requested), and K x A x D gradients: bounded by the number of embeddings.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gcl/core/eigen.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/ops/normalize.hpp"

namespace gcl::loss {

struct ContrastOptions {
    double temperature = 0.1;
    bool normalize = false;         // L2-normalise the embeddings inside the loss (and chain its gradient)
    bool keep_pair_grads = false;   // return dL_m/ds for every pair (K x A x A)
};

template <class T>
struct ContrastResult {
    Tensor<T> losses;      // [K] L_m
    double total = 0;      // sum_m L_m
    Tensor<T> grads;       // [K x A x D] dL_m / d(input embeddings)
    Tensor<T> grad_sum;    // [A x D] sum_m of grads
    Tensor<T> pair_grads;  // [K x A x A] dL_m/ds_ia, s_ia = u_i . u_a (only with keep_pair_grads)
    std::vector<index_t> anchors_without_positives;  // [K] anchors that contributed nothing
    Tensor<T> embeddings;  // [A x D] the u the similarities were computed from
    bool normalized = false;  // whether the loss normalised z (then norms holds ||z_i||)
    Tensor<T> norms;          // [A] ||z_i|| when normalized
};

namespace detail {

template <class T>
void check_contrast_input(std::string_view op, ConstView<T> z, index_t K, const ContrastOptions& options) {
    check_rank(op, z.shape(), 2, "embeddings");
    check(z.dim(0) >= 2, op, "contrast needs at least two embeddings, got shape ", z.shape());
    check(z.dim(1) >= 1, op, "embeddings must have at least one dimension, got shape ", z.shape());
    check(K >= 1, op, "at least one meta label is needed");
    check(options.temperature > 0 && std::isfinite(options.temperature), op, "temperature must be positive, got ",
          options.temperature);
}

// dL/dU for the given pair gradients (A x A), then through the normalisation when there was one.
template <class T>
void pair_grads_to_embeddings(const ContrastResult<T>& r, ConstView<T> pair_grad, TensorView<T> out) {
    const auto U = as_eigen(r.embeddings.cview());
    const auto G = as_eigen(pair_grad);
    auto O = as_eigen(out);
    O.noalias() = G * U;
    O.noalias() += G.transpose() * U;
    if (r.normalized) ops::l2_normalize_rows_strict_backward<T>(r.embeddings.cview(), r.norms.cview(), out);
}

}  // namespace detail

// z: A x D embeddings; is_positive(m, i, a) says whether a is a positive of anchor i under label m
// (called only for a != i).
template <class T, class IsPositive>
ContrastResult<T> multi_label_contrast(std::string_view op, ConstView<T> z, index_t K, IsPositive&& is_positive,
                                       const ContrastOptions& options) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "contrastive losses work on float or double");
    detail::check_contrast_input<T>(op, z, K, options);
    const index_t A = z.dim(0), D = z.dim(1);
    const double tau = options.temperature;

    ContrastResult<T> r;
    r.embeddings = Tensor<T>(Shape{A, D});
    r.normalized = options.normalize;
    if (options.normalize) {
        r.norms = Tensor<T>(Shape{A});
        ops::l2_normalize_rows_strict<T>(z, r.embeddings.view(), r.norms.view(), op);
    } else {
        for (index_t i = 0; i < A; ++i)
            for (index_t d = 0; d < D; ++d) {
                const T v = z(i, d);
                check(std::isfinite(v), op, "embedding ", i, " holds a non-finite value (", v, ") at ", d);
                r.embeddings(i, d) = v;
            }
    }

    // prob(i, a) = p_ia (0 on the diagonal); log_norm[i] = log sum_{b != i} exp(s_ib / tau).
    Tensor<T> prob(Shape{A, A});
    {
        auto U = as_eigen(r.embeddings.cview());
        auto S = as_eigen(prob.view());
        S.noalias() = U * U.transpose();
    }
    // Without normalisation, large embeddings can overflow the similarities (or s / tau): an
    // error naming the pair, never a NaN loss.
    for (index_t i = 0; i < A; ++i)
        for (index_t a = 0; a < A; ++a) {
            const double s = static_cast<double>(prob(i, a));
            if (!std::isfinite(s) || !std::isfinite(static_cast<T>(s / tau)))
                fail(op, "the similarity of embeddings ", i, " and ", a, " divided by the temperature (", s, " / ", tau,
                     ") is not finite in the element type; normalise the embeddings (ContrastOptions::normalize) "
                     "or scale them down");
        }
    std::vector<double> log_norm(static_cast<std::size_t>(A));
    Tensor<T> sim(Shape{A, A});  // s_ia / tau, kept for the positive terms of the loss
#pragma omp parallel for schedule(static)
    for (index_t i = 0; i < A; ++i) {
        T* row = prob.data() + i * A;
        T* logits = sim.data() + i * A;
        double mx = -std::numeric_limits<double>::infinity();
        for (index_t a = 0; a < A; ++a) {
            logits[a] = static_cast<T>(static_cast<double>(row[a]) / tau);
            if (a != i) mx = std::max(mx, static_cast<double>(logits[a]));
        }
        double z_sum = 0;
        for (index_t a = 0; a < A; ++a) {
            const double e = a == i ? 0.0 : std::exp(static_cast<double>(logits[a]) - mx);
            row[a] = static_cast<T>(e);
            z_sum += e;
        }
        for (index_t a = 0; a < A; ++a) row[a] = static_cast<T>(static_cast<double>(row[a]) / z_sum);
        log_norm[i] = mx + std::log(z_sum);
    }

    r.losses = Tensor<T>(Shape{K});
    r.grads = Tensor<T>(Shape{K, A, D});
    r.grad_sum = Tensor<T>(Shape{A, D});
    r.anchors_without_positives.assign(static_cast<std::size_t>(K), 0);
    if (options.keep_pair_grads) r.pair_grads = Tensor<T>(Shape{K, A, A});
    Tensor<T> scratch(options.keep_pair_grads ? Shape{0} : Shape{A, A});
    std::vector<index_t> n_pos(static_cast<std::size_t>(A));
    std::vector<double> anchor_loss(static_cast<std::size_t>(A));  // summed in anchor order: repeatable

    for (index_t m = 0; m < K; ++m) {
        // Positives per anchor and the loss terms.
#pragma omp parallel for schedule(static)
        for (index_t i = 0; i < A; ++i) {
            index_t np = 0;
            double pos_logits = 0;
            for (index_t a = 0; a < A; ++a)
                if (a != i && is_positive(m, i, a)) {
                    ++np;
                    pos_logits += static_cast<double>(sim(i, a));
                }
            n_pos[i] = np;
            anchor_loss[i] = np > 0 ? log_norm[i] - pos_logits / static_cast<double>(np) : 0.0;
        }
        double loss_sum = 0;
        index_t counted = 0;
        for (index_t i = 0; i < A; ++i)
            if (n_pos[i] > 0) {
                loss_sum += anchor_loss[i];
                ++counted;
            }
        r.anchors_without_positives[m] = A - counted;
        r.losses(m) = counted > 0 ? static_cast<T>(loss_sum / static_cast<double>(counted)) : T(0);
        r.total += counted > 0 ? loss_sum / static_cast<double>(counted) : 0.0;

        T* g = options.keep_pair_grads ? r.pair_grads.data() + m * A * A : scratch.data();
        const double scale = counted > 0 ? 1.0 / (tau * static_cast<double>(counted)) : 0.0;
#pragma omp parallel for schedule(static)
        for (index_t i = 0; i < A; ++i) {
            T* gi = g + i * A;
            if (n_pos[i] == 0) {
                std::fill(gi, gi + A, T(0));
                continue;
            }
            const double inv_pos = 1.0 / static_cast<double>(n_pos[i]);
            for (index_t a = 0; a < A; ++a) {
                const double target = (a != i && is_positive(m, i, a)) ? inv_pos : 0.0;
                gi[a] = a == i ? T(0) : static_cast<T>((static_cast<double>(prob(i, a)) - target) * scale);
            }
        }
        TensorView<T> gm = r.grads.view().select(0, m);
        detail::pair_grads_to_embeddings<T>(r, ConstView<T>(g, Shape{A, A}), gm);
        as_eigen(r.grad_sum.view()) += as_eigen(ConstView<T>(gm));
    }
    return r;
}

// dL/d(input embeddings) [K x A x D] for modified pair gradients (K x A x A, e.g. the kept pair
// gradients of a forward pass masked by GradFilter), through the same embeddings and normalisation.
template <class T>
Tensor<T> contrast_backward(const ContrastResult<T>& forward, ConstView<T> pair_grads) {
    const index_t A = forward.embeddings.dim(0), D = forward.embeddings.dim(1);
    check(pair_grads.rank() == 3 && pair_grads.dim(1) == A && pair_grads.dim(2) == A, "contrast_backward",
          "pair_grads must be K x ", A, " x ", A, ", got ", pair_grads.shape());
    check(pair_grads.is_contiguous(), "contrast_backward", "pair_grads must be contiguous");
    const index_t K = pair_grads.dim(0);
    Tensor<T> grads(Shape{K, A, D});
    for (index_t m = 0; m < K; ++m)
        detail::pair_grads_to_embeddings<T>(forward, pair_grads.select(0, m), grads.view().select(0, m));
    return grads;
}

}  // namespace gcl::loss
