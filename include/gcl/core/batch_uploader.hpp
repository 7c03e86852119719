#pragma once
// BatchUploader<D>: moves a batch the data pipeline built on the host to device D, for
// device-generic training loops. One call on every device:
//
//   gcl::BatchUploader<D> uploader;                            // one per stream of batches
//   Tensor<float, D> images = uploader.upload(std::move(host_images));
//
// or in two steps, so that the copy of the next batch runs beside this step's kernels:
//
//   gcl::PendingUpload<float, D> next = uploader.start(host_batch(0));
//   for (...) {
//       Tensor<float, D> images = next.take();               // ready for the current stream
//       next = uploader.start(host_batch(step + 1));         // copying while ...
//       run_step(images);                                    // ... these kernels run
//   }
//
// On the cpu the batch is moved (no copy) and take() hands it back. On cuda
// (backend/cuda/batch_uploader.cuh, found when the translation unit includes gcl/cuda.cuh) it is
// copied into page-locked staging memory and from there to the device on the uploader's own copy
// stream; start returns before that copy ends, and take() makes the stream that was current at
// start() wait for it
// (docs/cuda.md, "Pinned staging and asynchronous uploads"). Both take a host Tensor or a
// contiguous host view, and reject a strided view with the same gcl::Error, so code that runs on
// the cpu runs on cuda.
#include <type_traits>
#include <utility>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl {

template <class Device>
class BatchUploader;
// A batch on its way to Device; take() hands it over, ready for its stream.
template <class T, class Device>
class PendingUpload;

namespace detail {
template <class T>
void check_uploadable(TensorView<T, cpu> host) {
    check(host.is_contiguous(), "BatchUploader", "the host view of shape ", host.shape(),
          " is not contiguous; upload a contiguous copy (Tensor::copy_of)");
}
inline void check_not_taken(bool taken) {
    check(!taken, "PendingUpload::take", "the batch was taken already");
}
}  // namespace detail

template <class T>
class PendingUpload<T, cpu> {
public:
    explicit PendingUpload(Tensor<T, cpu> batch) : batch_(std::move(batch)) {}

    Tensor<T, cpu> take() {
        detail::check_not_taken(taken_);
        taken_ = true;
        return std::move(batch_);
    }

private:
    Tensor<T, cpu> batch_;
    bool taken_ = false;
};

template <>
class BatchUploader<cpu> {
public:
    template <class T>
    PendingUpload<T, cpu> start(Tensor<T, cpu> host) {
        return PendingUpload<T, cpu>(std::move(host));
    }
    template <class T>
    PendingUpload<std::remove_const_t<T>, cpu> start(TensorView<T, cpu> host) {
        detail::check_uploadable(host);
        return PendingUpload<std::remove_const_t<T>, cpu>(Tensor<std::remove_const_t<T>, cpu>::copy_of(host));
    }

    template <class T>
    Tensor<T, cpu> upload(Tensor<T, cpu> host) {
        return host;
    }
    template <class T>
    Tensor<std::remove_const_t<T>, cpu> upload(TensorView<T, cpu> host) {
        return start(host).take();
    }
};

}  // namespace gcl
