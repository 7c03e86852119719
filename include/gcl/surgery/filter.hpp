#pragma once
// GradFilter: keeps the pixel pairs whose loss gradient is largest, the most discriminating ones.
//
//   gcl::surgery::GradFilter<float> filter({.rule = FilterRule::top_k_per_anchor, .k = 16});
//   FilterResult kept = filter({.magnitudes = pair_grad_magnitudes /* A x M */});
//   // optional: .anchor_weights (A), e.g. the image branch's gradient magnitude at each location
//
// Selection is by threshold: nth_element finds the n-th largest score of a row (or of the whole
// matrix), one scan keeps every larger score and the equal ones with the lowest indices, and only
// the kept pairs are sorted for the index list. O(A M) work, no full sort (the reference sorts).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/stream.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/surgery/filter_options.hpp"

namespace gcl::surgery {

namespace detail {

// Number of items a fraction keeps out of n: rounded to nearest, at least one (n > 0).
inline index_t kept_count(double ratio, index_t n) {
    const auto k = static_cast<index_t>(std::llround(ratio * static_cast<double>(n)));
    return std::clamp<index_t>(k, 1, n);
}

// Checks the shapes of magnitudes and weights and the options, for views on any device (only
// shapes and strides are read); throws gcl::Error.
template <class T, class Device>
void check_filter_shapes(std::string_view op, const TensorView<const T, Device>& magnitudes,
                         const TensorView<const T, Device>& anchor_weights, const FilterOptions& options) {
    check(magnitudes.rank() == 2, op, "magnitudes must be A x M (rank 2), got shape ", magnitudes.shape());
    check(magnitudes.numel() > 0, op, "magnitudes must be non-empty, got shape ", magnitudes.shape());
    check(magnitudes.dim(1) == 1 || magnitudes.stride(1) == 1, op, "rows of magnitudes must be contiguous");
    const bool weighted = anchor_weights.data() != nullptr;
    if (weighted) {
        check(anchor_weights.rank() == 1 && anchor_weights.dim(0) == magnitudes.dim(0), op,
              "anchor_weights must have shape [", magnitudes.dim(0), "], got ", anchor_weights.shape());
        check(anchor_weights.dim(0) == 1 || anchor_weights.stride(0) >= 1, op,
              "anchor_weights must have a positive stride, got ", anchor_weights.stride(0));
    }
    if (options.rule == FilterRule::top_k_per_anchor)
        check(options.k >= 1, op, "k must be at least 1, got ", options.k);
    else
        check(options.ratio > 0 && options.ratio <= 1, op, "ratio must be in (0, 1], got ", options.ratio);
    check(options.anchor_ratio > 0 && options.anchor_ratio <= 1, op, "anchor_ratio must be in (0, 1], got ",
          options.anchor_ratio);
    check(options.anchor_ratio == 1 || weighted, op, "anchor_ratio < 1 selects anchors by weight and needs anchor_weights");
}

// Checks the values in host memory: finite and >= 0 (weights first); throws gcl::Error naming the first bad one.
template <class T>
void check_filter_values(std::string_view op, ConstView<T> magnitudes, ConstView<T> anchor_weights) {
    if (anchor_weights.data() != nullptr)
        for (index_t a = 0; a < anchor_weights.dim(0); ++a) {
            const T w = anchor_weights(a);
            check(std::isfinite(w) && w >= 0, op, "anchor weight ", a, " is ", w, "; weights must be finite and >= 0");
        }
    const index_t A = magnitudes.dim(0), M = magnitudes.dim(1);
    for (index_t a = 0; a < A; ++a) {
        const T* row = magnitudes.data() + a * magnitudes.stride(0);
        for (index_t m = 0; m < M; ++m)
            if (!(std::isfinite(row[m]) && row[m] >= 0))
                fail(op, "magnitude [", a, ", ", m, "] is ", row[m], "; magnitudes must be finite and >= 0");
    }
}

// Shapes, options and values of host arguments.
template <class T>
void check_filter_arguments(std::string_view op, ConstView<T> magnitudes, ConstView<T> anchor_weights,
                            const FilterOptions& options) {
    check_filter_shapes<T, cpu>(op, magnitudes, anchor_weights, options);
    check_filter_values<T>(op, magnitudes, anchor_weights);
}

// The anchors that take part: all, or the kept_count(anchor_ratio, A) with the largest weights
// (equal weights: lower anchor first). Returned as a 0/1 flag per anchor.
template <class T>
std::vector<std::uint8_t> active_anchors(ConstView<T> anchor_weights, index_t A, double anchor_ratio) {
    std::vector<std::uint8_t> active(static_cast<std::size_t>(A), 1);
    if (anchor_ratio >= 1) return active;
    const index_t n = kept_count(anchor_ratio, A);
    std::vector<index_t> order(static_cast<std::size_t>(A));
    for (index_t a = 0; a < A; ++a) order[a] = a;
    std::nth_element(order.begin(), order.begin() + (n - 1), order.end(), [&](index_t x, index_t y) {
        return anchor_weights(x) > anchor_weights(y) || (anchor_weights(x) == anchor_weights(y) && x < y);
    });
    std::fill(active.begin(), active.end(), 0);
    for (index_t t = 0; t < n; ++t) active[order[t]] = 1;
    return active;
}

// Indices (into score[0..n)) of the `keep` largest scores, ties to the lower index, in rank order.
// `scratch` holds n values.
template <class T>
void top_by_threshold(const T* score, index_t n, index_t keep, T* scratch, std::vector<index_t>& kept) {
    kept.clear();
    if (keep <= 0) return;
    std::copy(score, score + n, scratch);
    std::nth_element(scratch, scratch + (keep - 1), scratch + n, std::greater<T>());
    const T threshold = scratch[keep - 1];
    index_t above = 0;
    for (index_t i = 0; i < n; ++i) above += score[i] > threshold;
    index_t ties = keep - above;  // equal scores taken in index order
    for (index_t i = 0; i < n; ++i) {
        if (score[i] > threshold) {
            kept.push_back(i);
        } else if (score[i] == threshold && ties > 0) {
            kept.push_back(i);
            --ties;
        }
    }
    std::sort(kept.begin(), kept.end(),
              [&](index_t x, index_t y) { return score[x] > score[y] || (score[x] == score[y] && x < y); });
}

// The ranking passes of the filter on one device, which GradFilter<T, Device> runs after the
// shared checks. The CPU's (threshold selection) are below, the CUDA ones (one merge sort) in
// surgery/cuda/filter.cuh; both give the same selection.
template <class T, class Device>
struct FilterPasses;

template <class T>
struct FilterPasses<T, cpu> {
    // Scratch bytes the passes allocate: a copy of the scores (global rule) or one row per thread.
    static std::size_t workspace_bytes(index_t A, index_t M, const FilterOptions& options) {
        return static_cast<std::size_t>(options.rule == FilterRule::top_ratio_global ? 2 * A * M : 2 * M) * sizeof(T);
    }

    static FilterResult select(const ConstView<T>& mag, const ConstView<T>& anchor_weights, const FilterOptions& options,
                               Stream<cpu>) {
        check_filter_values<T>("GradFilter", mag, anchor_weights);
        const index_t A = mag.dim(0), M = mag.dim(1);
        const bool weighted = anchor_weights.data() != nullptr;
        const std::vector<std::uint8_t> active =
            active_anchors<T>(anchor_weights, A, options.anchor_ratio);

        FilterResult result;
        result.mask = Tensor<std::uint8_t>(Shape{A, M});
        std::uint8_t* mask = result.mask.data();

        if (options.rule == FilterRule::top_k_per_anchor) {
            const index_t k = std::min(options.k, M);
            std::vector<index_t> count(static_cast<std::size_t>(A), 0);
            std::vector<index_t> columns(static_cast<std::size_t>(A * k));
#pragma omp parallel
            {
                std::vector<T> score(static_cast<std::size_t>(M)), scratch(static_cast<std::size_t>(M));
                std::vector<index_t> kept;
                kept.reserve(static_cast<std::size_t>(k));
#pragma omp for schedule(dynamic, 16)
                for (index_t a = 0; a < A; ++a) {
                    if (!active[a]) continue;
                    // Scaled like the global rule, so a weight that rounds scores together ties them.
                    const T w = weighted ? anchor_weights(a) : T(1);
                    const T* row = mag.data() + a * mag.stride(0);
                    for (index_t m = 0; m < M; ++m) score[m] = row[m] * w;
                    top_by_threshold(score.data(), M, k, scratch.data(), kept);
                    count[a] = static_cast<index_t>(kept.size());
                    for (index_t t = 0; t < count[a]; ++t) {
                        columns[a * k + t] = kept[t];
                        mask[a * M + kept[t]] = 1;
                    }
                }
            }
            index_t total = 0;
            for (index_t a = 0; a < A; ++a) total += count[a];
            result.indices = Tensor<index_t>(Shape{total, 2});
            index_t row = 0;
            for (index_t a = 0; a < A; ++a)
                for (index_t t = 0; t < count[a]; ++t, ++row) {
                    result.indices(row, 0) = a;
                    result.indices(row, 1) = columns[a * k + t];
                }
            return result;
        }

        // Global rule: scores of the active anchors' pairs, dropped anchors scored below everything.
        const index_t n = A * M;
        std::vector<T> score(static_cast<std::size_t>(n)), scratch(static_cast<std::size_t>(n));
        index_t candidates = 0;
#pragma omp parallel for schedule(static) reduction(+ : candidates)
        for (index_t a = 0; a < A; ++a) {
            const T w = weighted ? anchor_weights(a) : T(1);
            const T* row = mag.data() + a * mag.stride(0);
            T* out = score.data() + a * M;
            if (active[a]) {
                for (index_t m = 0; m < M; ++m) out[m] = row[m] * w;
                candidates += M;
            } else {
                for (index_t m = 0; m < M; ++m) out[m] = T(-1);
            }
        }
        const index_t keep = kept_count(options.ratio, candidates);
        std::vector<index_t> kept;
        kept.reserve(static_cast<std::size_t>(keep));
        top_by_threshold(score.data(), n, keep, scratch.data(), kept);
        result.indices = Tensor<index_t>(Shape{static_cast<index_t>(kept.size()), 2});
        for (std::size_t t = 0; t < kept.size(); ++t) {
            mask[kept[t]] = 1;
            result.indices(static_cast<index_t>(t), 0) = kept[t] / M;
            result.indices(static_cast<index_t>(t), 1) = kept[t] % M;
        }
        return result;
    }
};
}  // namespace detail

// One class for every device: the shape and option checks are shared; only
// detail::FilterPasses<T, Device> differs. GradFilter<T, cuda> needs surgery/cuda/filter.cuh.
template <class T, class Device = cpu>
class GradFilter {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "GradFilter works on float or double");
    using Passes = detail::FilterPasses<T, Device>;

public:
    struct Arguments {
        ConstView<T, Device> magnitudes;      // A x M pair-gradient magnitudes (|dL/ds|), finite, >= 0
        ConstView<T, Device> anchor_weights;  // optional [A], finite, >= 0; a default (null) view means none
    };

    explicit GradFilter(FilterOptions options = {}) : options_(options) {}
    const FilterOptions& options() const { return options_; }

    // Shapes and options; the values are checked by operator() (on the device where they live).
    static void check(const Arguments& args, const FilterOptions& options) {
        detail::check_filter_shapes<T, Device>("GradFilter", args.magnitudes, args.anchor_weights, options);
    }
    // Bytes of scratch the filter allocates internally.
    std::size_t workspace_size(const Arguments& args) const {
        check(args, options_);
        return Passes::workspace_bytes(args.magnitudes.dim(0), args.magnitudes.dim(1), options_);
    }

    // Runs on `stream`; returns when the result is ready.
    BasicFilterResult<Device> operator()(const Arguments& args,
                                         Stream<Device> stream = current_stream<Device>()) const {
        check(args, options_);
        return Passes::select(args.magnitudes, args.anchor_weights, options_, stream);
    }

private:
    FilterOptions options_;
};

// One-call form on any device; returns when the result is ready (GradFilter<T, cuda> needs
// surgery/cuda/filter.cuh).
template <class T, class Device>
BasicFilterResult<Device> filter_pairs(ConstView<T, Device> magnitudes, const FilterOptions& options = {},
                                       ConstView<T, std::type_identity_t<Device>> anchor_weights = {},
                                       Stream<Device> stream = current_stream<Device>()) {
    return GradFilter<T, Device>(options)({magnitudes, anchor_weights}, stream);
}

}  // namespace gcl::surgery
