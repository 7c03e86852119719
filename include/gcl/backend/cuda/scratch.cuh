#pragma once
// Small device scratch areas kept per host thread, device and stream, so a reduction's partials
// and counters cost no cudaMalloc after the first call. Each call may reuse the previous call's
// memory on the same stream, whose kernels run after the previous caller's: a caller uses one
// area at a time.
#include <cstddef>
#include <map>
#include <utility>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/handles.cuh"

namespace gcl::cuda_detail {

// At least `size` elements of T, contents unspecified.
template <class T>
T* scratch(std::size_t size) {
    thread_local std::map<std::pair<int, cudaStream_t>, Buffer<T, cuda>> areas;
    Buffer<T, cuda>& area = areas[{current_device(), stream()}];
    if (area.size() < size) area = Buffer<T, cuda>(size);
    return area.data();
}

}  // namespace gcl::cuda_detail
