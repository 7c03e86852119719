#pragma once
// Buffer<T, cuda>: an owning, zero-initialised device allocation (256-byte aligned), taken from
// the process's caching pool: a steady training step, which builds and drops the same
// temporaries every time, calls cudaMalloc only in its first steps.
//
//   gcl::cuda_memory_stats().source_allocations   // cudaMalloc calls so far
//   gcl::cuda_release_cached_memory();            // cached blocks back to the driver (cudaFree)
//   gcl::cuda_release_stream_memory(stream);      // before destroying a stream gcl allocated on
//                                                 // (backend/cuda/scratch.cuh)
//
// A buffer belongs to the stream that was current when it was made (stream()): it is zeroed there,
// and its freed block is reused at once, but only by the next allocation of its size class for
// that same stream, so the previous owner's kernels finish before the new owner's start. A
// buffer that work on another stream also uses must outlive that work (synchronise the other
// stream, or make the buffer's stream wait for it, before the buffer is destroyed).
#include <cstddef>
#include <utility>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/stream.cuh"
#include "gcl/core/buffer.hpp"
#include "gcl/core/caching_pool.hpp"

namespace gcl {

namespace cuda_detail {
// CachingPool's source: the current device's memory.
struct CudaMemory {
    static constexpr const char* memory = "device memory";
    static void* allocate(std::size_t bytes) {
        void* block = nullptr;
        return GCL_CUDA_CHECK_ALLOCATION(cudaMalloc(&block, bytes)) ? block : nullptr;
    }
    static void release(void* block) noexcept { cudaFree(block); }  // no remedy for a failure here
    static int current_device() {
        int device = 0;
        GCL_CUDA_CHECK(cudaGetDevice(&device));
        return device;
    }
};
}  // namespace cuda_detail

// The process's pool of device memory. Never destroyed: buffers in static storage may outlive
// any other static, and at exit the driver takes the memory back itself.
inline CachingPool<cuda_detail::CudaMemory>& cuda_memory_pool() {
    static auto* pool = new CachingPool<cuda_detail::CudaMemory>();
    return *pool;
}
inline CachingPoolStats cuda_memory_stats() { return cuda_memory_pool().stats(); }
inline void cuda_release_cached_memory() { cuda_memory_pool().release_cached(); }

template <class T>
class Buffer<T, cuda> {
public:
    Buffer() = default;
    explicit Buffer(std::size_t size) : size_(size), stream_(cuda_detail::stream()) {
        if (size_ == 0) return;
        data_ = static_cast<T*>(cuda_memory_pool().allocate(bytes(), stream_));
        const cudaError_t zeroed = cudaMemsetAsync(data_, 0, bytes(), stream_);
        if (zeroed != cudaSuccess) {
            cuda_memory_pool().release(data_);
            GCL_CUDA_CHECK(zeroed);
        }
    }
    // A copy on the current stream, which it belongs to.
    Buffer(const Buffer& other) : Buffer(other.size_) {
        if (size_) GCL_CUDA_CHECK(cudaMemcpyAsync(data_, other.data_, bytes(), cudaMemcpyDeviceToDevice, stream_));
    }
    Buffer(Buffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)),
          size_(std::exchange(other.size_, 0)),
          stream_(std::exchange(other.stream_, nullptr)) {}
    Buffer& operator=(Buffer other) noexcept {
        swap(other);
        return *this;
    }
    ~Buffer() { cuda_memory_pool().release(data_); }

    void swap(Buffer& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
        std::swap(stream_, other.stream_);
    }

    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }
    std::size_t bytes() const { return size_ * sizeof(T); }
    // The stream the buffer was made on, whose later allocations may reuse its block.
    Stream<cuda> stream() const { return stream_; }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
    cudaStream_t stream_ = nullptr;
};

}  // namespace gcl
