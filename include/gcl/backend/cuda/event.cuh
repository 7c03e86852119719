#pragma once
// ScopedEvent: a CUDA event (without timing) destroyed with its scope; it orders one stream after
// work queued on another (cudaEventRecord, cudaStreamWaitEvent) and tells the host when that
// work has finished (cudaEventSynchronize).
#include <cuda_runtime.h>

#include "gcl/backend/cuda/check.cuh"

namespace gcl::cuda_detail {

class ScopedEvent {
public:
    ScopedEvent() { GCL_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
    ~ScopedEvent() { cudaEventDestroy(event_); }  // no throw from a destructor
    ScopedEvent(const ScopedEvent&) = delete;
    ScopedEvent& operator=(const ScopedEvent&) = delete;
    cudaEvent_t get() const { return event_; }

private:
    cudaEvent_t event_ = nullptr;
};

}  // namespace gcl::cuda_detail
