#pragma once
// Options and per-call report of the gradient mitigation (GradMitigator and its reference).
#include <cstdint>

#include "gcl/core/shape.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::surgery {

// How the K projected gradients are combined into one.
enum class Reduction { sum, mean };

struct MitigateOptions {
    Reduction reduction = Reduction::sum;
    // Seeds the order in which row i is projected against the other rows; together with the
    // call's step (and, in the batched form, the sample index) it fixes every order.
    std::uint64_t seed = 0;
    // Relative noise floor. Row j is never used as a projection target when it is zero or when
    // ||g_j|| <= eps * max_k ||g_k||: a meta label without positive pairs has a zero (or
    // noise-level) gradient whose direction means nothing. And g_i' conflicts with g_j only when
    // g_i' . g_j < -eps ||g_i|| ||g_j||, so rounding noise never triggers a projection.
    double eps = 1e-10;
};

// What one call did. Counts of the batched form are summed over its samples.
struct MitigateReport {
    index_t conflicting_pairs = 0;  // unordered pairs i < j of usable rows with g_i . g_j < 0 in the input
    index_t projections = 0;        // projection steps applied (the running g_i conflicted with g_j)
    index_t skipped_rows = 0;       // rows that were too small to serve as projection targets
    Tensor<double> weights;         // the output is sum_k weights[k] g_k: [K] ([N x K] when batched)
    Tensor<double> gram;            // Q = G G^T of the input: [K x K] (empty when batched)
    Tensor<double> coefficients;    // row i: the projected g_i' = sum_k c_i[k] g_k: [K x K] (empty when batched)
};

}  // namespace gcl::surgery
