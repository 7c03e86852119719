#pragma once
// Small device scratch areas kept per host thread, device and stream, so a reduction's partials
// and counters (and a convolution's workspace) cost no cudaMalloc after the first call. Each call
// may reuse the previous call's memory on the same stream, whose kernels run after the previous
// caller's: a caller uses one area at a time.
//
//   gcl::cuda_release_stream_memory(stream);   // before cudaStreamDestroy (see below)
#include <cstddef>
#include <map>
#include <utility>
#include <vector>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/handles.cuh"

namespace gcl::cuda_detail {

// This thread's areas of element type T, by (device, stream).
template <class T>
std::map<std::pair<int, cudaStream_t>, Buffer<T, cuda>>& scratch_areas() {
    thread_local std::map<std::pair<int, cudaStream_t>, Buffer<T, cuda>> areas;
    return areas;
}

// For each element type this thread has used, a function that drops its areas of one stream.
inline std::vector<void (*)(int, cudaStream_t)>& scratch_releasers() {
    thread_local std::vector<void (*)(int, cudaStream_t)> releasers;
    return releasers;
}

// At least `size` elements of T, contents unspecified.
template <class T>
T* scratch(std::size_t size) {
    thread_local const bool registered = [] {
        scratch_releasers().push_back([](int device, cudaStream_t s) { scratch_areas<T>().erase({device, s}); });
        return true;
    }();
    static_cast<void>(registered);
    Buffer<T, cuda>& area = scratch_areas<T>()[{current_device(), stream()}];
    if (area.size() < size) area = Buffer<T, cuda>(size);
    return area.data();
}

}  // namespace gcl::cuda_detail

namespace gcl {

// Waits for `stream`, then gives back what gcl keeps for it: the calling thread's scratch areas
// on the current device and the caching pool's blocks cached for it, to the driver. Call it
// before cudaStreamDestroy, once the buffers made on the stream are gone: a later stream may get
// the same handle, and must not take memory that the old one's queued work still uses. (Other
// threads that used the stream keep their scratch areas until they exit.)
inline void cuda_release_stream_memory(Stream<cuda> stream) {
    stream.synchronize();
    for (auto release : cuda_detail::scratch_releasers()) release(cuda_detail::current_device(), stream.handle);
    cuda_memory_pool().release_cached(stream.handle);
}

}  // namespace gcl
