#pragma once
// Buffer<T, Device>: an owning, contiguous allocation of `size` elements on a device.
// The host specialisation lives here (64-byte aligned, zero-initialised); the CUDA one in
// backend/cuda/buffer.cuh.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "gcl/core/device.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/stream.hpp"

namespace gcl {

inline constexpr std::size_t host_alignment = 64;  // one cache line; also AVX-512 friendly

namespace detail {
inline std::atomic<std::uint64_t> host_allocations{0};
}  // namespace detail

// Number of host buffers allocated so far by this process (every Tensor on the host allocates
// through Buffer): tests count the allocations of a training step with it.
inline std::uint64_t host_allocation_count() { return detail::host_allocations.load(std::memory_order_relaxed); }

template <class T, class Device>
class Buffer;

template <class T>
class Buffer<T, cpu> {
    static_assert(std::is_trivially_copyable_v<T>, "gcl::Buffer holds trivially copyable elements");

public:
    Buffer() = default;
    explicit Buffer(std::size_t size) : size_(size) {
        if (size_ == 0) return;
        check(size_ <= max_size(), "Buffer", "cannot allocate ", size_, " elements");
        data_ = static_cast<T*>(::operator new(bytes(), std::align_val_t{host_alignment}));
        detail::host_allocations.fetch_add(1, std::memory_order_relaxed);
        std::memset(static_cast<void*>(data_), 0, bytes());
    }
    Buffer(const Buffer& other) : Buffer(other.size_) {
        if (size_) std::memcpy(static_cast<void*>(data_), other.data_, bytes());
    }
    Buffer(Buffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    Buffer& operator=(Buffer other) noexcept {
        swap(other);
        return *this;
    }
    ~Buffer() { release(); }

    void swap(Buffer& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
    }

    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }
    std::size_t bytes() const { return size_ * sizeof(T); }
    // Host memory serves the one stream of the cpu.
    Stream<cpu> stream() const { return {}; }

private:
    static constexpr std::size_t max_size() { return (~std::size_t{0} / 2) / sizeof(T); }
    void release() noexcept {
        if (data_) ::operator delete(static_cast<void*>(data_), std::align_val_t{host_alignment});
        data_ = nullptr;
        size_ = 0;
    }

    T* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace gcl
