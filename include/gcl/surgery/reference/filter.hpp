#pragma once
// Reference pair filter: score every pair, sort all of them (a full sort by score, largest first,
// equal scores by lower index), and keep the first ones. Same options and result as GradFilter.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gcl/core/tensor.hpp"
#include "gcl/surgery/filter.hpp"
#include "gcl/surgery/filter_options.hpp"

namespace gcl::surgery::reference {

template <class T>
FilterResult filter_pairs(ConstView<T> magnitudes, const FilterOptions& options = {},
                          ConstView<T> anchor_weights = {}) {
    detail::check_filter_arguments<T>("reference::filter_pairs", magnitudes, anchor_weights, options);
    const index_t A = magnitudes.dim(0), M = magnitudes.dim(1);
    const bool weighted = anchor_weights.data() != nullptr;

    // Anchors taking part: sort all anchors by weight.
    std::vector<index_t> anchors(static_cast<std::size_t>(A));
    for (index_t a = 0; a < A; ++a) anchors[a] = a;
    std::vector<std::uint8_t> active(static_cast<std::size_t>(A), 1);
    if (options.anchor_ratio < 1) {
        std::sort(anchors.begin(), anchors.end(), [&](index_t x, index_t y) {
            return anchor_weights(x) > anchor_weights(y) || (anchor_weights(x) == anchor_weights(y) && x < y);
        });
        std::fill(active.begin(), active.end(), 0);
        const index_t n = detail::kept_count(options.anchor_ratio, A);
        for (index_t t = 0; t < n; ++t) active[anchors[t]] = 1;
    }

    const auto score = [&](index_t a, index_t m) {
        return magnitudes(a, m) * (weighted ? anchor_weights(a) : T(1));
    };
    std::vector<std::pair<index_t, index_t>> kept;
    if (options.rule == FilterRule::top_k_per_anchor) {
        for (index_t a = 0; a < A; ++a) {
            if (!active[a]) continue;
            std::vector<index_t> cols(static_cast<std::size_t>(M));
            for (index_t m = 0; m < M; ++m) cols[m] = m;
            std::sort(cols.begin(), cols.end(), [&](index_t x, index_t y) {
                return score(a, x) > score(a, y) || (score(a, x) == score(a, y) && x < y);
            });
            for (index_t t = 0; t < std::min(options.k, M); ++t) kept.emplace_back(a, cols[t]);
        }
    } else {
        std::vector<index_t> flat;
        for (index_t a = 0; a < A; ++a)
            if (active[a])
                for (index_t m = 0; m < M; ++m) flat.push_back(a * M + m);
        std::sort(flat.begin(), flat.end(), [&](index_t x, index_t y) {
            const T sx = score(x / M, x % M), sy = score(y / M, y % M);
            return sx > sy || (sx == sy && x < y);
        });
        const index_t keep = detail::kept_count(options.ratio, static_cast<index_t>(flat.size()));
        for (index_t t = 0; t < keep; ++t) kept.emplace_back(flat[t] / M, flat[t] % M);
    }

    FilterResult result;
    result.mask = Tensor<std::uint8_t>(Shape{A, M});
    result.indices = Tensor<index_t>(Shape{static_cast<index_t>(kept.size()), 2});
    for (std::size_t t = 0; t < kept.size(); ++t) {
        result.mask(kept[t].first, kept[t].second) = 1;
        result.indices(static_cast<index_t>(t), 0) = kept[t].first;
        result.indices(static_cast<index_t>(t), 1) = kept[t].second;
    }
    return result;
}

}  // namespace gcl::surgery::reference
