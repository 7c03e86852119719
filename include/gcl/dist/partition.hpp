#pragma once
// dist::Partition: P columns cut into one contiguous slice per rank. Slice r has P / S columns,
// plus one for the first P % S ranks, so any P and any number of ranks work.
#include <cstddef>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::dist {

struct Partition {
    std::vector<index_t> counts;   // [S] columns of each rank's slice
    std::vector<index_t> offsets;  // [S] first column of each slice

    Partition(index_t P, int ranks) {
        check(P >= 0, "dist::Partition", "negative length ", P);
        check(ranks >= 1, "dist::Partition", "needs at least one rank, got ", ranks);
        counts.resize(static_cast<std::size_t>(ranks));
        offsets.resize(static_cast<std::size_t>(ranks));
        index_t offset = 0;
        for (int r = 0; r < ranks; ++r) {
            counts[r] = P / ranks + (r < P % ranks ? 1 : 0);
            offsets[r] = offset;
            offset += counts[r];
        }
    }
    int ranks() const { return static_cast<int>(counts.size()); }
    index_t total() const { return offsets.back() + counts.back(); }
};

}  // namespace gcl::dist
