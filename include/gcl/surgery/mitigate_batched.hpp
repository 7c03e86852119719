#pragma once
// BatchedGradMitigator: the GradMitigator's PCGrad semantics applied independently to each of N
// samples, for representation-level mitigation: per-sample gradients dL_m/dz_n of K meta-label
// losses (N x K x D) become one gradient per sample (N x D), ready for a single backward pass.
//
//   gcl::surgery::BatchedGradMitigator<float> mitigator(options);
//   auto report = mitigator({.grads = per_label.transpose(0, 1) /* N x K x D */, .out = g, .step = step});
//
// Sample n uses the projection orders of (seed, step, n, i) and its own Gram matrix. Three steps on
// every device: a pass forms the N Gram matrices, the host finds each sample's weights, and a pass
// writes every out[n]; samples are spread over threads (or GPU blocks).
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/stream.hpp"
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

// The two passes of the batched mitigation on one device, which BatchedGradMitigator<T, Device>
// runs around the host weight solve: the Gram pass (N matrices of K x K into host memory) and the
// combine pass (out[n] = w_n^T G_n). The CPU's are below, the CUDA ones in
// surgery/cuda/mitigate_batched.cuh.
template <class T, class Device>
struct BatchedPasses;

template <class T>
struct BatchedPasses<T, cpu> {
    // The Gram matrices go straight to host memory, so no workspace is needed.
    static std::size_t workspace_bytes(index_t /*N*/, index_t /*K*/) { return 0; }
    static std::vector<double> allocate_workspace(std::size_t /*bytes*/, Stream<cpu>) { return std::vector<double>(1); }

    // gram[n K K + i K + j] = g[n, i, :] . g[n, j, :], in double.
    static void gram(const ConstView<T>& g, void* /*workspace*/, double* gram, Stream<cpu>) {
        const index_t N = g.dim(0), K = g.dim(1), D = g.dim(2);
#pragma omp parallel for schedule(static)
        for (index_t n = 0; n < N; ++n) {
            const T* base = g.data() + n * g.stride(0);
            double* q_n = gram + n * K * K;
            for (index_t i = 0; i < K; ++i)
                for (index_t j = i; j < K; ++j) {
                    const T* a = base + i * g.stride(1);
                    const T* b = base + j * g.stride(1);
                    double q = 0;
#pragma omp simd reduction(+ : q)
                    for (index_t d = 0; d < D; ++d) q += static_cast<double>(a[d]) * static_cast<double>(b[d]);
                    q_n[i * K + j] = q;
                    q_n[j * K + i] = q;
                }
        }
    }

    // Host pointer to the D values of g[n, k, :] (for error messages).
    static const T* row_values(const ConstView<T>& g, index_t n, index_t k, std::vector<T>& /*host*/) {
        return g.data() + n * g.stride(0) + k * g.stride(1);
    }

    // Samples near T's range are combined in double and kept only if every column fits.
    static void combine(const ConstView<T>& g, const double* gram, const double* weights, void* /*workspace*/,
                        const TensorView<T>& out, Stream<cpu>) {
        const index_t N = g.dim(0), K = g.dim(1), D = g.dim(2);
        index_t overflow_sample = -1;  // the first sample whose combination leaves T's range
#pragma omp parallel
        {
            std::vector<T> w(static_cast<std::size_t>(K));
#pragma omp for schedule(static)
            for (index_t n = 0; n < N; ++n) {
                const T* base = g.data() + n * g.stride(0);
                const auto row = [&](index_t k) { return base + k * g.stride(1); };
                const double* wn = weights + n * K;
                T* o = out.data() + n * out.stride(0);
                if (combination_may_overflow<T>(gram + n * K * K, K, wn)) {
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
        if (overflow_sample >= 0)
            fail("BatchedGradMitigator", "the combined gradient of sample ", overflow_sample,
                 " is beyond the range of the element type; scale the losses down");
    }
};
}  // namespace detail

// One class for every device: the checks, the report and the host weight solve are shared; only
// detail::BatchedPasses<T, Device> differs. BatchedGradMitigator<T, cuda> needs
// surgery/cuda/mitigate_batched.cuh.
template <class T, class Device = cpu>
class BatchedGradMitigator {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "BatchedGradMitigator works on float or double");
    using Passes = detail::BatchedPasses<T, Device>;

public:
    struct Arguments {
        ConstView<T, Device> grads;   // N x K x D, last dimension contiguous (a transposed K x N x D view is fine)
        TensorView<T, Device> out;    // N x D, last dimension contiguous, not overlapping grads
        std::uint64_t step = 0;
        // The index that seeds sample n's projection orders: sample_ids[n] (host memory), or n when
        // null. A rank of a data-parallel job passes its samples' indices in the global batch, so
        // each sample is projected in the order one process would use.
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
    // Bytes of workspace (in the device's memory) `run` needs: none on the CPU, the N Gram
    // matrices and the weights on the GPU.
    static std::size_t workspace_size(const Arguments& args) {
        check(args);
        return Passes::workspace_bytes(args.grads.dim(0), args.grads.dim(1));
    }

    // Runs on `stream`; returns when the report is complete (on the GPU `out` is written when
    // `stream` gets past this call's work). Sample n uses the projection orders of (seed, step, n, i), or of its sample id.
    MitigateReport run(const Arguments& args, void* workspace, Stream<Device> stream = {}) const {
        check(args);
        gcl::check(workspace != nullptr || Passes::workspace_bytes(args.grads.dim(0), args.grads.dim(1)) == 0,
                   "BatchedGradMitigator", "run needs workspace_size(args) bytes of ", Device::name, " workspace");
        const ConstView<T, Device>& g = args.grads;
        const index_t N = g.dim(0), K = g.dim(1);
        std::vector<double> gram(static_cast<std::size_t>(N * K * K));
        Passes::gram(g, workspace, gram.data(), stream);
        for (index_t n = 0; n < N; ++n)
            for (index_t e = 0; e < K * K; ++e)
                if (!std::isfinite(gram[static_cast<std::size_t>(n * K * K + e)])) fail_non_finite_sample(g, n);

        MitigateReport report;
        report.weights = Tensor<double>(Shape{N, K});
        index_t conflicts = 0, projections = 0, skipped = 0;
#pragma omp parallel reduction(+ : conflicts, projections, skipped)
        {
            std::vector<double> coeff(static_cast<std::size_t>(K));
            std::vector<index_t> order(static_cast<std::size_t>(K));
#pragma omp for schedule(static)
            for (index_t n = 0; n < N; ++n) {
                const std::uint64_t id = args.sample_ids ? args.sample_ids[n] : static_cast<std::uint64_t>(n);
                const GramWeightCounts c = gram_weights(gram.data() + n * K * K, K, options_, args.step, id,
                                                        report.weights.data() + n * K, coeff.data(), order.data());
                conflicts += c.conflicting_pairs;
                projections += c.projections;
                skipped += c.skipped_rows;
            }
        }
        report.conflicting_pairs = conflicts;
        report.projections = projections;
        report.skipped_rows = skipped;
        Passes::combine(g, gram.data(), report.weights.data(), workspace, args.out, stream);
        return report;
    }

    // Runs with workspace it allocates itself; returns when `out` is written.
    MitigateReport operator()(const Arguments& args, Stream<Device> stream = {}) const {
        auto workspace = Passes::allocate_workspace(workspace_size(args), stream);
        MitigateReport report = run(args, workspace.data(), stream);
        stream.synchronize();
        return report;
    }

private:
    // Names the first non-finite value of sample n, or says that its dot products overflowed.
    [[noreturn]] static void fail_non_finite_sample(const ConstView<T, Device>& g, index_t n) {
        const index_t K = g.dim(1), D = g.dim(2);
        std::vector<T> host;
        for (index_t k = 0; k < K; ++k) {
            const T* row = Passes::row_values(g, n, k, host);
            for (index_t d = 0; d < D; ++d)
                if (!std::isfinite(row[d]))
                    fail("BatchedGradMitigator", "sample ", n, ", gradient row ", k, " holds a non-finite value (",
                         row[d], ") at column ", d);
        }
        fail("BatchedGradMitigator", "the dot products of sample ", n,
             " overflow; the gradients are too large to combine");
    }

    MitigateOptions options_;
};

// One-call form: out[n] = PCGrad-combined rows of grads[n] (N x K x D -> N x D).
template <class T>
MitigateReport mitigate_batched(ConstView<T> grads, TensorView<T> out, const MitigateOptions& options = {},
                                std::uint64_t step = 0, const std::uint64_t* sample_ids = nullptr) {
    return BatchedGradMitigator<T>(options)({grads, out, step, sample_ids});
}

}  // namespace gcl::surgery
