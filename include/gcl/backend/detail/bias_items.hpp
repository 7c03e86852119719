#pragma once
// The per-item rules of the per-channel bias on a tensor seen as [outer, channels, inner],
// shared by the CUDA kernels and their host replay in the tests.
#include "gcl/core/config.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::backend::detail {

// The channel of flat element e.
GCL_HOST_DEVICE inline index_t bias_channel(index_t e, index_t channels, index_t inner) {
    return (e / inner) % channels;
}

// Thread `thread` of `threads`' share of db[c]: the elements t, t + threads, ... of channel c's
// outer x inner block, summed in double in that order.
template <class T>
GCL_HOST_DEVICE inline double bias_thread_sum(const T* dy, index_t outer, index_t channels, index_t inner, index_t c,
                                              index_t thread, index_t threads) {
    double sum = 0;
    for (index_t e = thread; e < outer * inner; e += threads) {
        const index_t o = e / inner, i = e % inner;
        sum += static_cast<double>(dy[(o * channels + c) * inner + i]);
    }
    return sum;
}

}  // namespace gcl::backend::detail
