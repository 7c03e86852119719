#pragma once
// Buffer<T, cuda>: an owning, zero-initialised device allocation (cudaMalloc, 256-byte aligned).
#include <cstddef>
#include <utility>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/core/buffer.hpp"

namespace gcl {

template <class T>
class Buffer<T, cuda> {
public:
    Buffer() = default;
    explicit Buffer(std::size_t size) : size_(size) {
        if (size_ == 0) return;
        GCL_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), bytes()));
        GCL_CUDA_CHECK(cudaMemset(data_, 0, bytes()));
    }
    Buffer(const Buffer& other) : Buffer(other.size_) {
        if (size_) GCL_CUDA_CHECK(cudaMemcpy(data_, other.data_, bytes(), cudaMemcpyDeviceToDevice));
    }
    Buffer(Buffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    Buffer& operator=(Buffer other) noexcept {
        swap(other);
        return *this;
    }
    ~Buffer() {
        if (data_) cudaFree(data_);  // no throw from a destructor; a failure here has no remedy
    }

    void swap(Buffer& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
    }

    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }
    std::size_t bytes() const { return size_ * sizeof(T); }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace gcl
