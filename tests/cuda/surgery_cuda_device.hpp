#pragma once
// The cuda adapter of the surgery test bodies (tests/surgery/surgery_device.hpp): host tensors
// to device memory and back, a non-blocking stream, device memory filled with garbage.
#include <cstddef>

#include "../surgery/surgery_device.hpp"
#include "gcl/cuda.cuh"

namespace gcl::testing {

template <>
struct SurgeryDevice<cuda> {
    template <class T>
    static Tensor<T, cuda> upload(const Tensor<T>& host) {
        return to_device(host);
    }
    template <class T>
    static Tensor<T> download(const Tensor<T, cuda>& tensor) {
        return to_host(tensor);
    }
    static surgery::FilterResult download(const surgery::CudaFilterResult& result) { return surgery::to_host(result); }

    // A CUDA stream that does not synchronise with the default stream, destroyed with its scope.
    class SideStream {
    public:
        SideStream() { GCL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
        ~SideStream() { cudaStreamDestroy(stream_); }
        SideStream(const SideStream&) = delete;
        SideStream& operator=(const SideStream&) = delete;
        Stream<cuda> get() const { return stream_; }

    private:
        cudaStream_t stream_ = nullptr;
    };

    // Done before the call returns, so work on any stream sees the bytes.
    static void fill_bytes(void* data, int byte, std::size_t bytes) {
        GCL_CUDA_CHECK(cudaMemset(data, byte, bytes));
        GCL_CUDA_CHECK(cudaDeviceSynchronize());
    }

    // The GPU's Gram passes sum every product in double, for float too.
    template <class T>
    static constexpr bool gram_in_double = true;
};

}  // namespace gcl::testing
