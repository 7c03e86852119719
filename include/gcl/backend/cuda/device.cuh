#pragma once
// Device discovery and host <-> device transfers of whole tensors.
#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/copy.cuh"
#include "gcl/core/tensor.hpp"

namespace gcl {

// Number of usable CUDA devices; 0 when there is no GPU or no driver (never throws).
inline int cuda_device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no device" error
        return 0;
    }
    return n;
}

// A device copy of a host tensor (or contiguous view), on the current stream.
template <class T>
Tensor<std::remove_const_t<T>, cuda> to_device(TensorView<T, cpu> host) {
    check(host.is_contiguous(), "to_device", "view of shape ", host.shape(), " must be contiguous");
    Tensor<std::remove_const_t<T>, cuda> out(host.shape());
    if (out.numel()) cuda_detail::copy_to_device(out.data(), host.data(), out.numel() * sizeof(T));
    return out;
}
template <class T>
Tensor<T, cuda> to_device(const Tensor<T, cpu>& host) {
    return to_device(host.cview());
}

// A host copy of a device tensor (or contiguous view), after the current stream's work.
template <class T>
Tensor<std::remove_const_t<T>, cpu> to_host(TensorView<T, cuda> device) {
    check(device.is_contiguous(), "to_host", "view of shape ", device.shape(), " must be contiguous");
    Tensor<std::remove_const_t<T>, cpu> out(device.shape());
    if (out.numel()) cuda_detail::copy_to_host(out.data(), device.data(), out.numel() * sizeof(T));
    return out;
}
template <class T>
Tensor<T, cpu> to_host(const Tensor<T, cuda>& device) {
    return to_host(device.cview());
}

}  // namespace gcl
