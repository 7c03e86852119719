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
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/stream.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/surgery/detail/combine_pass.hpp"
#include "gcl/surgery/detail/gram_pass.hpp"
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

// Names the first non-finite element of row `row` (length P), or says that its squared norm overflowed.
template <class T>
[[noreturn]] void fail_non_finite_row(std::string_view op, const T* data, index_t row, index_t P) {
    for (index_t p = 0; p < P; ++p)
        if (!std::isfinite(data[p]))
            fail(op, "gradient row ", row, " holds a non-finite value (", data[p], ") at column ", p);
    fail(op, "the dot products of gradient row ", row, " overflow; the gradients are too large to combine");
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
    for (index_t k = 0; k < K; ++k) {
        const auto* row = row_of(k);
        for (index_t p = 0; p < P; ++p)
            if (!std::isfinite(row[p])) fail_non_finite_row(op, row, k, P);
    }
    fail_non_finite_row(op, row_of(overflowing), overflowing, P);
}
inline bool all_finite(const double* values, index_t n) {
    for (index_t i = 0; i < n; ++i)
        if (!std::isfinite(values[i])) return false;
    return true;
}

// Q = G G^T with every product and sum in double (a plain loop, for the rare rows the fast pass
// cannot take).
template <class T>
void gram_in_double(const T* const* rows, index_t K, index_t P, double* gram) {
    for (index_t i = 0; i < K; ++i)
        for (index_t j = i; j < K; ++j) {
            double q = 0;
            for (index_t p = 0; p < P; ++p) q += static_cast<double>(rows[i][p]) * static_cast<double>(rows[j][p]);
            gram[i * K + j] = gram[j * K + i] = q;
        }
}

// out = w^T G accumulated in double, for combinations that could overflow T: every column is
// computed and checked before any is written, so a result that does not fit raises gcl::Error
// and leaves out (which may be a row of G) as it was.
template <class T>
void combine_in_double(std::string_view op, const T* const* rows, index_t K, index_t P, const double* w, T* out) {
    const auto column = [&](index_t p) {
        double s = 0;
        for (index_t k = 0; k < K; ++k) s += w[k] * static_cast<double>(rows[k][p]);
        return s;
    };
    for (index_t p = 0; p < P; ++p) {
        const double s = column(p);
        if (!(std::abs(s) <= static_cast<double>(std::numeric_limits<T>::max())))
            fail(op, "the combined gradient is ", s, " at column ", p, ", beyond the range of the element type; "
                 "scale the losses down");
    }
    for (index_t p = 0; p < P; ++p) out[p] = static_cast<T>(column(p));
}
// The two passes of the K x P mitigation on one device, which GradMitigator<T, Device> runs around
// the host weight solve: the Gram pass (Q = G G^T into host memory, G checked finite) and the
// combine pass (out = w^T G). The CPU's are below, the CUDA ones in surgery/cuda/mitigate.cuh.
template <class T, class Device>
struct MitigatePasses;

template <class T>
struct MitigatePasses<T, cpu> {
    static std::size_t workspace_bytes(index_t K, index_t P) { return gram_workspace(K, P) * sizeof(double); }

    // Workspace that operator() allocates for itself.
    static std::vector<double> allocate_workspace(std::size_t bytes, Stream<cpu>) {
        return std::vector<double>(bytes / sizeof(double) + 1);
    }

    static std::vector<const T*> rows_of(const ConstView<T>& g) {
        std::vector<const T*> rows(static_cast<std::size_t>(g.dim(0)));
        for (index_t k = 0; k < g.dim(0); ++k) rows[static_cast<std::size_t>(k)] = g.data() + k * g.stride(0);
        return rows;
    }

    static void gram(const ConstView<T>& g, void* workspace, double* gram, Stream<cpu>) {
        const index_t K = g.dim(0), P = g.dim(1);
        const std::vector<const T*> rows = rows_of(g);
        gram_pass(rows.data(), K, P, static_cast<double*>(workspace), gram);
        if constexpr (std::is_same_v<T, float>) {
            // The pass accumulates products in float, which rows near the float range overflow;
            // in double they cannot (P < 1e231), so finite rows get their exact Gram matrix.
            if (!all_finite(gram, K * K)) {
                for (index_t k = 0; k < K; ++k)
                    for (index_t p = 0; p < P; ++p)
                        if (!std::isfinite(rows[k][p])) fail_non_finite_row("GradMitigator", rows[k], k, P);
                gram_in_double(rows.data(), K, P, gram);
            }
        }
        check_finite_gram("GradMitigator", gram, K, [&](index_t k) { return rows[k]; }, P);
    }

    // Where w^T G could leave T's range, every column is formed in double and checked first.
    static void combine(const ConstView<T>& g, const double* gram, const double* weights, void* /*workspace*/,
                        const TensorView<T>& out, Stream<cpu>) {
        const index_t K = g.dim(0), P = g.dim(1);
        const std::vector<const T*> rows = rows_of(g);
        if (combination_may_overflow<T>(gram, K, weights)) {
            combine_in_double("GradMitigator", rows.data(), K, P, weights, out.data());
            return;
        }
        std::vector<T> w(static_cast<std::size_t>(K));
        for (index_t k = 0; k < K; ++k) w[k] = static_cast<T>(weights[k]);
        combine_pass(rows.data(), K, P, w.data(), out.data());
    }
};
}  // namespace detail

// One class for every device: the checks, the report and the host weight solve are shared; only
// detail::MitigatePasses<T, Device> differs. GradMitigator<T, cuda> needs surgery/cuda/mitigate.cuh.
template <class T, class Device = cpu>
class GradMitigator {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "GradMitigator works on float or double");
    using Passes = detail::MitigatePasses<T, Device>;

public:
    struct Arguments {
        ConstView<T, Device> grads;   // K x P, one gradient per row; rows contiguous, any row stride
        TensorView<T, Device> out;    // P, contiguous; may be one of the rows of grads, but no other overlap
        std::uint64_t step = 0;       // the training step: with the seed, fixes the projection orders
    };

    explicit GradMitigator(MitigateOptions options = {}) : options_(options) {}
    const MitigateOptions& options() const { return options_; }

    // Empty when the arguments can be run, else the reason.
    static std::string why_not(const Arguments& args) { return detail::mitigate_why_not(args.grads, args.out); }
    static bool can_implement(const Arguments& args) { return why_not(args).empty(); }
    static void check(const Arguments& args) {
        const std::string reason = why_not(args);
        if (!reason.empty()) fail("GradMitigator", reason);
    }

    // Bytes of workspace (in the device's memory) `run` needs: per-chunk partial Gram sums and,
    // on the GPU, the weights.
    static std::size_t workspace_size(const Arguments& args) {
        check(args);
        return Passes::workspace_bytes(args.grads.dim(0), args.grads.dim(1));
    }

    // Runs on `stream` with caller-provided workspace of at least workspace_size(args) bytes,
    // aligned for double. Returns when the report is complete; on the GPU `out` is written when
    // `stream` gets past this call's work.
    MitigateReport run(const Arguments& args, void* workspace, Stream<Device> stream = {}) const {
        check(args);
        gcl::check(workspace != nullptr, "GradMitigator", "run needs workspace_size(args) bytes of ", Device::name,
                   " workspace");
        const index_t K = args.grads.dim(0);
        MitigateReport report;
        report.gram = Tensor<double>(Shape{K, K});
        report.weights = Tensor<double>(Shape{K});
        report.coefficients = Tensor<double>(Shape{K, K});
        double* gram = report.gram.data();
        Passes::gram(args.grads, workspace, gram, stream);

        const GramWeightCounts counts =
            gram_weights(gram, K, options_, args.step, 0, report.weights.data(), report.coefficients.data());
        report.conflicting_pairs = counts.conflicting_pairs;
        report.projections = counts.projections;
        report.skipped_rows = counts.skipped_rows;

        Passes::combine(args.grads, gram, report.weights.data(), workspace, args.out, stream);
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
    MitigateOptions options_;
};

// One-call form: out = PCGrad-combined rows of grads (K x P).
template <class T>
MitigateReport mitigate(ConstView<T> grads, TensorView<T> out, const MitigateOptions& options = {},
                        std::uint64_t step = 0) {
    return GradMitigator<T>(options)({grads, out, step});
}

}  // namespace gcl::surgery
