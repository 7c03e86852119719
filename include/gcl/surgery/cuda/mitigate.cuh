#pragma once
// CudaGradMitigator: the GradMitigator (surgery/mitigate.hpp) on a K x P gradient matrix in
// device memory. Same options, checks, projection orders and report as the CPU kernel:
//
//   gcl::surgery::CudaGradMitigator<float> mitigator({.reduction = Reduction::sum, .seed = 1});
//   MitigateReport r = mitigator({.grads = G_dev.cview() /* K x P */, .out = g_dev.view() /* P */, .step = step},
//                                stream);
//
// Three steps, as on the CPU: a pass over G forms Q = G G^T in double (detail/gram_pass.cuh,
// bitwise repeatable), Q goes to the host where gram_weights() (surgery/gram_weights.hpp, the
// same host code as the CPU kernel) finds the weights w, and a pass writes w^T G
// (detail/combine_pass.cuh). (2K + 1) P values of memory traffic.
//
// The call returns when the report is complete; the combine pass may still be running on
// `stream` (operator() waits for it, since it frees its own workspace).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/surgery/cuda/detail/combine_pass.cuh"
#include "gcl/surgery/cuda/detail/gram_pass.cuh"
#include "gcl/surgery/cuda/detail/launch.cuh"
#include "gcl/surgery/gram_weights.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/mitigate_options.hpp"

namespace gcl::surgery {

namespace cuda_impl {

// A host copy of the P values at `data` (device memory), for error messages.
template <class T>
const T* host_copy_of_row(std::vector<T>& host, const T* data, index_t P) {
    host.resize(static_cast<std::size_t>(P));
    GCL_CUDA_CHECK(cudaMemcpy(host.data(), data, static_cast<std::size_t>(P) * sizeof(T), cudaMemcpyDeviceToHost));
    return host.data();
}

}  // namespace cuda_impl

template <class T>
class CudaGradMitigator {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "CudaGradMitigator works on float or double");

public:
    struct Arguments {
        ConstView<T, cuda> grads;   // K x P, one gradient per row; rows contiguous, any row stride
        TensorView<T, cuda> out;    // P, contiguous; may be one of the rows of grads, but no other overlap
        std::uint64_t step = 0;     // the training step: with the seed, fixes the projection orders
    };

    explicit CudaGradMitigator(MitigateOptions options = {}) : options_(options) {}
    const MitigateOptions& options() const { return options_; }

    // Empty when the arguments can be run, else the reason (the same checks as GradMitigator).
    static std::string why_not(const Arguments& args) { return detail::mitigate_why_not(args.grads, args.out); }
    static bool can_implement(const Arguments& args) { return why_not(args).empty(); }
    static void check(const Arguments& args) {
        const std::string reason = why_not(args);
        if (!reason.empty()) fail("CudaGradMitigator", reason);
    }

    // Bytes of device workspace `run` needs: per-chunk partial Gram sums, Q, and (K > 8) the weights.
    static std::size_t workspace_size(const Arguments& args) {
        check(args);
        const index_t K = args.grads.dim(0), P = args.grads.dim(1);
        return cuda_impl::gram_workspace(K, P) * sizeof(double) + cuda_impl::combine_workspace_bytes<T>(K);
    }

    // Runs on `stream` with caller-provided device workspace of at least workspace_size(args)
    // bytes, aligned for double. Returns when the report is complete; `out` is written when
    // `stream` gets past this call's work.
    MitigateReport run(const Arguments& args, void* workspace, cudaStream_t stream = nullptr) const {
        check(args);
        gcl::check(workspace != nullptr, "CudaGradMitigator", "run needs workspace_size(args) bytes of device workspace");
        const index_t K = args.grads.dim(0), P = args.grads.dim(1);
        const index_t row_stride = args.grads.stride(0);
        const T* grads = args.grads.data();

        MitigateReport report;
        report.gram = Tensor<double>(Shape{K, K});
        report.weights = Tensor<double>(Shape{K});
        report.coefficients = Tensor<double>(Shape{K, K});
        double* gram = report.gram.data();
        auto* gram_workspace = static_cast<double*>(workspace);
        cuda_impl::gram_pass(grads, row_stride, K, P, gram_workspace, gram, stream);

        std::vector<T> host_row;  // filled only to name a non-finite value in the error message
        detail::check_finite_gram(
            "CudaGradMitigator", gram, K,
            [&](index_t k) { return cuda_impl::host_copy_of_row(host_row, grads + k * row_stride, P); }, P);

        const GramWeightCounts counts =
            gram_weights(gram, K, options_, args.step, 0, report.weights.data(), report.coefficients.data());
        report.conflicting_pairs = counts.conflicting_pairs;
        report.projections = counts.projections;
        report.skipped_rows = counts.skipped_rows;

        // The device combines in T; where the result could leave T's range, refuse it rather
        // than return infinities (the CPU mitigator combines such rows in double).
        if (combination_may_overflow<T>(gram, K, report.weights.data()))
            fail("CudaGradMitigator", "the combined gradient could leave the range of the element type; "
                 "scale the losses down");
        std::vector<T> w(static_cast<std::size_t>(K));
        for (index_t k = 0; k < K; ++k) w[k] = static_cast<T>(report.weights(k));
        void* combine_workspace = gram_workspace + cuda_impl::gram_workspace(K, P);
        cuda_impl::combine_pass(grads, row_stride, K, P, w.data(), combine_workspace, args.out.data(), stream);
        return report;
    }

    // Runs on `stream` with workspace it allocates itself; returns when `out` is written.
    MitigateReport operator()(const Arguments& args, cudaStream_t stream = nullptr) const {
        Buffer<double, cuda> workspace(workspace_size(args) / sizeof(double) + 1);
        cuda_impl::wait_for_default_stream(stream);
        MitigateReport report = run(args, workspace.data(), stream);
        GCL_CUDA_CHECK(cudaStreamSynchronize(stream));
        return report;
    }

private:
    MitigateOptions options_;
};

// One-call form on device views: out = PCGrad-combined rows of grads (K x P); returns when out is written.
template <class T>
MitigateReport mitigate(ConstView<T, cuda> grads, TensorView<T, cuda> out, const MitigateOptions& options = {},
                        std::uint64_t step = 0, cudaStream_t stream = nullptr) {
    return CudaGradMitigator<T>(options)({grads, out, step}, stream);
}

}  // namespace gcl::surgery
