#pragma once
// The process's pool of page-locked (pinned) host memory: the staging blocks from which
// BatchUploader<cuda> copies batches to the device asynchronously. The device copies pinned
// memory by DMA, without the driver's own staging of pageable memory, and can do so while the
// host carries on. Pinning is slow (cudaHostAlloc maps and locks pages; cudaFreeHost waits for
// the device), so freed blocks are kept for reuse by the same CachingPool that keeps device
// memory (core/caching_pool.hpp: size classes, statistics, the out-of-memory retry).
//
//   gcl::cuda_pinned_stats().source_allocations   // cudaHostAlloc calls so far
//   gcl::cuda_release_cached_pinned_memory();     // cached blocks back to the driver (cudaFreeHost)
//
// Blocks are portable (cudaHostAllocPortable): any device may copy from them, so they are
// cached once for all devices.
#include <cstddef>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/core/caching_pool.hpp"

namespace gcl {

namespace cuda_detail {
// CachingPool's source: page-locked host memory.
struct CudaPinnedMemory {
    static constexpr const char* memory = "page-locked host memory";
    static void* allocate(std::size_t bytes) {
        void* block = nullptr;
        return GCL_CUDA_CHECK_ALLOCATION(cudaHostAlloc(&block, bytes, cudaHostAllocPortable)) ? block : nullptr;
    }
    static void release(void* block) noexcept { cudaFreeHost(block); }  // no remedy for a failure here
    static int current_device() { return 0; }                           // portable: one cache for all
};
}  // namespace cuda_detail

// Never destroyed, like cuda_memory_pool(): at exit the driver unpins the memory itself.
inline CachingPool<cuda_detail::CudaPinnedMemory>& cuda_pinned_pool() {
    static auto* pool = new CachingPool<cuda_detail::CudaPinnedMemory>();
    return *pool;
}
inline CachingPoolStats cuda_pinned_stats() { return cuda_pinned_pool().stats(); }
inline void cuda_release_cached_pinned_memory() { cuda_pinned_pool().release_cached(); }

}  // namespace gcl
