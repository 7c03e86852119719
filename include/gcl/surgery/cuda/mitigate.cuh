#pragma once
// The CUDA passes of GradMitigator (surgery/mitigate.hpp): the same class, options, checks,
// projection orders and report on a K x P gradient matrix in device memory:
//
//   gcl::surgery::GradMitigator<float, gcl::cuda> mitigator({.reduction = Reduction::sum, .seed = 1});
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
#include "gcl/backend/cuda/copy.cuh"
#include "gcl/backend/cuda/stream.cuh"
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
    cuda_detail::copy_to_host(host.data(), data, static_cast<std::size_t>(P) * sizeof(T));
    return host.data();
}

}  // namespace cuda_impl

namespace detail {
template <class T>
struct MitigatePasses<T, cuda> {
    // Per-chunk partial Gram sums, Q, and (K > 8) the weights.
    static std::size_t workspace_bytes(index_t K, index_t P) {
        return cuda_impl::gram_workspace(K, P) * sizeof(double) + cuda_impl::combine_workspace_bytes<T>(K);
    }

    static void gram(const ConstView<T, cuda>& g, void* workspace, double* gram, Stream<cuda> stream) {
        const index_t K = g.dim(0), P = g.dim(1), row_stride = g.stride(0);
        cuda_impl::wait_for_current_stream(stream);  // G was written on the current stream
        cuda_impl::gram_pass(g.data(), row_stride, K, P, static_cast<double*>(workspace), gram, stream);
        std::vector<T> host_row;  // filled only to name a non-finite value in the error message
        check_finite_gram(
            "GradMitigator", gram, K,
            [&](index_t k) { return cuda_impl::host_copy_of_row(host_row, g.data() + k * row_stride, P); }, P);
    }

    // The device combines in T; where the result could leave T's range, it is refused rather
    // than returned as infinities (the CPU passes combine such rows in double).
    static void combine(const ConstView<T, cuda>& g, const double* gram, const double* weights, void* workspace,
                        const TensorView<T, cuda>& out, Stream<cuda> stream) {
        const index_t K = g.dim(0), P = g.dim(1);
        if (combination_may_overflow<T>(gram, K, weights))
            fail("GradMitigator", "the combined gradient could leave the range of the element type; "
                 "scale the losses down");
        std::vector<T> w(static_cast<std::size_t>(K));
        for (index_t k = 0; k < K; ++k) w[k] = static_cast<T>(weights[k]);
        void* combine_workspace = static_cast<double*>(workspace) + cuda_impl::gram_workspace(K, P);
        cuda_impl::combine_pass(g.data(), g.stride(0), K, P, w.data(), combine_workspace, out.data(), stream);
    }
};
}  // namespace detail

// The CUDA GradMitigator under its former name.
template <class T>
using CudaGradMitigator = GradMitigator<T, cuda>;

}  // namespace gcl::surgery
