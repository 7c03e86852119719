#pragma once
// cuBLAS and cuDNN handles, created lazily and cached per host thread and device (a handle must
// not be shared between threads that use it concurrently). Each call sets the handle's stream to
// the current stream, so library calls queue with gcl's own kernels.
#include <map>
#include <memory>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/stream.cuh"

namespace gcl::cuda_detail {

inline int current_device() {
    int device = 0;
    GCL_CUDA_CHECK(cudaGetDevice(&device));
    return device;
}

inline cublasHandle_t cublas_handle() {
    struct Deleter {
        void operator()(cublasContext* h) const { cublasDestroy(h); }
    };
    thread_local std::map<int, std::unique_ptr<cublasContext, Deleter>> handles;
    auto& slot = handles[current_device()];
    if (!slot) {
        cublasHandle_t h = nullptr;
        GCL_CUBLAS_CHECK(cublasCreate(&h));
        slot.reset(h);
    }
    GCL_CUBLAS_CHECK(cublasSetStream(slot.get(), stream()));
    return slot.get();
}

inline cudnnHandle_t cudnn_handle() {
    struct Deleter {
        void operator()(cudnnContext* h) const { cudnnDestroy(h); }
    };
    thread_local std::map<int, std::unique_ptr<cudnnContext, Deleter>> handles;
    auto& slot = handles[current_device()];
    if (!slot) {
        cudnnHandle_t h = nullptr;
        GCL_CUDNN_CHECK(cudnnCreate(&h));
        slot.reset(h);
    }
    GCL_CUDNN_CHECK(cudnnSetStream(slot.get(), stream()));
    return slot.get();
}

}  // namespace gcl::cuda_detail
