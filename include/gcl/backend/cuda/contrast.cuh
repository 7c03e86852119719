#pragma once
// CUDA passes of the contrastive losses with the CPU family's interface
// (backend/cpu/contrast.hpp), around the per-row and per-pair rules of
// backend/detail/contrast_items.hpp:
//   off_diagonal_softmax  one thread per anchor row (the CPU's row rule); the overflow check
//                         names the CPU's first pair (an atomicMin of the indices)
//   label_loss            one thread per anchor, then one thread summing the anchors in anchor
//                         order, as the CPU does; the label's mean and count come back to the host
//   pair_grads, pair_grad_magnitudes, mask_pair_grads, gather_pixels
//                         one thread per pair or element
//   scatter_pixel_grads   one thread per (image, channel) plane, adding the samples in order
// Given the same similarities, everything but the softmax's exp and log is the CPU's arithmetic
// in the CPU's order: the pair passes, the magnitudes, the masks and the pixel copies give the
// CPU's bits, the softmax and the losses agree with it within rounding, and a run repeats bit
// for bit. The checks and label_loss wait for the device; the other passes return without waiting.
#include <cuda_runtime.h>

#include <cstdint>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/copy.cuh"
#include "gcl/backend/cuda/elementwise.cuh"
#include "gcl/backend/cuda/first_index.cuh"
#include "gcl/backend/cuda/scratch.cuh"
#include "gcl/backend/detail/contrast_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

namespace cuda_kernels {

template <class T>
struct SimilarityOverflowsAt {
    const T* s;
    double tau;
    GCL_DEVICE bool operator()(index_t e) const { return detail::similarity_overflows(s[e], tau); }
};

template <class T>
struct ContrastSoftmaxRow {
    T* prob;
    T* logits;
    double* log_norm;
    index_t A;
    double tau;
    GCL_DEVICE void operator()(index_t i) const {
        log_norm[i] = detail::contrast_softmax_row(prob + i * A, logits + i * A, i, A, tau);
    }
};

template <class T, class Positives>
struct AnchorLoss {
    const T* logits;
    const double* log_norm;
    Positives positive;
    index_t* n_pos;
    double* anchor_loss;
    index_t A;
    GCL_DEVICE void operator()(index_t i) const {
        anchor_loss[i] = detail::contrast_anchor_loss(logits + i * A, log_norm[i], positive, i, A, n_pos[i]);
    }
};

// One thread: the label's loss into *loss, and [mean, counted] into result.
template <class T>
__global__ void contrast_label_total(const index_t* n_pos, const double* anchor_loss, index_t A, T* loss,
                                     double* result) {
    const ContrastLabelLoss r = detail::contrast_label_total(n_pos, anchor_loss, A);
    *loss = detail::contrast_label_value<T>(r);
    result[0] = r.mean;
    result[1] = static_cast<double>(r.counted);
}

template <class T, class Positives>
struct PairGrad {
    const T* prob;
    const index_t* n_pos;
    Positives positive;
    T* g;
    index_t A;
    double scale;
    GCL_DEVICE void operator()(index_t e) const { g[e] = detail::pair_grad_item(prob, n_pos, positive, A, scale, e); }
};

template <class T>
struct PairGradMagnitude {
    const T* pair_grads;
    T* out;
    index_t n, first, last;
    GCL_DEVICE void operator()(index_t e) const {
        out[e] = detail::pair_grad_magnitude_item(pair_grads, n, first, last, e);
    }
};

template <class T>
struct MaskPairGrads {
    const std::uint8_t* keep;
    T* pair_grads;
    index_t n, K;
    GCL_DEVICE void operator()(index_t e) const { detail::mask_pair_grads_item(keep, pair_grads, n, K, e); }
};

struct LocationOutsideAt {
    const index_t* locations;
    index_t hw;
    GCL_DEVICE bool operator()(index_t s) const { return detail::location_outside(locations[s], hw); }
};

template <class T>
struct GatherPixel {
    const T* features;
    const index_t* locations;
    T* out;
    index_t S, C, hw;
    GCL_DEVICE void operator()(index_t e) const {
        out[e] = features[detail::sampled_pixel_index(locations, S, C, hw, e)];
    }
};

template <class T>
struct ScatterPixelPlane {
    const T* grads;
    const index_t* locations;
    T* out;
    index_t S, C, hw;
    GCL_DEVICE void operator()(index_t nc) const {
        detail::scatter_pixel_plane(grads, locations, out, S, C, hw, nc);
    }
};

}  // namespace cuda_kernels

template <>
struct Contrast<cuda> {
    // On entry prob holds the similarities s [A, A]. Unless some s or s / tau is not finite in T
    // (then the first such flat index i * A + a is returned and nothing is written), on return
    // logits = s / tau, prob(i, a) = softmax over a != i of the logits (0 on the diagonal) and
    // log_norm[i] = log sum_{b != i} exp(logits(i, b)); returns -1.
    template <class T>
    static index_t off_diagonal_softmax(TensorView<T, cuda> prob, TensorView<T, cuda> logits,
                                        TensorView<double, cuda> log_norm, double tau) {
        const index_t A = prob.dim(0);
        const index_t bad =
            cuda_detail::first_index_where(A * A, cuda_kernels::SimilarityOverflowsAt<T>{prob.data(), tau});
        if (bad >= 0) return bad;
        cuda_detail::for_each_item(A, cuda_kernels::ContrastSoftmaxRow<T>{prob.data(), logits.data(), log_norm.data(),
                                                                          A, tau});
        return -1;
    }

    // Label m's loss into losses[m]: per anchor, n_pos[i] = |P_m(i)| and the term
    // log_norm[i] - mean of the positives' logits; the mean over anchors with positives
    // (waits for the device).
    template <class T>
    static ContrastLabelLoss label_loss(ConstView<T, cuda> logits, ConstView<double, cuda> log_norm,
                                        ConstView<index_t, cuda> keys, ConstView<std::uint8_t, cuda> masks, index_t m,
                                        TensorView<index_t, cuda> n_pos, TensorView<double, cuda> anchor_loss,
                                        TensorView<T, cuda> losses) {
        const index_t A = logits.dim(0);
        detail::with_positives(keys.data(), masks.data(), keys.rank() == 2, m, A, [&](auto positive) {
            using Item = cuda_kernels::AnchorLoss<T, decltype(positive)>;
            cuda_detail::for_each_item(A, Item{logits.data(), log_norm.data(), positive, n_pos.data(),
                                               anchor_loss.data(), A});
        });
        double* result = cuda_detail::scratch<double>(2);
        cuda_kernels::contrast_label_total<<<1, 1, 0, cuda_detail::stream()>>>(n_pos.data(), anchor_loss.data(), A,
                                                                               losses.data() + m, result);
        GCL_CUDA_CHECK_LAUNCH();
        double host[2] = {0, 0};
        cuda_detail::copy_to_host(host, result, sizeof host);
        ContrastLabelLoss r;
        r.mean = host[0];
        r.counted = static_cast<index_t>(host[1]);
        return r;
    }

    // Label m's pair gradients g [A, A]: (p_ia - [a in P_m(i)] / |P_m(i)|) * scale for a != i,
    // 0 on the diagonal and in the rows of anchors without positives.
    template <class T>
    static void pair_grads(ConstView<T, cuda> prob, ConstView<index_t, cuda> keys, ConstView<std::uint8_t, cuda> masks,
                           index_t m, ConstView<index_t, cuda> n_pos, double scale, TensorView<T, cuda> g) {
        const index_t A = prob.dim(0);
        detail::with_positives(keys.data(), masks.data(), keys.rank() == 2, m, A, [&](auto positive) {
            using Item = cuda_kernels::PairGrad<T, decltype(positive)>;
            cuda_detail::for_each_item(A * A, Item{prob.data(), n_pos.data(), positive, g.data(), A, scale});
        });
    }

    // out [A, A] = |sum_{m in [first, last)} pair_grads[m]| (sums in double, in label order).
    template <class T>
    static void pair_grad_magnitudes(ConstView<T, cuda> pair_grads, index_t first, index_t last,
                                     TensorView<T, cuda> out) {
        const index_t n = out.numel();
        cuda_detail::for_each_item(n, cuda_kernels::PairGradMagnitude<T>{pair_grads.data(), out.data(), n, first, last});
    }

    // pair_grads [K, A, A] with the pairs where mask [A, A] is zero set to zero, in place.
    template <class T>
    static void mask_pair_grads(ConstView<std::uint8_t, cuda> mask, TensorView<T, cuda> pair_grads) {
        const index_t n = mask.numel();
        if (n == 0) return;
        cuda_detail::for_each_item(n, cuda_kernels::MaskPairGrads<T>{mask.data(), pair_grads.data(), n,
                                                                      pair_grads.numel() / n});
    }

    // The pixel contrast's sampling: the first s whose location is outside [0, hw), or -1
    // (waits for the device).
    static index_t first_bad_location(ConstView<index_t, cuda> locations, index_t hw) {
        return cuda_detail::first_index_where(locations.numel(), cuda_kernels::LocationOutsideAt{locations.data(), hw});
    }

    // out [N S, C]: row n S + s = features[n, :, locations[s]] of features [N, C, H W].
    template <class T>
    static void gather_pixels(ConstView<T, cuda> features, ConstView<index_t, cuda> locations, TensorView<T, cuda> out) {
        cuda_detail::for_each_item(out.numel(), cuda_kernels::GatherPixel<T>{features.data(), locations.data(), out.data(),
                                                                             locations.numel(), features.dim(1),
                                                                             features.dim(2) * features.dim(3)});
    }

    // out [N, C, H W] += grads [N S, C] at the sampled locations: one thread per (n, c) plane
    // adding the samples in order, as the CPU (a location sampled twice gets both, no race).
    template <class T>
    static void scatter_pixel_grads(ConstView<T, cuda> grads, ConstView<index_t, cuda> locations,
                                    TensorView<T, cuda> out) {
        const index_t C = out.dim(1);
        cuda_detail::for_each_item(out.dim(0) * C, cuda_kernels::ScatterPixelPlane<T>{grads.data(), locations.data(),
                                                                                      out.data(), locations.numel(), C,
                                                                                      out.dim(2) * out.dim(3)});
    }
};

}  // namespace gcl::backend
