#pragma once
// BatchedGradMitigator: the GradMitigator's PCGrad semantics applied independently to each of N
// samples, for representation-level mitigation: per-sample gradients dL_m/dz_n of K meta-label
// losses (N x K x D) become one gradient per sample (N x D), ready for a single backward pass.
//
//   gcl::surgery::BatchedGradMitigator<float> mitigator(options);
//   auto report = mitigator({.grads = per_label.transpose(0, 1) /* N x K x D */, .out = g, .step = step});
//
// Sample n uses the projection orders of (seed, step, n, i) and its own Gram matrix; D is small,
// so each sample's work stays in cache and samples are spread over threads.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/surgery/gram_weights.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/mitigate_options.hpp"

namespace gcl::surgery {

namespace detail {
// The argument checks of the batched mitigation, for views on any device (only shapes, strides
// and addresses are read): empty when the arguments can be run, else the reason.
template <class T, class Device>
std::string batched_why_not(const TensorView<const T, Device>& g, const TensorView<T, Device>& out) {
    if (g.rank() != 3) return "grads must be N x K x D (rank 3), got shape " + g.shape().str();
    if (g.numel() == 0) return "grads must be non-empty, got shape " + g.shape().str();
    if (g.dim(2) > 1 && g.stride(2) != 1) return "the last dimension of grads must be contiguous";
    if (out.rank() != 2 || out.dim(0) != g.dim(0) || out.dim(1) != g.dim(2))
        return "out must have shape [" + std::to_string(g.dim(0)) + ", " + std::to_string(g.dim(2)) +
               "] for grads of shape " + g.shape().str() + ", got " + out.shape().str();
    if (out.dim(1) > 1 && out.stride(1) != 1) return "the last dimension of out must be contiguous";
    if (views_overlap(g, out)) return "out overlaps grads";
    return {};
}
}  // namespace detail

template <class T>
class BatchedGradMitigator {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "BatchedGradMitigator works on float or double");

public:
    struct Arguments {
        ConstView<T> grads;      // N x K x D, last dimension contiguous (a transposed K x N x D view is fine)
        TensorView<T> out;       // N x D, last dimension contiguous, not overlapping grads
        std::uint64_t step = 0;
        // The index that seeds sample n's projection orders: sample_ids[n], or n when null. A rank
        // of a data-parallel job passes its samples' indices in the global batch, so each sample
        // is projected in the order one process would use.
        const std::uint64_t* sample_ids = nullptr;
    };

    explicit BatchedGradMitigator(MitigateOptions options = {}) : options_(options) {}
    const MitigateOptions& options() const { return options_; }

    // Empty when the arguments can be run, else the reason.
    static std::string why_not(const Arguments& args) { return detail::batched_why_not(args.grads, args.out); }
    static bool can_implement(const Arguments& args) { return why_not(args).empty(); }
    static void check(const Arguments& args) {
        const std::string reason = why_not(args);
        if (!reason.empty()) fail("BatchedGradMitigator", reason);
    }
    // The batched form needs no workspace beyond a few K-sized arrays per thread.
    static std::size_t workspace_size(const Arguments& args) {
        check(args);
        return 0;
    }

    MitigateReport operator()(const Arguments& args) const { return run(args, nullptr); }

    MitigateReport run(const Arguments& args, void* /*workspace*/) const {
        check(args);
        const ConstView<T>& g = args.grads;
        const index_t N = g.dim(0), K = g.dim(1), D = g.dim(2);
        MitigateReport report;
        report.weights = Tensor<double>(Shape{N, K});
        index_t conflicts = 0, projections = 0, skipped = 0;
        index_t bad_sample = -1;       // the first sample with a non-finite Gram matrix
        index_t overflow_sample = -1;  // the first sample whose combination leaves T's range

#pragma omp parallel reduction(+ : conflicts, projections, skipped)
        {
            std::vector<double> gram(static_cast<std::size_t>(K * K)), coeff(static_cast<std::size_t>(K));
            std::vector<index_t> order(static_cast<std::size_t>(K));
            std::vector<T> w(static_cast<std::size_t>(K));
#pragma omp for schedule(static)
            for (index_t n = 0; n < N; ++n) {
                const T* base = g.data() + n * g.stride(0);
                const auto row = [&](index_t k) { return base + k * g.stride(1); };
                for (index_t i = 0; i < K; ++i)
                    for (index_t j = i; j < K; ++j) {
                        const T* a = row(i);
                        const T* b = row(j);
                        double q = 0;
#pragma omp simd reduction(+ : q)
                        for (index_t d = 0; d < D; ++d) q += static_cast<double>(a[d]) * static_cast<double>(b[d]);
                        gram[i * K + j] = q;
                        gram[j * K + i] = q;
                    }
                bool sample_finite = true;
                for (index_t k = 0; k < K * K; ++k) sample_finite = sample_finite && std::isfinite(gram[k]);
                if (!sample_finite) {
#pragma omp critical(gcl_batched_mitigator)
                    if (bad_sample < 0 || n < bad_sample) bad_sample = n;
                    continue;
                }
                double* wn = report.weights.data() + n * K;
                const std::uint64_t id = args.sample_ids ? args.sample_ids[n] : static_cast<std::uint64_t>(n);
                const GramWeightCounts c =
                    gram_weights(gram.data(), K, options_, args.step, id, wn, coeff.data(), order.data());
                conflicts += c.conflicting_pairs;
                projections += c.projections;
                skipped += c.skipped_rows;
                T* o = args.out.data() + n * args.out.stride(0);
                if (combination_may_overflow<T>(gram.data(), K, wn)) {
                    // Near T's range: combine in double and keep the sample only if it fits.
                    bool fits = true;
                    for (index_t d = 0; d < D && fits; ++d) {
                        double s = 0;
                        for (index_t k = 0; k < K; ++k) s += wn[k] * static_cast<double>(row(k)[d]);
                        fits = std::abs(s) <= static_cast<double>(std::numeric_limits<T>::max());
                    }
                    if (!fits) {
#pragma omp critical(gcl_batched_mitigator)
                        if (overflow_sample < 0 || n < overflow_sample) overflow_sample = n;
                        continue;
                    }
                    for (index_t d = 0; d < D; ++d) {
                        double s = 0;
                        for (index_t k = 0; k < K; ++k) s += wn[k] * static_cast<double>(row(k)[d]);
                        o[d] = static_cast<T>(s);
                    }
                    continue;
                }
                for (index_t k = 0; k < K; ++k) w[k] = static_cast<T>(wn[k]);
                for (index_t d = 0; d < D; ++d) o[d] = T(0);
                for (index_t k = 0; k < K; ++k) {
                    const T* a = row(k);
                    const T wk = w[k];
#pragma omp simd
                    for (index_t d = 0; d < D; ++d) o[d] += wk * a[d];
                }
            }
        }
        if (bad_sample >= 0) {
            const T* base = g.data() + bad_sample * g.stride(0);
            for (index_t k = 0; k < K; ++k)
                for (index_t d = 0; d < D; ++d)
                    if (!std::isfinite(base[k * g.stride(1) + d]))
                        fail("BatchedGradMitigator", "sample ", bad_sample, ", gradient row ", k,
                             " holds a non-finite value (", base[k * g.stride(1) + d], ") at column ", d);
            fail("BatchedGradMitigator", "the dot products of sample ", bad_sample,
                 " overflow; the gradients are too large to combine");
        }
        if (overflow_sample >= 0)
            fail("BatchedGradMitigator", "the combined gradient of sample ", overflow_sample,
                 " is beyond the range of the element type; scale the losses down");
        report.conflicting_pairs = conflicts;
        report.projections = projections;
        report.skipped_rows = skipped;
        return report;
    }

private:
    MitigateOptions options_;
};

// One-call form: out[n] = PCGrad-combined rows of grads[n] (N x K x D -> N x D).
template <class T>
MitigateReport mitigate_batched(ConstView<T> grads, TensorView<T> out, const MitigateOptions& options = {},
                                std::uint64_t step = 0, const std::uint64_t* sample_ids = nullptr) {
    return BatchedGradMitigator<T>(options)({grads, out, step, sample_ids});
}

}  // namespace gcl::surgery
