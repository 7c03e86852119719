#pragma once
// The smallest key over n items on the device, for the checks that must name the element a CPU
// scan in index order names first: every item's key goes through an atomicMin, so the answer
// does not depend on the order of the threads. The host waits for the one-word result.
#include <cuda_runtime.h>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/copy.cuh"
#include "gcl/backend/cuda/elementwise.cuh"
#include "gcl/backend/cuda/scratch.cuh"
#include "gcl/backend/detail/reduce_items.hpp"
#include "gcl/core/config.hpp"

namespace gcl::cuda_detail {

inline constexpr unsigned long long no_key = ~0ull;  // an item without a key

template <class KeyOf>
struct MinKeyItem {
    KeyOf key_of;
    unsigned long long* smallest;
    GCL_DEVICE void operator()(index_t i) const {
        const unsigned long long key = key_of(i);
        if (key != no_key) atomicMin(smallest, key);
    }
};

// min over i < n of key_of(i), a device function object returning no_key for an item without
// a key; no_key when no item has one.
template <class KeyOf>
unsigned long long smallest_key(index_t n, const KeyOf& key_of) {
    if (n == 0) return no_key;
    unsigned long long* smallest = scratch<unsigned long long>(1);
    GCL_CUDA_CHECK(cudaMemsetAsync(smallest, 0xff, sizeof *smallest, stream()));
    for_each_item(n, MinKeyItem<KeyOf>{key_of, smallest});
    unsigned long long host = no_key;
    cuda_detail::copy_to_host(&host, smallest, sizeof host);
    return host;
}

template <class Bad>
struct IndexKey {
    Bad bad;
    GCL_DEVICE unsigned long long operator()(index_t i) const {
        return bad(i) ? static_cast<unsigned long long>(i) : no_key;
    }
};

// The first i < n for which the device predicate bad(i) holds, or -1.
template <class Bad>
index_t first_index_where(index_t n, const Bad& bad) {
    const unsigned long long first = smallest_key(n, IndexKey<Bad>{bad});
    return first == no_key ? index_t{-1} : static_cast<index_t>(first);
}

// x[i] is NaN or infinite.
template <class T>
struct NonfiniteAt {
    const T* x;
    GCL_DEVICE bool operator()(index_t i) const { return !backend::detail::finite_value(x[i]); }
};

}  // namespace gcl::cuda_detail
