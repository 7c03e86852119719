#pragma once
// BatchUploader<D>: moves a batch the data pipeline built on the host to device D, for
// device-generic training loops. One call on every device:
//
//   gcl::BatchUploader<D> uploader;                            // one per stream of batches
//   Tensor<float, D> images = uploader.upload(std::move(host_images));
//
// On the cpu the batch is moved (no copy). On cuda (backend/cuda/batch_uploader.cuh, found when
// the translation unit includes gcl/cuda.cuh) it is copied into page-locked staging memory and
// from there to the device on the uploader's own copy stream; upload returns before that copy
// ends, and kernels on the default stream see the batch's values (docs/cuda.md, "Pinned staging
// and asynchronous uploads"). Both take a host Tensor or a contiguous host view, and reject a
// strided view with the same gcl::Error, so code that runs on the cpu runs on cuda.
#include <type_traits>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl {

template <class Device>
class BatchUploader;

namespace detail {
template <class T>
void check_uploadable(TensorView<T, cpu> host) {
    check(host.is_contiguous(), "BatchUploader::upload", "the host view of shape ", host.shape(),
          " is not contiguous; upload a contiguous copy (Tensor::copy_of)");
}
}  // namespace detail

template <>
class BatchUploader<cpu> {
public:
    template <class T>
    Tensor<T, cpu> upload(Tensor<T, cpu> host) {
        return host;
    }
    template <class T>
    Tensor<std::remove_const_t<T>, cpu> upload(TensorView<T, cpu> host) {
        detail::check_uploadable(host);
        return Tensor<std::remove_const_t<T>, cpu>::copy_of(host);
    }
};

}  // namespace gcl
