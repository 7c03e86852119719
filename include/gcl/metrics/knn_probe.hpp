#pragma once
// metrics::knn_probe: how well frozen embeddings predict a label, by k nearest neighbours.
//
// Each query embedding takes the majority label of its k most similar reference embeddings
// (cosine similarity; a tie goes to the label with the larger summed similarity, then to the
// smaller label). The accuracy is the fraction of queries predicted right; `chance` is what
// always answering the reference set's most frequent label would score on the same queries, so
// a probe is only informative when accuracy is well above chance.
//
//   auto r = gcl::metrics::knn_probe<float>(ref.cview(), ref_labels.cview(), query.cview(), query_labels.cview(), {.k = 5});
//   r.accuracy, r.chance
//
// A pre-training is checked by one probe per meta label on held-out images
// (train::probe_meta_labels).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::metrics {

struct KnnProbeOptions {
    index_t k = 5;  // neighbours that vote
};

struct KnnProbeResult {
    double accuracy = 0;  // fraction of queries whose predicted label is right
    double chance = 0;    // accuracy of always predicting the most frequent reference label
    index_t queries = 0;
    index_t classes = 0;  // distinct labels among the references
};

namespace detail {
// Rows of x [N, D] scaled to unit length, in double; a zero row stays zero (similar to nothing).
template <class T>
std::vector<double> unit_rows(ConstView<T> x, std::string_view what) {
    const index_t N = x.dim(0), D = x.dim(1);
    std::vector<double> out(static_cast<std::size_t>(N * D));
    for (index_t n = 0; n < N; ++n) {
        double norm = 0;
        for (index_t d = 0; d < D; ++d) {
            const double v = static_cast<double>(x(n, d));
            check(std::isfinite(v), "metrics::knn_probe", what, " embedding ", n, " holds a non-finite value (", v,
                  ") at ", d);
            out[static_cast<std::size_t>(n * D + d)] = v;
            norm += v * v;
        }
        norm = std::sqrt(norm);
        if (norm > 0)
            for (index_t d = 0; d < D; ++d) out[static_cast<std::size_t>(n * D + d)] /= norm;
    }
    return out;
}
}  // namespace detail

template <class T>
KnnProbeResult knn_probe(ConstView<T> reference, ConstView<std::int64_t> reference_labels, ConstView<T> query,
                         ConstView<std::int64_t> query_labels, const KnnProbeOptions& options = {}) {
    constexpr std::string_view op = "metrics::knn_probe";
    check(reference.rank() == 2 && query.rank() == 2, op, "embeddings must be [N, D], got reference ",
          reference.shape(), " and query ", query.shape());
    check(reference.dim(1) == query.dim(1), op, "reference ", reference.shape(), " and query ", query.shape(),
          " embeddings differ in width");
    check(reference_labels.rank() == 1 && reference_labels.dim(0) == reference.dim(0), op, "reference labels ",
          reference_labels.shape(), " do not match reference embeddings ", reference.shape());
    check(query_labels.rank() == 1 && query_labels.dim(0) == query.dim(0), op, "query labels ", query_labels.shape(),
          " do not match query embeddings ", query.shape());
    const index_t R = reference.dim(0), Q = query.dim(0), D = reference.dim(1);
    check(R >= 1 && Q >= 1 && D >= 1, op, "needs at least one reference and one query of width >= 1, got reference ",
          reference.shape(), " and query ", query.shape());
    check(options.k >= 1 && options.k <= R, op, "k must be in [1, ", R, "] (the number of references), got ", options.k);

    const std::vector<double> ref = detail::unit_rows(reference, "reference");
    const std::vector<double> qry = detail::unit_rows(query, "query");

    std::map<std::int64_t, index_t> frequency;
    for (index_t r = 0; r < R; ++r) ++frequency[reference_labels(r)];
    std::int64_t majority = frequency.begin()->first;
    for (const auto& [label, count] : frequency)
        if (count > frequency[majority]) majority = label;

    KnnProbeResult result;
    result.queries = Q;
    result.classes = static_cast<index_t>(frequency.size());
    index_t right = 0, right_by_chance = 0;
    std::vector<double> sim(static_cast<std::size_t>(R));
    std::vector<index_t> order(static_cast<std::size_t>(R));
    for (index_t q = 0; q < Q; ++q) {
        for (index_t r = 0; r < R; ++r) {
            double s = 0;
            for (index_t d = 0; d < D; ++d)
                s += qry[static_cast<std::size_t>(q * D + d)] * ref[static_cast<std::size_t>(r * D + d)];
            sim[static_cast<std::size_t>(r)] = s;
        }
        std::iota(order.begin(), order.end(), index_t{0});
        // The k most similar; equal similarities in reference order, so the result is deterministic.
        std::partial_sort(order.begin(), order.begin() + options.k, order.end(), [&](index_t a, index_t b) {
            const double sa = sim[static_cast<std::size_t>(a)], sb = sim[static_cast<std::size_t>(b)];
            return sa != sb ? sa > sb : a < b;
        });
        std::map<std::int64_t, std::pair<index_t, double>> votes;  // label -> (count, summed similarity)
        for (index_t j = 0; j < options.k; ++j) {
            const index_t r = order[static_cast<std::size_t>(j)];
            auto& v = votes[reference_labels(r)];
            ++v.first;
            v.second += sim[static_cast<std::size_t>(r)];
        }
        auto best = votes.begin();
        for (auto it = votes.begin(); it != votes.end(); ++it)
            if (it->second.first > best->second.first ||
                (it->second.first == best->second.first && it->second.second > best->second.second))
                best = it;
        right += best->first == query_labels(q) ? 1 : 0;
        right_by_chance += majority == query_labels(q) ? 1 : 0;
    }
    result.accuracy = static_cast<double>(right) / static_cast<double>(Q);
    result.chance = static_cast<double>(right_by_chance) / static_cast<double>(Q);
    return result;
}

}  // namespace gcl::metrics
