#pragma once
// Meta labels: attributes every slice has for free (patient, slice position, cardiac phase,
// scanner). Each one defines its own positives: two images are a positive pair under a meta
// label when they share its value. The continuous slice position becomes a label through
// partitions: the stack is cut into P equal ranges of position, base to apex.
//
// Encoded meta labels are an integer matrix of K rows (one per meta label) and N columns (one
// per image), which is what the contrastive losses read.
#include <cmath>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/slice.hpp"

namespace gcl::data {

enum class MetaLabel { patient, position, phase, scanner };

inline const char* meta_label_name(MetaLabel m) {
    switch (m) {
        case MetaLabel::patient: return "patient";
        case MetaLabel::position: return "position";
        case MetaLabel::phase: return "phase";
        case MetaLabel::scanner: return "scanner";
    }
    return "unknown";
}

// Partition (0 .. partitions - 1) of a position in [0, 1]; 1 itself falls in the last one.
inline std::int64_t position_partition(double position, int partitions) {
    check(partitions >= 1, "position_partition", "partitions must be at least 1, got ", partitions);
    check(std::isfinite(position) && position >= 0.0 && position <= 1.0, "position_partition", "position ", position,
          " is outside [0, 1]");
    const auto p = static_cast<std::int64_t>(std::floor(position * partitions));
    return std::min<std::int64_t>(p, partitions - 1);
}

// Which meta labels to encode, in which row order, and how positions are binned.
struct MetaSpec {
    std::vector<MetaLabel> labels{MetaLabel::patient, MetaLabel::position, MetaLabel::phase};
    int position_partitions = 4;
};

inline std::int64_t meta_value(const SliceMeta& m, MetaLabel label, int position_partitions) {
    switch (label) {
        case MetaLabel::patient: return m.patient;
        case MetaLabel::position: return position_partition(m.position, position_partitions);
        case MetaLabel::phase: return static_cast<std::int64_t>(m.phase);
        case MetaLabel::scanner: return m.scanner;
    }
    fail("meta_value", "unknown meta label");
}

// The K x N matrix of meta-label values (row k: spec.labels[k]; column n: image n).
inline Tensor<std::int64_t> encode_meta(std::span<const SliceMeta> meta, const MetaSpec& spec) {
    check(!spec.labels.empty(), "encode_meta", "no meta labels chosen");
    const auto k = static_cast<index_t>(spec.labels.size());
    const auto n = static_cast<index_t>(meta.size());
    Tensor<std::int64_t> out(Shape{k, n});
    for (index_t r = 0; r < k; ++r)
        for (index_t c = 0; c < n; ++c)
            out(r, c) = meta_value(meta[static_cast<std::size_t>(c)], spec.labels[static_cast<std::size_t>(r)],
                                   spec.position_partitions);
    return out;
}

// Slice positions as a vector, for thresholded position positives (|s_i - s_j| < delta).
inline Tensor<double> encode_positions(std::span<const SliceMeta> meta) {
    Tensor<double> out(Shape{static_cast<index_t>(meta.size())});
    for (std::size_t i = 0; i < meta.size(); ++i) out(static_cast<index_t>(i)) = meta[i].position;
    return out;
}

// For each meta label (row of a K x N matrix), the smallest number of positives any image has:
// the number of other images sharing its value. Zero means some anchor has no positive.
inline std::vector<index_t> min_positives(ConstView<std::int64_t> meta) {
    check(meta.rank() == 2, "min_positives", "expected a K x N meta-label matrix, got shape ", meta.shape());
    std::vector<index_t> out;
    const index_t k = meta.shape()[0], n = meta.shape()[1];
    for (index_t r = 0; r < k; ++r) {
        std::map<std::int64_t, index_t> counts;
        for (index_t c = 0; c < n; ++c) ++counts[meta(r, c)];
        index_t least = n;
        for (const auto& [value, count] : counts) least = std::min(least, count - 1);
        out.push_back(least);
    }
    return out;
}

}  // namespace gcl::data
