#pragma once
// BatchUploader<cuda>: host batch -> pinned staging -> device, on a copy stream of its own.
//
//   gcl::BatchUploader<gcl::cuda> uploader;
//   Tensor<float, cuda> images = uploader.upload(host_images);   // returns before the copy ends
//   run_kernels(images);                                         // default stream: after the copy
//
// start() copies the batch into the next of two pinned staging blocks (StagingRing; the block's
// previous copy is waited for first), queues cudaMemcpyAsync from it on the copy stream and
// returns a PendingUpload holding the device tensor. The host may overwrite or free its batch at
// once and build the next one while the copy runs. Ordering on the device:
// - the copy starts after the work queued on the default stream before start(): the tensor's
//   block comes from the caching pool, whose blocks are reused in default-stream order, and is
//   zeroed there;
// - PendingUpload::take() makes the default stream wait for the copy (an event recorded on the
//   copy stream), so kernels queued after it need no synchronisation; work queued on the default
//   stream between start() and take() runs beside the copy. upload() is start() then take().
// A PendingUpload destroyed untaken makes the default stream wait too, so its block goes back
// to the pool only once the copy has written it. Work on another stream that reads the batch
// must wait for the default stream first. The uploader must be used from the device that was
// current when it was made; its destructor waits for its copies.
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/event.cuh"
#include "gcl/backend/cuda/pinned_pool.cuh"
#include "gcl/backend/cuda/stream.cuh"
#include "gcl/core/batch_uploader.hpp"
#include "gcl/core/staging_ring.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl {

namespace cuda_detail {
// StagingRing's staging: pinned blocks from cuda_pinned_pool(), copies marked by CUDA events.
struct PinnedStaging {
    using Event = ScopedEvent;
    static void* allocate(std::size_t bytes) { return cuda_pinned_pool().allocate(bytes); }
    static void release(void* block) noexcept { cuda_pinned_pool().release(block); }
    // An event never recorded counts as finished.
    static void wait(Event& copied) { GCL_CUDA_CHECK(cudaEventSynchronize(copied.get())); }
};
}  // namespace cuda_detail

template <class T>
class PendingUpload<T, cuda> {
public:
    // `batch` is being written by the copy queued on `copy_stream` just before.
    PendingUpload(Tensor<T, cuda> batch, cudaStream_t copy_stream)
        : batch_(std::move(batch)), copied_(std::make_unique<cuda_detail::ScopedEvent>()) {
        GCL_CUDA_CHECK(cudaEventRecord(copied_->get(), copy_stream));
    }
    PendingUpload(PendingUpload&&) noexcept = default;
    PendingUpload& operator=(PendingUpload&& other) noexcept {
        if (this != &other) {
            order_default_stream();  // before this batch's block can go back to the pool
            batch_ = std::move(other.batch_);
            copied_ = std::move(other.copied_);
        }
        return *this;
    }
    ~PendingUpload() { order_default_stream(); }

    // The batch, its copy ordered before everything queued on the default stream from now on.
    Tensor<T, cuda> take() {
        detail::check_not_taken(copied_ == nullptr);
        GCL_CUDA_CHECK(cudaStreamWaitEvent(nullptr, copied_->get(), 0));
        copied_.reset();
        return std::move(batch_);
    }

private:
    void order_default_stream() noexcept {
        if (copied_) cudaStreamWaitEvent(nullptr, copied_->get(), 0);  // no throw: a destructor's path
        copied_.reset();
    }

    Tensor<T, cuda> batch_;
    std::unique_ptr<cuda_detail::ScopedEvent> copied_;  // null once taken
};

template <>
class BatchUploader<cuda> {
public:
    BatchUploader() {
        GCL_CUDA_CHECK(cudaGetDevice(&device_));
        GCL_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    }
    BatchUploader(const BatchUploader&) = delete;
    BatchUploader& operator=(const BatchUploader&) = delete;
    // The copies end before the stream goes; the ring then gives its blocks back to the pool.
    ~BatchUploader() {
        cudaStreamSynchronize(copy_stream_);  // no throw from a destructor
        cudaStreamDestroy(copy_stream_);
    }

    template <class T>
    PendingUpload<std::remove_const_t<T>, cuda> start(TensorView<T, cpu> host) {
        using U = std::remove_const_t<T>;
        detail::check_uploadable(host);
        int current = 0;
        GCL_CUDA_CHECK(cudaGetDevice(&current));
        check(current == device_, "BatchUploader", "the uploader was made for device ", device_,
              " but device ", current, " is current");
        Tensor<U, cuda> batch(host.shape());  // zeroed on the default stream
        const std::size_t bytes = static_cast<std::size_t>(batch.numel()) * sizeof(U);
        if (bytes > 0) {
            auto& slot = staging_.acquire(bytes);  // after this block's previous copy has finished
            std::memcpy(slot.block, host.data(), bytes);
            GCL_CUDA_CHECK(cudaEventRecord(default_stream_reached_.get(), nullptr));
            GCL_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, default_stream_reached_.get(), 0));
            GCL_CUDA_CHECK(
                cudaMemcpyAsync(batch.data(), slot.block, bytes, cudaMemcpyHostToDevice, copy_stream_));
            GCL_CUDA_CHECK(cudaEventRecord(slot.copied.get(), copy_stream_));
        }
        return PendingUpload<U, cuda>(std::move(batch), copy_stream_);
    }
    template <class T>
    PendingUpload<T, cuda> start(const Tensor<T, cpu>& host) {
        return start(host.cview());
    }

    // The batch, ready for kernels on the default stream.
    template <class T>
    Tensor<std::remove_const_t<T>, cuda> upload(TensorView<T, cpu> host) {
        return start(host).take();
    }
    template <class T>
    Tensor<T, cuda> upload(const Tensor<T, cpu>& host) {
        return start(host.cview()).take();
    }

    // The stream the copies run on (for a caller that orders its own streams after it).
    Stream<cuda> copy_stream() const { return copy_stream_; }

private:
    int device_ = 0;
    cudaStream_t copy_stream_ = nullptr;
    cuda_detail::ScopedEvent default_stream_reached_;
    StagingRing<cuda_detail::PinnedStaging> staging_;
};

}  // namespace gcl
