#pragma once
// Stream<cuda>: a CUDA stream handle (not owning); default-constructed, the legacy default stream.
// It converts from and to cudaStream_t, so a kernel that takes a Stream<cuda> takes a raw stream too.
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
};

}  // namespace gcl
