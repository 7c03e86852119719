#pragma once
// BatchUploader<cuda>: host batch -> pinned staging -> device, on a copy stream of its own.
//
//   gcl::BatchUploader<gcl::cuda> uploader;
//   Tensor<float, cuda> images = uploader.upload(host_images);   // returns before the copy ends
//   run_kernels(images);                                         // current stream: after the copy
//
// start() copies the batch into the next of two pinned staging blocks (StagingRing; the block's
// previous copy is waited for first), queues cudaMemcpyAsync from it on the copy stream and
// returns a PendingUpload holding the device tensor. The host may overwrite or free its batch at
// once and build the next one while the copy runs. The batch belongs to the stream that is
// current at start() (core/stream.hpp), its consumer. Ordering on the device:
// - the copy starts after the work queued on the consumer before start(): the tensor's block
//   comes from the caching pool, whose blocks are reused in that stream's order, and is zeroed
//   there;
// - PendingUpload::take() makes the consumer wait for the copy (an event recorded on the copy
//   stream), so kernels queued on it afterwards need no synchronisation; work queued on it
//   between start() and take() runs beside the copy. upload() is start() then take().
// A PendingUpload destroyed untaken makes the consumer wait too, so its block goes back to the
// pool only once the copy has written it. Work on another stream that reads the batch must wait
// for the consumer first. The uploader must be used from the device that was current when it
// was made; its destructor waits for its copies.
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
    // `batch` is being written by the copy queued on `copy_stream` just before; `consumer` is the
    // stream that will use it.
    PendingUpload(Tensor<T, cuda> batch, cudaStream_t copy_stream, cudaStream_t consumer)
        : batch_(std::move(batch)), consumer_(consumer), copied_(std::make_unique<cuda_detail::ScopedEvent>()) {
        GCL_CUDA_CHECK(cudaEventRecord(copied_->get(), copy_stream));
    }
    PendingUpload(PendingUpload&&) noexcept = default;
    PendingUpload& operator=(PendingUpload&& other) noexcept {
        if (this != &other) {
            order_consumer();  // before this batch's block can go back to the pool
            batch_ = std::move(other.batch_);
            consumer_ = other.consumer_;
            copied_ = std::move(other.copied_);
        }
        return *this;
    }
    ~PendingUpload() { order_consumer(); }

    // The batch, its copy ordered before everything queued on its consumer from now on.
    Tensor<T, cuda> take() {
        detail::check_not_taken(copied_ == nullptr);
        GCL_CUDA_CHECK(cudaStreamWaitEvent(consumer_, copied_->get(), 0));
        copied_.reset();
        return std::move(batch_);
    }

private:
    void order_consumer() noexcept {
        if (copied_) cudaStreamWaitEvent(consumer_, copied_->get(), 0);  // no throw: a destructor's path
        copied_.reset();
    }

    Tensor<T, cuda> batch_;
    cudaStream_t consumer_ = nullptr;
    std::unique_ptr<cuda_detail::ScopedEvent> copied_;  // null once taken
};

template <>
class BatchUploader<cuda> {
public:
    BatchUploader() : state_(std::make_unique<State>()) {}

    template <class T>
    PendingUpload<std::remove_const_t<T>, cuda> start(TensorView<T, cpu> host) {
        using U = std::remove_const_t<T>;
        detail::check_uploadable(host);
        State& s = state();
        int current = 0;
        GCL_CUDA_CHECK(cudaGetDevice(&current));
        check(current == s.device, "BatchUploader", "the uploader was made for device ", s.device, " but device ",
              current, " is current");
        const cudaStream_t consumer = cuda_detail::stream();
        Tensor<U, cuda> batch(host.shape());  // zeroed on the consumer
        const std::size_t bytes = static_cast<std::size_t>(batch.numel()) * sizeof(U);
        if (bytes > 0) {
            auto& slot = s.staging.acquire(bytes);  // after this block's previous copy has finished
            std::memcpy(slot.block, host.data(), bytes);
            GCL_CUDA_CHECK(cudaEventRecord(s.consumer_reached.get(), consumer));
            GCL_CUDA_CHECK(cudaStreamWaitEvent(s.copy_stream, s.consumer_reached.get(), 0));
            GCL_CUDA_CHECK(
                cudaMemcpyAsync(batch.data(), slot.block, bytes, cudaMemcpyHostToDevice, s.copy_stream));
            GCL_CUDA_CHECK(cudaEventRecord(slot.copied.get(), s.copy_stream));
        }
        return PendingUpload<U, cuda>(std::move(batch), s.copy_stream, consumer);
    }
    template <class T>
    PendingUpload<T, cuda> start(const Tensor<T, cpu>& host) {
        return start(host.cview());
    }

    // The batch, ready for kernels on the current stream.
    template <class T>
    Tensor<std::remove_const_t<T>, cuda> upload(TensorView<T, cpu> host) {
        return start(host).take();
    }
    template <class T>
    Tensor<T, cuda> upload(const Tensor<T, cpu>& host) {
        return start(host.cview()).take();
    }

    // The stream the copies run on (for a caller that orders its own streams after it).
    Stream<cuda> copy_stream() const { return state().copy_stream; }

private:
    // Behind a pointer, so the uploader moves (as BatchUploader<cpu> does) while its events and
    // stream stay where the queued copies refer to them.
    struct State {
        int device = 0;
        cudaStream_t copy_stream = nullptr;
        cuda_detail::ScopedEvent consumer_reached;
        StagingRing<cuda_detail::PinnedStaging> staging;

        State() {
            GCL_CUDA_CHECK(cudaGetDevice(&device));
            GCL_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking));
        }
        State(const State&) = delete;
        State& operator=(const State&) = delete;
        // The copies end before the stream goes; the ring then gives its blocks back to the pool.
        ~State() {
            cudaStreamSynchronize(copy_stream);  // no throw from a destructor
            cudaStreamDestroy(copy_stream);
        }
    };
    State& state() const {
        check(state_ != nullptr, "BatchUploader", "used after it was moved from");
        return *state_;
    }

    std::unique_ptr<State> state_;
};

}  // namespace gcl
