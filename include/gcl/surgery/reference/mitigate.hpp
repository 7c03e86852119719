#pragma once
// Reference PCGrad, written straight from the definition (Yu et al. 2020) with explicit
// P-length vectors and double arithmetic: for each i, copy g_i; for each other j in the seeded
// order, if g_i' . g_j < 0 subtract (g_i' . g_j / ||g_j||^2) g_j; add up (or average) the g_i'.
// "< 0" and the rows that may serve as targets follow the same noise floor as the kernel
// (gram_weights.hpp: conflicts, usable_row).
// Slow on purpose (K^2 passes over P values); the tests compare GradMitigator against it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/surgery/gram_weights.hpp"
#include "gcl/surgery/mitigate_options.hpp"
#include "gcl/surgery/projection_order.hpp"

namespace gcl::surgery::reference {

// grads: K x P (rows contiguous); out: P. Same options, same orders (sample index `sample`).
// The report's weights and gram stay empty: the reference never forms them.
template <class T>
MitigateReport mitigate(ConstView<T> grads, TensorView<T> out, const MitigateOptions& options = {},
                        std::uint64_t step = 0, std::uint64_t sample = 0) {
    check(grads.rank() == 2 && grads.numel() > 0, "reference::mitigate", "grads must be a non-empty K x P matrix, got ",
          grads.shape());
    check(out.rank() == 1 && out.dim(0) == grads.dim(1), "reference::mitigate", "out must have shape [",
          grads.dim(1), "], got ", out.shape());
    // (dims are positive here; std::max tells the compiler so for the allocations below)
    const index_t K = std::max<index_t>(grads.dim(0), 1), P = std::max<index_t>(grads.dim(1), 1);
    for (index_t k = 0; k < K; ++k)
        for (index_t p = 0; p < P; ++p)
            check(std::isfinite(grads(k, p)), "reference::mitigate", "gradient row ", k,
                  " holds a non-finite value (", grads(k, p), ") at column ", p);

    const auto dot = [&](const std::vector<double>& a, index_t j) {
        double s = 0;
        for (index_t p = 0; p < P; ++p) s += a[p] * static_cast<double>(grads(j, p));
        return s;
    };
    std::vector<double> norm2(static_cast<std::size_t>(K));
    double max_norm2 = 0;
    for (index_t j = 0; j < K; ++j) {
        double s = 0;
        for (index_t p = 0; p < P; ++p) s += static_cast<double>(grads(j, p)) * static_cast<double>(grads(j, p));
        norm2[j] = s;
        max_norm2 = std::max(max_norm2, s);
    }

    MitigateReport report;
    std::vector<std::uint8_t> usable(static_cast<std::size_t>(K));
    for (index_t j = 0; j < K; ++j) {
        usable[j] = usable_row(norm2[j], max_norm2, options.eps);
        report.skipped_rows += !usable[j];
    }
    for (index_t i = 0; i < K; ++i)
        for (index_t j = i + 1; j < K; ++j) {
            if (!usable[i] || !usable[j]) continue;
            double s = 0;
            for (index_t p = 0; p < P; ++p) s += static_cast<double>(grads(i, p)) * static_cast<double>(grads(j, p));
            report.conflicting_pairs += conflicts(s, norm2[i], norm2[j], options.eps);
        }

    std::vector<double> total(static_cast<std::size_t>(P), 0.0), g(static_cast<std::size_t>(P));
    std::vector<index_t> order(static_cast<std::size_t>(K));
    for (index_t i = 0; i < K; ++i) {
        for (index_t p = 0; p < P; ++p) g[p] = static_cast<double>(grads(i, p));
        projection_order(options.seed, step, sample, i, K, order.data());
        for (index_t t = 0; t + 1 < K; ++t) {
            const index_t j = order[t];
            if (!usable[j]) continue;
            const double d = dot(g, j);
            if (conflicts(d, norm2[i], norm2[j], options.eps)) {
                const double scale = d / norm2[j];
                for (index_t p = 0; p < P; ++p) g[p] -= scale * static_cast<double>(grads(j, p));
                ++report.projections;
            }
        }
        for (index_t p = 0; p < P; ++p) total[p] += g[p];
    }
    const double factor = options.reduction == Reduction::mean ? 1.0 / static_cast<double>(K) : 1.0;
    for (index_t p = 0; p < P; ++p) out(p) = static_cast<T>(total[p] * factor);
    return report;
}

// Batched reference: sample n of grads (N x K x D) through the loop above with sample index n.
template <class T>
MitigateReport mitigate_batched(ConstView<T> grads, TensorView<T> out, const MitigateOptions& options = {},
                                std::uint64_t step = 0) {
    check(grads.rank() == 3 && out.rank() == 2 && out.dim(0) == grads.dim(0) && out.dim(1) == grads.dim(2),
          "reference::mitigate_batched", "grads must be N x K x D and out N x D, got ", grads.shape(), " and ",
          out.shape());
    MitigateReport report;
    for (index_t n = 0; n < grads.dim(0); ++n) {
        const MitigateReport r =
            mitigate<T>(grads.select(0, n), out.select(0, n), options, step, static_cast<std::uint64_t>(n));
        report.conflicting_pairs += r.conflicting_pairs;
        report.projections += r.projections;
        report.skipped_rows += r.skipped_rows;
    }
    return report;
}

}  // namespace gcl::surgery::reference
