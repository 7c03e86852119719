#pragma once
// Small device scratch areas kept per host thread and device, so a reduction's partials and
// counters cost no cudaMalloc after the first call. Each call may reuse the previous call's
// memory: a caller uses one area at a time and finishes with it (it waits for its result)
// before anything else takes it.
#include <cstddef>
#include <map>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/handles.cuh"

namespace gcl::cuda_detail {

// At least `size` elements of T, contents unspecified.
template <class T>
T* scratch(std::size_t size) {
    thread_local std::map<int, Buffer<T, cuda>> areas;
    Buffer<T, cuda>& area = areas[current_device()];
    if (area.size() < size) area = Buffer<T, cuda>(size);
    return area.data();
}

}  // namespace gcl::cuda_detail
