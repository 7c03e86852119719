#pragma once
// CPU passes of the contrastive losses (loss/multi_label_contrast.hpp): the softmax over each
// anchor's other embeddings, the per-anchor loss terms and the closed-form pair gradients, with
// the positives given as data (keys [K, A] or masks [K, A, A]). Sums run in double, in a fixed
// order per anchor, and the loss sums over anchors in anchor order: results repeat bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

// One label's loss: the mean of the anchor terms over the anchors that have positives.
struct ContrastLabelLoss {
    double mean = 0;      // 0 when no anchor counted
    index_t counted = 0;  // anchors with at least one positive
};

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
        for (index_t i = 0; i < A * A; ++i) {
            const double s = static_cast<double>(prob.data()[i]);
            if (!std::isfinite(s) || !std::isfinite(static_cast<T>(s / tau))) return i;
        }
// check_vectorised: rows (one anchor per iteration; exp and positives per pair)
#pragma omp parallel for schedule(static)
        for (index_t i = 0; i < A; ++i) {
            T* row = prob.data() + i * A;
            T* lg = logits.data() + i * A;
            double mx = -std::numeric_limits<double>::infinity();
            for (index_t a = 0; a < A; ++a) {
                lg[a] = static_cast<T>(static_cast<double>(row[a]) / tau);
                if (a != i) mx = std::max(mx, static_cast<double>(lg[a]));
            }
            double z_sum = 0;
            for (index_t a = 0; a < A; ++a) {
                const double e = a == i ? 0.0 : std::exp(static_cast<double>(lg[a]) - mx);
                row[a] = static_cast<T>(e);
                z_sum += e;
            }
            for (index_t a = 0; a < A; ++a) row[a] = static_cast<T>(static_cast<double>(row[a]) / z_sum);
            log_norm.data()[i] = mx + std::log(z_sum);
        }
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
        with_positive(keys, masks, m, A, [&](auto positive) {
// check_vectorised: rows (one anchor per iteration; exp and positives per pair)
#pragma omp parallel for schedule(static)
            for (index_t i = 0; i < A; ++i) {
                const T* lg = logits.data() + i * A;
                index_t np = 0;
                double pos_logits = 0;
                for (index_t a = 0; a < A; ++a)
                    if (a != i && positive(i, a)) {
                        ++np;
                        pos_logits += static_cast<double>(lg[a]);
                    }
                n_pos.data()[i] = np;
                anchor_loss.data()[i] = np > 0 ? log_norm.data()[i] - pos_logits / static_cast<double>(np) : 0.0;
            }
        });
        double loss_sum = 0;
        ContrastLabelLoss r;
        for (index_t i = 0; i < A; ++i)
            if (n_pos.data()[i] > 0) {
                loss_sum += anchor_loss.data()[i];
                ++r.counted;
            }
        r.mean = r.counted > 0 ? loss_sum / static_cast<double>(r.counted) : 0.0;
        losses.data()[m] = r.counted > 0 ? static_cast<T>(r.mean) : T(0);
        return r;
    }

    // Label m's pair gradients g [A, A]: (p_ia - [a in P_m(i)] / |P_m(i)|) * scale for a != i,
    // 0 on the diagonal and in the rows of anchors without positives.
    template <class T>
    static void pair_grads(ConstView<T, cpu> prob, ConstView<index_t, cpu> keys, ConstView<std::uint8_t, cpu> masks,
                           index_t m, ConstView<index_t, cpu> n_pos, double scale, TensorView<T, cpu> g) {
        const index_t A = prob.dim(0);
        with_positive(keys, masks, m, A, [&](auto positive) {
// check_vectorised: rows (one anchor per iteration; exp and positives per pair)
#pragma omp parallel for schedule(static)
            for (index_t i = 0; i < A; ++i) {
                T* gi = g.data() + i * A;
                const T* pi = prob.data() + i * A;
                const index_t np = n_pos.data()[i];
                if (np == 0) {
                    std::fill(gi, gi + A, T(0));
                    continue;
                }
                const double inv_pos = 1.0 / static_cast<double>(np);
                for (index_t a = 0; a < A; ++a) {
                    const double target = (a != i && positive(i, a)) ? inv_pos : 0.0;
                    gi[a] = a == i ? T(0) : static_cast<T>((static_cast<double>(pi[a]) - target) * scale);
                }
            }
        });
    }

    // out [A, A] = |sum_{m in [first, last)} pair_grads[m]| (sums in double, in label order).
    template <class T>
    static void pair_grad_magnitudes(ConstView<T, cpu> pair_grads, index_t first, index_t last, TensorView<T, cpu> out) {
        const index_t n = out.numel();
        const T* g = pair_grads.data();
        T* o = out.data();
        // Chunks of pairs, the labels outer inside a chunk, so that the pair loops vectorise.
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
            if (locations.data()[s] < 0 || locations.data()[s] >= hw) return s;
        return -1;
    }

    // out [N S, C]: row n S + s = features[n, :, locations[s]] of features [N, C, H W].
    template <class T>
    static void gather_pixels(ConstView<T, cpu> features, ConstView<index_t, cpu> locations, TensorView<T, cpu> out) {
        const T* f = features.data();
        T* o = out.data();
        for_each_sampled(features.shape(), locations, [&](index_t map, index_t row) { o[row] = f[map]; });
    }

    // out [N, C, H W] += grads [N S, C] at the sampled locations (distinct locations: no races).
    template <class T>
    static void scatter_pixel_grads(ConstView<T, cpu> grads, ConstView<index_t, cpu> locations, TensorView<T, cpu> out) {
        const T* g = grads.data();
        T* o = out.data();
        for_each_sampled(out.shape(), locations, [&](index_t map, index_t row) { o[map] += g[row]; });
    }

private:
    // Calls f(map index, row index) for every sampled pixel and channel of a [N, C, H, W] map:
    // element (n, c, locations[s]) of the map and (n S + s, c) of the [N S, C] pixel rows.
    template <class F>
    static void for_each_sampled(const Shape& map, ConstView<index_t, cpu> locations, F&& f) {
        const index_t N = map[0], C = map[1], HW = map[2] * map[3], S = locations.numel();
        const index_t* loc = locations.data();
        for (index_t n = 0; n < N; ++n)
            for (index_t s = 0; s < S; ++s)
                for (index_t c = 0; c < C; ++c) f((n * C + c) * HW + loc[s], (n * S + s) * C + c);
    }

    // Calls f with label m's positive(i, a) predicate, read from keys [K, A] or masks [K, A, A].
    template <class F>
    static void with_positive(ConstView<index_t, cpu> keys, ConstView<std::uint8_t, cpu> masks, index_t m, index_t A,
                              F&& f) {
        if (keys.rank() == 2) {
            const index_t* k = keys.data() + m * A;
            f([k](index_t i, index_t a) { return k[i] == k[a]; });
        } else {
            const std::uint8_t* mask = masks.data() + m * A * A;
            f([mask, A](index_t i, index_t a) { return mask[i * A + a] != 0; });
        }
    }
};

}  // namespace gcl::backend
