#pragma once
// CPU passes of the contrastive losses (loss/multi_label_contrast.hpp): the softmax over each
// anchor's other embeddings, the per-anchor loss terms and the closed-form pair gradients, with
// the positives given as data (keys [K, A] or masks [K, A, A]). The per-row and per-pair rules
// are backend/detail/contrast_items.hpp's, which the CUDA kernels run too. Sums run in double,
// in a fixed order per anchor, and the loss sums over anchors in anchor order: results repeat
// bit for bit.
#include <cstdint>

#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/detail/contrast_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct Contrast<cpu> {
    // On entry prob holds the similarities s [A, A]. Unless some s or s / tau is not finite in T
    // (then the first such flat index i * A + a is returned and nothing is written), on return
    // logits = s / tau, prob(i, a) = softmax over a != i of the logits (0 on the diagonal) and
    // log_norm[i] = log sum_{b != i} exp(logits(i, b)); returns -1.
    template <class T>
    static index_t off_diagonal_softmax(TensorView<T, cpu> prob, TensorView<T, cpu> logits,
                                        TensorView<double, cpu> log_norm, double tau) {
        const index_t A = prob.dim(0);
        for (index_t i = 0; i < A * A; ++i)
            if (detail::similarity_overflows(prob.data()[i], tau)) return i;
        // check_vectorised: rows (one anchor per iteration; exp and positives per pair)
#pragma omp parallel for schedule(static)
        for (index_t i = 0; i < A; ++i)
            log_norm.data()[i] = detail::contrast_softmax_row(prob.data() + i * A, logits.data() + i * A, i, A, tau);
        return -1;
    }

    // Label m's loss into losses[m]: per anchor, n_pos[i] = |P_m(i)| and the term
    // log_norm[i] - mean of the positives' logits; the mean over anchors with positives.
    template <class T>
    static ContrastLabelLoss label_loss(ConstView<T, cpu> logits, ConstView<double, cpu> log_norm,
                                        ConstView<index_t, cpu> keys, ConstView<std::uint8_t, cpu> masks, index_t m,
                                        TensorView<index_t, cpu> n_pos, TensorView<double, cpu> anchor_loss,
                                        TensorView<T, cpu> losses) {
        const index_t A = logits.dim(0);
        detail::with_positives(keys.data(), masks.data(), keys.rank() == 2, m, A, [&](auto positive) {
            // check_vectorised: rows (one anchor per iteration; exp and positives per pair)
#pragma omp parallel for schedule(static)
            for (index_t i = 0; i < A; ++i)
                anchor_loss.data()[i] = detail::contrast_anchor_loss(logits.data() + i * A, log_norm.data()[i],
                                                                     positive, i, A, n_pos.data()[i]);
        });
        const ContrastLabelLoss r = detail::contrast_label_total(n_pos.data(), anchor_loss.data(), A);
        losses.data()[m] = detail::contrast_label_value<T>(r);
        return r;
    }

    // Label m's pair gradients g [A, A]: (p_ia - [a in P_m(i)] / |P_m(i)|) * scale for a != i,
    // 0 on the diagonal and in the rows of anchors without positives.
    template <class T>
    static void pair_grads(ConstView<T, cpu> prob, ConstView<index_t, cpu> keys, ConstView<std::uint8_t, cpu> masks,
                           index_t m, ConstView<index_t, cpu> n_pos, double scale, TensorView<T, cpu> g) {
        const index_t A = prob.dim(0);
        detail::with_positives(keys.data(), masks.data(), keys.rank() == 2, m, A, [&](auto positive) {
            // check_vectorised: rows (one anchor per iteration; exp and positives per pair)
#pragma omp parallel for schedule(static)
            for (index_t i = 0; i < A; ++i)
                for (index_t e = i * A; e < (i + 1) * A; ++e)
                    g.data()[e] = detail::pair_grad_item(prob.data(), n_pos.data(), positive, A, scale, e);
        });
    }

    // out [A, A] = |sum_{m in [first, last)} pair_grads[m]| (sums in double, in label order).
    template <class T>
    static void pair_grad_magnitudes(ConstView<T, cpu> pair_grads, index_t first, index_t last, TensorView<T, cpu> out) {
        const index_t n = out.numel();
        const T* g = pair_grads.data();
        T* o = out.data();
        // pair_grad_magnitude_item's sums (the CUDA kernel's), arranged in chunks of pairs with the
        // labels outer inside a chunk, so that the pair loops vectorise; the same additions in order.
        constexpr index_t chunk = 256;
        const index_t chunks = (n + chunk - 1) / chunk;
        // check_vectorised: rows (chunks of pairs; the element loops below)
#pragma omp parallel for schedule(static) if (cpu_detail::worth_parallel(n, last - first))
        for (index_t c = 0; c < chunks; ++c) {
            const index_t begin = c * chunk, size = std::min(chunk, n - begin);
            double sum[chunk] = {};
            for (index_t m = first; m < last; ++m) {
                const T* gm = g + m * n + begin;
#pragma omp simd
                for (index_t i = 0; i < size; ++i) sum[i] += static_cast<double>(gm[i]);
            }
#pragma omp simd
            for (index_t i = 0; i < size; ++i) o[begin + i] = static_cast<T>(std::abs(sum[i]));
        }
    }

    // pair_grads [K, A, A] with the pairs where mask [A, A] is zero set to zero, in place.
    template <class T>
    static void mask_pair_grads(ConstView<std::uint8_t, cpu> mask, TensorView<T, cpu> pair_grads) {
        const index_t n = mask.numel(), K = pair_grads.numel() / n;
        const std::uint8_t* keep = mask.data();
        T* g = pair_grads.data();
        for (index_t m = 0; m < K; ++m) {
            T* gm = g + m * n;
#pragma omp parallel for schedule(static) if (cpu_detail::worth_parallel(n, K))
            for (index_t i = 0; i < n; ++i) gm[i] = keep[i] ? gm[i] : T(0);
        }
    }

    // The pixel contrast's sampling: the first s whose location is outside [0, hw), or -1.
    static index_t first_bad_location(ConstView<index_t, cpu> locations, index_t hw) {
        for (index_t s = 0; s < locations.numel(); ++s)
            if (detail::location_outside(locations.data()[s], hw)) return s;
        return -1;
    }

    // out [N S, C]: row n S + s = features[n, :, locations[s]] of features [N, C, H W].
    template <class T>
    static void gather_pixels(ConstView<T, cpu> features, ConstView<index_t, cpu> locations, TensorView<T, cpu> out) {
        const T* f = features.data();
        const index_t* loc = locations.data();
        const index_t S = locations.numel(), C = features.dim(1), hw = features.dim(2) * features.dim(3);
        T* o = out.data();
        for (index_t e = 0; e < out.numel(); ++e) o[e] = f[detail::sampled_pixel_index(loc, S, C, hw, e)];
    }

    // out [N, C, H W] += grads [N S, C] at the sampled locations (a location sampled twice
    // receives both gradients, in sample order).
    template <class T>
    static void scatter_pixel_grads(ConstView<T, cpu> grads, ConstView<index_t, cpu> locations, TensorView<T, cpu> out) {
        const index_t S = locations.numel(), C = out.dim(1), hw = out.dim(2) * out.dim(3);
        for (index_t nc = 0; nc < out.dim(0) * C; ++nc)
            detail::scatter_pixel_plane(grads.data(), locations.data(), out.data(), S, C, hw, nc);
    }
};

}  // namespace gcl::backend
