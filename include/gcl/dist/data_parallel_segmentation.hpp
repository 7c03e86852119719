#pragma once
// dist::DataParallelSegmentation: supervised fine-tuning (train::SegmentationTrainer) spread over
// the ranks of a communicator, equal (up to the order of floating-point sums) to one process
// training on the whole global batch.
//
//   dist::MpiCommunicator& comm = ...;                      // inside dist::run_on_ranks
//   train::SegmentationTrainer<float, nn::UNet<float>> trainer(unet, arena, labelled, options);
//   dist::DataParallelSegmentation<float, dist::MpiCommunicator> dp(comm, arena, trainer.batch_images());
//   trainer.set_batch_exchange(&dp.exchange());
//   while (!trainer.done()) trainer.step();                 // the global losses, on every rank
//   (on GPUs: the trainer and arena on cuda and an NcclCommunicator; nccl_communicator.cuh)
//
// What it does:
// - broadcasts rank 0's parameters and buffers, so every rank starts from the same model;
// - the batch: every rank draws the same global batch of B slices (the same seeded draw and
//   augmentation as one process) and trains on its contiguous share (Partition(B, ranks));
// - the losses: cross-entropy's weighted sums (2 doubles) and Dice's per-class sums (3 C doubles,
//   or 3 B C with per-image Dice), host values, are all-reduced through the host communicator
//   before the loss and its gradient are formed, so the loss is the mean over all pixels of the
//   global batch and the Dice of its global sums;
// - batch norm synchronised (the default: the step is the single-process step) or local;
// - the parameter gradient: one all-reduce sum; each rank's is its share of the global loss's
//   gradient, so the sum is the single-process gradient;
// - checkpoints (trainer.save / resume): rank 0 writes, rank 0 reads and sends the bytes.
#include <cstdint>
#include <span>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/dist/communicator.hpp"
#include "gcl/dist/partition.hpp"
#include "gcl/dist/replicated_arena.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/train/segmentation_objective.hpp"

namespace gcl::dist {

struct DataParallelSegmentationOptions {
    BatchNormSync batch_norm = BatchNormSync::synchronised;
};

template <class T, class Comm>
    requires DataParallelCommunicator<Comm, T>
class SegmentationRankExchange final : public train::SegmentationBatchExchange<T, typename Comm::device_type> {
public:
    using device_type = typename Comm::device_type;

    SegmentationRankExchange(Comm& comm, index_t global_images) : comm_(&comm), part_(global_images, comm.size()) {
        check(global_images >= comm.size(), "dist::DataParallelSegmentation", "a global batch of ", global_images,
              " images cannot give each of ", comm.size(), " ranks at least one");
    }

    index_t own_images() const { return part_.counts[static_cast<std::size_t>(comm_->rank())]; }
    index_t first_image() const { return part_.offsets[static_cast<std::size_t>(comm_->rank())]; }

    train::BatchShare share(index_t global_images) override {
        check(global_images == part_.total(), "dist::DataParallelSegmentation", "the trainer drew a batch of ",
              global_images, " images, but the data-parallel setup was made for a global batch of ", part_.total(),
              " (pass trainer.batch_images())");
        return {.first = first_image(), .count = own_images(), .total = part_.total()};
    }

    void sum(std::span<double> values) override {
        host_communicator(*comm_).all_reduce_sum(values.data(), static_cast<index_t>(values.size()));
    }

    void sum_gradient(TensorView<T, device_type> grad) override {
        check(grad.is_contiguous(), "dist::DataParallelSegmentation", "the gradient must be contiguous");
        comm_->all_reduce_sum(grad.data(), grad.numel());
    }

    bool writes_checkpoints() const override { return comm_->rank() == 0; }
    void share_bytes(std::vector<unsigned char>& bytes) override { broadcast_bytes(host_communicator(*comm_), bytes); }

private:
    Comm* comm_;
    Partition part_;
};

template <class T, class Comm>
    requires DataParallelCommunicator<Comm, T>
class DataParallelSegmentation {
public:
    using device_type = typename Comm::device_type;

    DataParallelSegmentation(Comm& comm, nn::ParameterArena<T, device_type>& arena, index_t global_batch_size,
                             const DataParallelSegmentationOptions& options = {})
        : exchange_(comm, global_batch_size), replica_(comm, arena, options.batch_norm) {}

    SegmentationRankExchange<T, Comm>& exchange() { return exchange_; }

private:
    // The exchange first: its checks run before the broadcasts.
    SegmentationRankExchange<T, Comm> exchange_;
    ReplicatedArena<T, Comm> replica_;
};

}  // namespace gcl::dist
