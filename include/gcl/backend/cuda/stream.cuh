#pragma once
// Stream<cuda>: a CUDA stream handle (not owning); default-constructed, the legacy default stream.
// It converts from and to cudaStream_t, so a kernel that takes a Stream<cuda> takes a raw stream too.
// current_stream<cuda>() is kept per host thread (core/stream.hpp). A stream belongs to the device
// it was created on: a StreamGuard does not change the current device, so guard a stream only
// while its device is current (cudaSetDevice).
#include <cuda_runtime.h>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/core/stream.hpp"

namespace gcl {

template <>
struct Stream<cuda> {
    cudaStream_t handle = nullptr;

    Stream() = default;
    Stream(cudaStream_t h) : handle(h) {}  // NOLINT: implicit on purpose (see above)
    operator cudaStream_t() const { return handle; }

    void synchronize() const { GCL_CUDA_CHECK(cudaStreamSynchronize(handle)); }
    // True while the work queued on the stream is captured into a CUDA graph: it does not run
    // then, so no one may wait for its results.
    bool capturing() const {
        cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
        GCL_CUDA_CHECK(cudaStreamIsCapturing(handle, &status));
        return status != cudaStreamCaptureStatusNone;
    }
};

namespace cuda_detail {
inline Stream<cuda>& current_stream_slot() {
    thread_local Stream<cuda> current;
    return current;
}
// The stream gcl's kernels, copies and library calls are queued on.
inline cudaStream_t stream() { return current_stream_slot().handle; }
}  // namespace cuda_detail

template <>
inline Stream<cuda> current_stream<cuda>() {
    return cuda_detail::current_stream_slot();
}

template <>
class StreamGuard<cuda> {
public:
    explicit StreamGuard(Stream<cuda> stream) : previous_(cuda_detail::current_stream_slot()) {
        cuda_detail::current_stream_slot() = stream;
    }
    ~StreamGuard() { cuda_detail::current_stream_slot() = previous_; }
    StreamGuard(const StreamGuard&) = delete;
    StreamGuard& operator=(const StreamGuard&) = delete;

private:
    Stream<cuda> previous_;
};

}  // namespace gcl
