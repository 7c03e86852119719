#pragma once
// Every CUDA runtime, cuBLAS and cuDNN call goes through one of these checks; a failure throws
// gcl::Error naming the call, the status and its text.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "gcl/core/error.hpp"

namespace gcl::cuda_detail {

inline const char* cublas_status_text(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
        default: return "unknown cuBLAS status";
    }
}

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
    if (status != cudaSuccess) {
        // A failed call also stays the thread's last error: clear it, so that a caller who catches
        // this error is not blamed for it again by the next launch check (sticky errors remain).
        static_cast<void>(cudaGetLastError());
        fail("cuda", call, " failed with ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ") at ",
             file, ":", line);
    }
}
inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS)
        fail("cublas", call, " failed with ", cublas_status_text(status), " at ", file, ":", line);
}
inline void check_cudnn(cudnnStatus_t status, const char* call, const char* file, int line) {
    if (status != CUDNN_STATUS_SUCCESS)
        fail("cudnn", call, " failed with ", cudnnGetErrorString(status), " at ", file, ":", line);
}

// An allocation call of a CachingPool source: false when the memory is exhausted (the error is
// cleared; the pool gives its cache back and asks again), a throw for any other failure.
inline bool check_allocation(cudaError_t status, const char* call, const char* file, int line) {
    if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        return false;
    }
    check_cuda(status, call, file, line);
    return true;
}

}  // namespace gcl::cuda_detail

#define GCL_CUDA_CHECK(call) ::gcl::cuda_detail::check_cuda((call), #call, __FILE__, __LINE__)
// For a CachingPool source's allocation call: false when out of memory (see check_allocation).
#define GCL_CUDA_CHECK_ALLOCATION(call) ::gcl::cuda_detail::check_allocation((call), #call, __FILE__, __LINE__)
#define GCL_CUBLAS_CHECK(call) ::gcl::cuda_detail::check_cublas((call), #call, __FILE__, __LINE__)
#define GCL_CUDNN_CHECK(call) ::gcl::cuda_detail::check_cudnn((call), #call, __FILE__, __LINE__)
// After a kernel launch: reports launch-configuration errors at the launch site.
#define GCL_CUDA_CHECK_LAUNCH() GCL_CUDA_CHECK(cudaGetLastError())
