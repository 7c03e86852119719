#pragma once
// CudaBatchedGradMitigator: the BatchedGradMitigator (surgery/mitigate_batched.hpp) on device
// memory. N x K x D per-sample gradients become N x D, each sample with its own Gram matrix,
// projection orders (sample index n) and weights; same options, checks and report as on the CPU.
//
//   gcl::surgery::CudaBatchedGradMitigator<float> mitigator(options);
//   auto report = mitigator({.grads = per_label.transpose(0, 1) /* N x K x D */, .out = g, .step = step}, stream);
//
// One block per sample forms its K x K Gram matrix in double (fixed-order sums, bitwise
// repeatable); the N matrices go to the host, where gram_weights() gives each sample's weights
// (the CPU kernel's host code); the weights come back and one kernel writes every out[n].
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/surgery/cuda/detail/block_sum.cuh"
#include "gcl/surgery/cuda/detail/combine_pass.cuh"
#include "gcl/surgery/cuda/detail/launch.cuh"
#include "gcl/surgery/cuda/mitigate.cuh"
#include "gcl/surgery/gram_weights.hpp"
#include "gcl/surgery/mitigate_batched.hpp"
#include "gcl/surgery/mitigate_options.hpp"

namespace gcl::surgery {

namespace cuda_impl {

inline constexpr int batched_threads = 128;

// Thread t's share of the dot product of a and b (D values): the columns t, t + Threads, ..., in order.
template <class T, int Threads>
__host__ __device__ __forceinline__ double batched_thread_dot(const T* a, const T* b, index_t D, int t) {
    double s = 0;
    for (index_t d = t; d < D; d += Threads) s += static_cast<double>(a[d]) * static_cast<double>(b[d]);
    return s;
}

// gram[n K K + i K + j] = g[n, i, :] . g[n, j, :] for every sample n. One block per sample; for
// each pair, batched_thread_dot per thread, then the fixed-order block sum.
template <class T>
__global__ void __launch_bounds__(batched_threads)
    batched_gram_kernel(const T* grads, index_t N, index_t K, index_t D, index_t sample_stride, index_t row_stride,
                        double* gram) {
    __shared__ double shared[batched_threads / warp_size];
    for (index_t n = blockIdx.x; n < N; n += gridDim.x) {  // uniform per block: all threads reach block_sum
        const T* sample = grads + n * sample_stride;
        double* q = gram + n * K * K;
        for (index_t i = 0; i < K; ++i)
            for (index_t j = i; j < K; ++j) {
                const double v[1] = {batched_thread_dot<T, batched_threads>(
                    sample + i * row_stride, sample + j * row_stride, D, static_cast<int>(threadIdx.x))};
                const double total = block_sum<batched_threads, 1>(v, shared);
                if (threadIdx.x == 0) {
                    q[i * K + j] = total;
                    q[j * K + i] = total;
                }
            }
    }
}

// Item e = n D + d of the output: out[n, d] = sum_k w[n K + k] g[n, k, d], added in row order.
template <class T>
__host__ __device__ __forceinline__ void batched_combine_item(index_t e, const T* grads, index_t K, index_t D,
                                                              index_t sample_stride, index_t row_stride, const T* w,
                                                              T* out, index_t out_stride) {
    const index_t n = e / D, d = e % D;
    out[n * out_stride + d] = combine_column_any(grads + n * sample_stride, row_stride, K, d, w + n * K);
}

template <class T>
__global__ void __launch_bounds__(combine_threads)
    batched_combine_kernel(const T* grads, index_t N, index_t K, index_t D, index_t sample_stride, index_t row_stride,
                           const T* w, T* out, index_t out_stride) {
    const index_t total = N * D;
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride)
        batched_combine_item(e, grads, K, D, sample_stride, row_stride, w, out, out_stride);
}

}  // namespace cuda_impl

template <class T>
class CudaBatchedGradMitigator {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "CudaBatchedGradMitigator works on float or double");

public:
    struct Arguments {
        ConstView<T, cuda> grads;   // N x K x D, last dimension contiguous (a transposed K x N x D view is fine)
        TensorView<T, cuda> out;    // N x D, last dimension contiguous, not overlapping grads
        std::uint64_t step = 0;
    };

    explicit CudaBatchedGradMitigator(MitigateOptions options = {}) : options_(options) {}
    const MitigateOptions& options() const { return options_; }

    // Empty when the arguments can be run, else the reason (the same checks as BatchedGradMitigator).
    static std::string why_not(const Arguments& args) { return detail::batched_why_not(args.grads, args.out); }
    static bool can_implement(const Arguments& args) { return why_not(args).empty(); }
    static void check(const Arguments& args) {
        const std::string reason = why_not(args);
        if (!reason.empty()) fail("CudaBatchedGradMitigator", reason);
    }

    // Bytes of device workspace `run` needs: the N Gram matrices (double) and the N x K weights.
    static std::size_t workspace_size(const Arguments& args) {
        check(args);
        const index_t N = args.grads.dim(0), K = args.grads.dim(1);
        return gram_doubles(N, K) * sizeof(double) + static_cast<std::size_t>(N * K) * sizeof(T);
    }

    // Runs on `stream` with caller-provided device workspace of at least workspace_size(args)
    // bytes, aligned for double. Returns when the report is complete; `out` is written when
    // `stream` gets past this call's work.
    MitigateReport run(const Arguments& args, void* workspace, cudaStream_t stream = nullptr) const {
        check(args);
        gcl::check(workspace != nullptr, "CudaBatchedGradMitigator",
                   "run needs workspace_size(args) bytes of device workspace");
        const ConstView<T, cuda>& g = args.grads;
        const index_t N = g.dim(0), K = g.dim(1), D = g.dim(2);
        const index_t sample_stride = g.stride(0), row_stride = g.stride(1);
        auto* gram_device = static_cast<double*>(workspace);
        T* w_device = reinterpret_cast<T*>(gram_device + gram_doubles(N, K));

        const auto sample_blocks = static_cast<unsigned>(std::min<index_t>(N, index_t{1} << 16));
        cuda_impl::batched_gram_kernel<T><<<sample_blocks, cuda_impl::batched_threads, 0, stream>>>(
            g.data(), N, K, D, sample_stride, row_stride, gram_device);
        GCL_CUDA_CHECK_LAUNCH();
        std::vector<double> gram(gram_doubles(N, K));
        cuda_impl::download(gram.data(), gram_device, gram.size() * sizeof(double), stream);
        for (index_t n = 0; n < N; ++n)
            for (index_t e = 0; e < K * K; ++e)
                if (!std::isfinite(gram[n * K * K + e])) fail_non_finite_sample(g, n);

        MitigateReport report;
        report.weights = Tensor<double>(Shape{N, K});
        std::vector<T> w(static_cast<std::size_t>(N * K));
        std::vector<double> coeff(static_cast<std::size_t>(K));
        std::vector<index_t> order(static_cast<std::size_t>(K));
        for (index_t n = 0; n < N; ++n) {
            double* wn = report.weights.data() + n * K;
            const GramWeightCounts c = gram_weights(gram.data() + n * K * K, K, options_, args.step,
                                                    static_cast<std::uint64_t>(n), wn, coeff.data(), order.data());
            report.conflicting_pairs += c.conflicting_pairs;
            report.projections += c.projections;
            report.skipped_rows += c.skipped_rows;
            for (index_t k = 0; k < K; ++k) w[n * K + k] = static_cast<T>(wn[k]);
            // The device combines in T; where the result could leave T's range, refuse it
            // rather than return infinities (the CPU mitigator combines such samples in double).
            if (combination_may_overflow<T>(gram.data() + n * K * K, K, wn))
                fail("CudaBatchedGradMitigator", "the combined gradient of sample ", n,
                     " could leave the range of the element type; scale the losses down");
        }
        cuda_impl::upload(w_device, w.data(), w.size() * sizeof(T), stream);
        cuda_impl::batched_combine_kernel<T>
            <<<cuda_impl::grid_blocks(N * D, cuda_impl::combine_threads), cuda_impl::combine_threads, 0, stream>>>(
                g.data(), N, K, D, sample_stride, row_stride, w_device, args.out.data(), args.out.stride(0));
        GCL_CUDA_CHECK_LAUNCH();
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
    static std::size_t gram_doubles(index_t N, index_t K) { return static_cast<std::size_t>(N * K * K); }

    // Names the first non-finite value of sample n, or says that its dot products overflowed.
    [[noreturn]] static void fail_non_finite_sample(const ConstView<T, cuda>& g, index_t n) {
        const index_t K = g.dim(1), D = g.dim(2);
        std::vector<T> host;
        for (index_t k = 0; k < K; ++k) {
            const T* row = cuda_impl::host_copy_of_row(host, g.data() + n * g.stride(0) + k * g.stride(1), D);
            for (index_t d = 0; d < D; ++d)
                if (!std::isfinite(row[d]))
                    fail("CudaBatchedGradMitigator", "sample ", n, ", gradient row ", k, " holds a non-finite value (",
                         row[d], ") at column ", d);
        }
        fail("CudaBatchedGradMitigator", "the dot products of sample ", n,
             " overflow; the gradients are too large to combine");
    }

    MitigateOptions options_;
};

// One-call form on device views: out[n] = PCGrad-combined rows of grads[n] (N x K x D -> N x D);
// returns when out is written.
template <class T>
MitigateReport mitigate_batched(ConstView<T, cuda> grads, TensorView<T, cuda> out, const MitigateOptions& options = {},
                                std::uint64_t step = 0, cudaStream_t stream = nullptr) {
    return CudaBatchedGradMitigator<T>(options)({grads, out, step}, stream);
}

}  // namespace gcl::surgery
