#pragma once
// Stream<D>: the ordered queue a device's kernels run on. Every backend kernel runs on the calling
// thread's current stream of its device, current_stream<D>(); a StreamGuard<D> sets it for a
// scope, and operator objects (the surgery kernels) take one explicitly, defaulting to it:
//
//   gcl::Stream<gcl::cuda> mine = ...;                    // e.g. from cudaStreamCreate
//   {
//       gcl::StreamGuard<gcl::cuda> on_mine(mine);        // this thread's cuda work goes to `mine`
//       model.forward(x);                                 // kernels, cuBLAS, cuDNN and copies
//   }                                                     // the previous current stream again
//
// On the cpu, work runs in the calling thread in program order, so the default stream has no
// state and nothing to wait for. Stream<cuda> (backend/cuda/stream.cuh, nvcc only) wraps a
// cudaStream_t; its current stream starts as the legacy default stream.
#include "gcl/core/device.hpp"

namespace gcl {

template <class Device>
struct Stream;

template <>
struct Stream<cpu> {
    void synchronize() const {}
    bool capturing() const { return false; }  // cpu work runs at once, never into a graph
};

// The calling thread's current stream of `Device` (specialised per device).
template <class Device>
Stream<Device> current_stream();

template <>
inline Stream<cpu> current_stream<cpu>() {
    return {};
}

// Makes `stream` the calling thread's current stream of `Device` for the guard's lifetime.
template <class Device>
class StreamGuard;

template <>
class StreamGuard<cpu> {
public:
    explicit StreamGuard(Stream<cpu>) {}
    StreamGuard(const StreamGuard&) = delete;
    StreamGuard& operator=(const StreamGuard&) = delete;
};

}  // namespace gcl
