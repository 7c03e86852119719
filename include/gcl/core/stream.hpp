#pragma once
// Stream<D>: the ordered queue a device's kernels run on; every operator object's run() takes one.
// On the cpu, work runs in the calling thread in program order, so the default stream has no
// state and nothing to wait for. Stream<cuda> (backend/cuda/stream.cuh, nvcc only) wraps a
// cudaStream_t.
#include "gcl/core/device.hpp"

namespace gcl {

template <class Device>
struct Stream;

template <>
struct Stream<cpu> {
    void synchronize() const {}
};

}  // namespace gcl
