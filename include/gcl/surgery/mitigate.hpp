#pragma once
// GradMitigator: PCGrad (Yu et al. 2020) on K per-meta-label gradients, combined into one.
//
//   gcl::surgery::GradMitigator<float> mitigator({.reduction = Reduction::sum, .seed = 1});
//   auto report = mitigator({.grads = G /* K x P */, .out = g /* P */, .step = step});
//
// Semantics: for each i, g_i' starts as g_i and, over the other rows j in a seeded random order,
// when g_i' . g_j < 0 it is projected onto the normal plane of the *original* g_j:
// g_i' -= (g_i' . g_j / ||g_j||^2) g_j. The output is sum_i g_i' (or the mean).
//
// The kernel never forms g_i'. It reads G twice: one pass forms Q = G G^T, a K x K host loop finds
// the weights w with sum_i g_i' = w^T G (gram_weights.hpp), and one pass writes w^T G. That is
// (2K + 1) P values of memory traffic, the bandwidth limit the benchmarks measure against.
//
// Operator object in the CUTLASS manner: Arguments, can_implement / check, workspace_size, run.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/stream.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/surgery/detail/combine_pass.hpp"
#include "gcl/surgery/detail/gram_pass.hpp"
#include "gcl/surgery/detail/in_double.hpp"
#include "gcl/surgery/detail/mitigator_operator.hpp"
#include "gcl/surgery/gram_weights.hpp"
#include "gcl/surgery/mitigate_options.hpp"

namespace gcl::surgery {

namespace detail {
// The argument checks of the K x P mitigation, for views on any device (only shapes, strides
// and addresses are read): empty when the arguments can be run, else the reason.
template <class T, class Device>
std::string mitigate_why_not(const TensorView<const T, Device>& g, const TensorView<T, Device>& out) {
    if (g.rank() != 2) return "grads must be K x P (rank 2), got shape " + g.shape().str();
    if (g.dim(0) < 1 || g.dim(1) < 1) return "grads must be non-empty, got shape " + g.shape().str();
    if (g.dim(1) > 1 && g.stride(1) != 1)
        return "rows of grads must be contiguous, got column stride " + std::to_string(g.stride(1));
    if (out.rank() != 1 || out.dim(0) != g.dim(1))
        return "out must have shape [" + std::to_string(g.dim(1)) + "] for grads of shape " + g.shape().str() +
               ", got " + out.shape().str();
    if (!out.is_contiguous()) return "out must be contiguous";
    for (index_t k = 0; k < g.dim(0); ++k) {
        const TensorView<const T, Device> row = g.select(0, k);
        if (views_overlap(row, out) && row.data() != out.data())
            return "out overlaps row " + std::to_string(k) + " of grads without being that row";
    }
    return {};
}

// NaN or Inf anywhere in a row shows in its squared norm Q_kk; an infinite entry with finite
// rows is an overflow. Either raises gcl::Error, naming the first row (and column) holding a
// non-finite value, else the first row whose products overflow.
template <class RowOf>
void check_finite_gram(std::string_view op, const double* gram, index_t K, RowOf row_of, index_t P) {
    index_t overflowing = -1;
    for (index_t i = 0; i < K && overflowing < 0; ++i)
        for (index_t j = 0; j < K; ++j)
            if (!std::isfinite(gram[i * K + j])) {
                overflowing = i;
                break;
            }
    if (overflowing < 0) return;
    fail_on_non_finite_value(op, "", row_of, K, P);
    fail(op, "the dot products of gradient row ", overflowing, " overflow; the gradients are too large to combine");
}

// The two passes of the K x P mitigation on one device, which GradMitigator<T, Device> runs around
// the host weight solve: the Gram pass (Q = G G^T into host memory, G checked finite) and the
// combine pass (out = w^T G). The CPU's are below, the CUDA ones in surgery/cuda/mitigate.cuh.
template <class T, class Device>
struct MitigatePasses;

template <class T>
struct MitigatePasses<T, cpu> {
    static std::size_t workspace_bytes(index_t K, index_t P) { return gram_workspace(K, P) * sizeof(double); }

    static std::vector<const T*> rows_of(const ConstView<T>& g) {
        std::vector<const T*> rows(static_cast<std::size_t>(g.dim(0)));
        for (index_t k = 0; k < g.dim(0); ++k) rows[static_cast<std::size_t>(k)] = g.data() + k * g.stride(0);
        return rows;
    }

    static void gram(const ConstView<T>& g, void* workspace, double* gram, Stream<cpu>) {
        const index_t K = g.dim(0), P = g.dim(1);
        const std::vector<const T*> rows = rows_of(g);
        const auto row_of = [&](index_t k) { return rows[k]; };
        gram_pass(rows.data(), K, P, static_cast<double*>(workspace), gram);
        if constexpr (std::is_same_v<T, float>) {
            // The pass accumulates products in float, which rows near the float range overflow;
            // in double they cannot (P < 1e231), so finite rows get their exact Gram matrix.
            if (!all_finite(gram, K * K)) {
                fail_on_non_finite_value("GradMitigator", "", row_of, K, P);
                gram_in_double(row_of, K, P, gram);
            }
        }
        check_finite_gram("GradMitigator", gram, K, row_of, P);
    }

    // Where w^T G could leave T's range, every column is formed in double and checked first.
    static void combine(const ConstView<T>& g, const double* gram, const double* weights, void* /*workspace*/,
                        const TensorView<T>& out, Stream<cpu>) {
        const index_t K = g.dim(0), P = g.dim(1);
        const std::vector<const T*> rows = rows_of(g);
        const auto row_of = [&](index_t k) { return rows[k]; };
        if (combination_may_overflow<T>(gram, K, weights)) {
            const OutOfRange beyond = combine_in_double(row_of, K, P, weights, out.data());
            if (beyond.column >= 0)
                fail("GradMitigator", "the combined gradient is ", beyond.value, " at column ", beyond.column,
                     ", beyond the range of the element type; scale the losses down");
            return;
        }
        std::vector<T> w(static_cast<std::size_t>(K));
        for (index_t k = 0; k < K; ++k) w[k] = static_cast<T>(weights[k]);
        combine_pass(rows.data(), K, P, w.data(), out.data());
    }
};
}  // namespace detail

// GradMitigator<T, Device>::Arguments: what one call reads and writes.
template <class T, class Device>
struct MitigateArguments {
    ConstView<T, Device> grads;   // K x P, one gradient per row; rows contiguous, any row stride
    TensorView<T, Device> out;    // P, contiguous; may be one of the rows of grads, but no other overlap
    std::uint64_t step = 0;       // the training step: with the seed, fixes the projection orders
};

// One class for every device: the options, checks and operator() (detail/mitigator_operator.hpp),
// the report and the host weight solve are shared; only detail::MitigatePasses<T, Device>
// differs. GradMitigator<T, cuda> needs surgery/cuda/mitigate.cuh.
template <class T, class Device = cpu>
class GradMitigator
    : public detail::MitigatorOperator<GradMitigator<T, Device>, MitigateArguments<T, Device>, T, Device> {
    using Base = detail::MitigatorOperator<GradMitigator<T, Device>, MitigateArguments<T, Device>, T, Device>;
    using Passes = detail::MitigatePasses<T, Device>;

public:
    using Arguments = MitigateArguments<T, Device>;
    static constexpr std::string_view name = "GradMitigator";

    explicit GradMitigator(MitigateOptions options = {}) : Base(options) {}

    // Empty when the arguments can be run, else the reason.
    static std::string why_not(const Arguments& args) { return detail::mitigate_why_not(args.grads, args.out); }
    // Per-chunk partial Gram sums and, on the GPU, Q and the weights (valid arguments).
    static std::size_t workspace_bytes(const Arguments& args) {
        return Passes::workspace_bytes(args.grads.dim(0), args.grads.dim(1));
    }

    // Runs on `stream` with caller-provided workspace of at least workspace_size(args) bytes,
    // aligned for double. Returns when the report is complete; on the GPU `out` is written when
    // `stream` gets past this call's work.
    MitigateReport run(const Arguments& args, void* workspace, Stream<Device> stream = current_stream<Device>()) const {
        Base::check_run(args, workspace);
        const index_t K = args.grads.dim(0);
        MitigateReport report;
        report.gram = Tensor<double>(Shape{K, K});
        report.weights = Tensor<double>(Shape{K});
        report.coefficients = Tensor<double>(Shape{K, K});
        double* gram = report.gram.data();
        Passes::gram(args.grads, workspace, gram, stream);
        record_counts(report, gram_weights(gram, K, this->options_, args.step, 0, report.weights.data(),
                                           report.coefficients.data()));
        Passes::combine(args.grads, gram, report.weights.data(), workspace, args.out, stream);
        return report;
    }
};

// One-call form on any device: out = PCGrad-combined rows of grads (K x P); returns when out is
// written (GradMitigator<T, cuda> needs surgery/cuda/mitigate.cuh).
template <class T, class Device>
MitigateReport mitigate(ConstView<T, std::type_identity_t<Device>> grads, TensorView<T, Device> out,
                        const MitigateOptions& options = {}, std::uint64_t step = 0,
                        Stream<Device> stream = current_stream<Device>()) {
    return GradMitigator<T, Device>(options)({grads, out, step}, stream);
}

}  // namespace gcl::surgery
