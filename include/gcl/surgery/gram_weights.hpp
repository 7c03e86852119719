#pragma once
// PCGrad on the Gram matrix. Every projected vector stays in the span of the rows of G, so it is
// tracked by its coefficients c_i (g_i' = c_i^T G) instead of by P values:
//   c_i = e_i; for j in order(i): d = (c_i^T Q)_j = g_i' . g_j; if d < 0: c_i -= d / Q_jj e_j
// and the combined gradient is w^T G with w = sum_i c_i (or the mean). O(K^3) work on K x K numbers.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gcl/core/shape.hpp"
#include "gcl/surgery/mitigate_options.hpp"
#include "gcl/surgery/projection_order.hpp"

namespace gcl::surgery {

struct GramWeightCounts {
    index_t conflicting_pairs = 0;
    index_t projections = 0;
    index_t skipped_rows = 0;

    GramWeightCounts& operator+=(const GramWeightCounts& other) {
        conflicting_pairs += other.conflicting_pairs;
        projections += other.projections;
        skipped_rows += other.skipped_rows;
        return *this;
    }
};

// The counts of a call's report: those of its weight solve (summed over the samples when batched).
inline void record_counts(MitigateReport& report, const GramWeightCounts& counts) {
    report.conflicting_pairs = counts.conflicting_pairs;
    report.projections = counts.projections;
    report.skipped_rows = counts.skipped_rows;
}

// Row j may serve as a projection target: nonzero and not negligible against the largest row.
inline bool usable_row(double q_jj, double max_diag, double eps) {
    return q_jj > 0 && q_jj > eps * eps * max_diag;
}

// A dot product d between (the running projection of) g_i and g_j is a conflict when it is
// negative beyond the rounding noise of the original vectors: d < -eps ||g_i|| ||g_j||. Without
// the floor, a g_i' that an earlier projection reduced to rounding noise (collinear rows) would
// be "projected" on the sign of that noise; with it, near-orthogonal pairs (|cos| <= eps) are
// left alone, which changes g_i by at most eps ||g_i||.
inline bool conflicts(double d, double q_ii, double q_jj, double eps) {
    return d < -eps * std::sqrt(q_ii * q_jj);
}

// Weights w (K values) for the K x K Gram matrix `gram` (row-major, symmetric, finite).
// `coeff` and `order` are scratch of K values each. When `coefficients` is given, row i of it
// (K x K, row-major) receives c_i: the projected g_i' is sum_k c_i[k] g_k.
inline GramWeightCounts gram_weights(const double* gram, index_t K, const MitigateOptions& options, std::uint64_t step,
                                     std::uint64_t sample, double* weights, double* coeff, index_t* order,
                                     double* coefficients = nullptr) {
    GramWeightCounts counts;
    double max_diag = 0;
    for (index_t k = 0; k < K; ++k) max_diag = std::max(max_diag, gram[k * K + k]);
    for (index_t k = 0; k < K; ++k) {
        weights[k] = 0;
        if (!usable_row(gram[k * K + k], max_diag, options.eps)) ++counts.skipped_rows;
    }
    for (index_t i = 0; i < K; ++i)
        for (index_t j = i + 1; j < K; ++j)
            if (usable_row(gram[i * K + i], max_diag, options.eps) && usable_row(gram[j * K + j], max_diag, options.eps) &&
                conflicts(gram[i * K + j], gram[i * K + i], gram[j * K + j], options.eps))
                ++counts.conflicting_pairs;

    for (index_t i = 0; i < K; ++i) {
        for (index_t k = 0; k < K; ++k) coeff[k] = k == i ? 1.0 : 0.0;
        projection_order(options.seed, step, sample, i, K, order);
        for (index_t t = 0; t + 1 < K; ++t) {
            const index_t j = order[t];
            const double q_jj = gram[j * K + j];
            if (!usable_row(q_jj, max_diag, options.eps)) continue;
            double d = 0;  // g_i' . g_j
            for (index_t k = 0; k < K; ++k) d += coeff[k] * gram[k * K + j];
            if (conflicts(d, gram[i * K + i], q_jj, options.eps)) {
                coeff[j] -= d / q_jj;
                ++counts.projections;
            }
        }
        for (index_t k = 0; k < K; ++k) weights[k] += coeff[k];
        if (coefficients)
            for (index_t k = 0; k < K; ++k) coefficients[i * K + k] = coeff[k];
    }
    if (options.reduction == Reduction::mean)
        for (index_t k = 0; k < K; ++k) weights[k] /= static_cast<double>(K);
    return counts;
}

// Whether w^T G could leave T's range in some column: |sum_k w_k g_kp| <= sum_k |w_k| ||g_k||,
// so below half of T's largest value (room for rounding in the running sums) nothing overflows.
// Rows near the float range pass the Gram pass (it is kept in double) but not this test; the
// mitigators then combine in double and raise gcl::Error where a column does not fit in T.
template <class T>
bool combination_may_overflow(const double* gram, index_t K, const double* weights) {
    double bound = 0;
    for (index_t k = 0; k < K; ++k) bound += std::abs(weights[k]) * std::sqrt(gram[k * K + k]);
    return !(bound <= 0.5 * static_cast<double>(std::numeric_limits<T>::max()));
}

// Convenience form that owns its scratch.
inline GramWeightCounts gram_weights(const double* gram, index_t K, const MitigateOptions& options, std::uint64_t step,
                                     std::uint64_t sample, double* weights, double* coefficients = nullptr) {
    std::vector<double> coeff(static_cast<std::size_t>(K));
    std::vector<index_t> order(static_cast<std::size_t>(K));
    return gram_weights(gram, K, options, step, sample, weights, coeff.data(), order.data(), coefficients);
}

}  // namespace gcl::surgery
