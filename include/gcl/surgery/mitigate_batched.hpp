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
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/stream.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/surgery/detail/in_double.hpp"
#include "gcl/surgery/detail/mitigator_operator.hpp"
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

    // gram[n K K + i K + j] = g[n, i, :] . g[n, j, :], in double.
    static void gram(const ConstView<T>& g, void* /*workspace*/, double* gram, Stream<cpu>) {
        const index_t N = g.dim(0), K = g.dim(1), D = g.dim(2);
#pragma omp parallel for schedule(static)
        for (index_t n = 0; n < N; ++n) {
            const T* base = g.data() + n * g.stride(0);
            gram_in_double([&](index_t k) { return base + k * g.stride(1); }, K, D, gram + n * K * K);
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
                    if (combine_in_double(row, K, D, wn, o).column >= 0) {
#pragma omp critical(gcl_batched_mitigator)
                        if (overflow_sample < 0 || n < overflow_sample) overflow_sample = n;
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

// BatchedGradMitigator<T, Device>::Arguments: what one call reads and writes.
template <class T, class Device>
struct BatchedMitigateArguments {
    ConstView<T, Device> grads;   // N x K x D, last dimension contiguous (a transposed K x N x D view is fine)
    TensorView<T, Device> out;    // N x D, last dimension contiguous, not overlapping grads
    std::uint64_t step = 0;
    // The index that seeds sample n's projection orders: sample_ids[n] (host memory), or n when
    // null. A rank of a data-parallel job passes its samples' indices in the global batch, so
    // each sample is projected in the order one process would use.
    const std::uint64_t* sample_ids = nullptr;
};

// One class for every device: the options, checks and operator() (detail/mitigator_operator.hpp),
// the report and the host weight solve are shared; only detail::BatchedPasses<T, Device>
// differs. BatchedGradMitigator<T, cuda> needs surgery/cuda/mitigate_batched.cuh.
template <class T, class Device = cpu>
class BatchedGradMitigator : public detail::MitigatorOperator<BatchedGradMitigator<T, Device>,
                                                              BatchedMitigateArguments<T, Device>, T, Device> {
    using Base =
        detail::MitigatorOperator<BatchedGradMitigator<T, Device>, BatchedMitigateArguments<T, Device>, T, Device>;
    using Passes = detail::BatchedPasses<T, Device>;

public:
    using Arguments = BatchedMitigateArguments<T, Device>;
    static constexpr std::string_view name = "BatchedGradMitigator";

    explicit BatchedGradMitigator(MitigateOptions options = {}) : Base(options) {}

    // Empty when the arguments can be run, else the reason.
    static std::string why_not(const Arguments& args) { return detail::batched_why_not(args.grads, args.out); }
    // None on the CPU, the N Gram matrices and the weights on the GPU (valid arguments).
    static std::size_t workspace_bytes(const Arguments& args) {
        return Passes::workspace_bytes(args.grads.dim(0), args.grads.dim(1));
    }

    // Runs on `stream`; returns when the report is complete (on the GPU `out` is written when
    // `stream` gets past this call's work). Sample n uses the projection orders of (seed, step, n, i), or of its sample id.
    MitigateReport run(const Arguments& args, void* workspace, Stream<Device> stream = current_stream<Device>()) const {
        Base::check_run(args, workspace);
        const ConstView<T, Device>& g = args.grads;
        const index_t N = g.dim(0), K = g.dim(1);
        std::vector<double> gram(static_cast<std::size_t>(N * K * K));
        Passes::gram(g, workspace, gram.data(), stream);
        for (index_t n = 0; n < N; ++n)
            if (!detail::all_finite(gram.data() + n * K * K, K * K)) fail_non_finite_sample(g, n);

        MitigateReport report;
        report.weights = Tensor<double>(Shape{N, K});
        GramWeightCounts counts;
#pragma omp parallel
        {
            GramWeightCounts mine;
            std::vector<double> coeff(static_cast<std::size_t>(K));
            std::vector<index_t> order(static_cast<std::size_t>(K));
#pragma omp for schedule(static)
            for (index_t n = 0; n < N; ++n) {
                const std::uint64_t id = args.sample_ids ? args.sample_ids[n] : static_cast<std::uint64_t>(n);
                mine += gram_weights(gram.data() + n * K * K, K, this->options_, args.step, id,
                                     report.weights.data() + n * K, coeff.data(), order.data());
            }
#pragma omp critical(gcl_batched_mitigator_counts)
            counts += mine;
        }
        record_counts(report, counts);
        Passes::combine(g, gram.data(), report.weights.data(), workspace, args.out, stream);
        return report;
    }

private:
    // Names the first non-finite value of sample n, or says that its dot products overflowed.
    [[noreturn]] static void fail_non_finite_sample(const ConstView<T, Device>& g, index_t n) {
        std::vector<T> host;
        detail::fail_on_non_finite_value(
            name, "sample " + std::to_string(n) + ", ", [&](index_t k) { return Passes::row_values(g, n, k, host); },
            g.dim(1), g.dim(2));
        fail(name, "the dot products of sample ", n, " overflow; the gradients are too large to combine");
    }
};

// One-call form on any device: out[n] = PCGrad-combined rows of grads[n] (N x K x D -> N x D);
// sample_ids, when given, is host memory (N values). Returns when out is written.
template <class T, class Device>
MitigateReport mitigate_batched(ConstView<T, std::type_identity_t<Device>> grads, TensorView<T, Device> out,
                                const MitigateOptions& options = {}, std::uint64_t step = 0,
                                const std::uint64_t* sample_ids = nullptr,
                                Stream<Device> stream = current_stream<Device>()) {
    return BatchedGradMitigator<T, Device>(options)({grads, out, step, sample_ids}, stream);
}

}  // namespace gcl::surgery
