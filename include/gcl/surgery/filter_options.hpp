#pragma once
// Options and result of the per-pair gradient filter (GradFilter and its reference).
#include <cstdint>

#include "gcl/core/tensor.hpp"

namespace gcl::surgery {

enum class FilterRule {
    top_k_per_anchor,  // keep the k largest scores in every anchor's row
    top_ratio_global,  // keep the largest `ratio` of all scores of the matrix
};

struct FilterOptions {
    FilterRule rule = FilterRule::top_k_per_anchor;
    index_t k = 1;       // pairs kept per anchor (top_k_per_anchor); rows with fewer columns keep them all
    // Fraction of the pairs (of the anchors taking part) kept by top_ratio_global, in (0, 1];
    // rounded to nearest, at least one.
    double ratio = 0.1;
    // With anchor weights: keep only this fraction of the anchors, those with the largest weights
    // (rounded to nearest, at least one); pairs of the other anchors are dropped. 1 keeps all.
    double anchor_ratio = 1.0;
};

// Pairs are ranked by score = magnitude[a, m] * anchor_weight[a] (weight 1 without weights),
// largest first; equal scores rank the lower index first (column within an anchor's row; flat
// index a * M + m globally), so the result never depends on the algorithm or the thread count.
template <class Device>
struct BasicFilterResult {
    Tensor<std::uint8_t, Device> mask;  // A x M: 1 for a kept pair
    // n_kept x 2 (anchor, column): per anchor in rank order, anchors ascending (top_k_per_anchor),
    // or in global rank order (top_ratio_global).
    Tensor<index_t, Device> indices;
};
using FilterResult = BasicFilterResult<cpu>;

}  // namespace gcl::surgery
