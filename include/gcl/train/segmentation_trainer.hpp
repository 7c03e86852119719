#pragma once
// train::SegmentationTrainer: supervised fine-tuning of a segmentation network (e.g. a U-Net
// whose encoder was pre-trained with GCL) on labelled slices: random batches, augmentation with
// labels warped alongside, cross-entropy + soft Dice, Adam on a cosine schedule. Seeded.
//
//   train::SegmentationTrainer<float, nn::UNet<float>> trainer(unet, arena, labelled, options);
//   while (!trainer.done()) trainer.step();
//   trainer.save("fine_tune.gclckpt");      // and later, in a trainer built the same way:
//   trainer.resume("fine_tune.gclckpt");    // continues exactly where the saved run was
//
// Data parallel: dist::DataParallelSegmentation dp(comm, arena, trainer.batch_images());
// trainer.set_batch_exchange(&dp.exchange()); every rank then trains on its share of each batch
// and reports the global batch's losses.
//
// The network's device (Net::device_type, e.g. nn::UNet<float, gcl::cuda>) is the trainer's: the
// batch is drawn and augmented on the host, converted to T there and its images moved to the
// device once per step (BatchUploader: through pinned staging on cuda, a move on the cpu); the network, the
// losses and Adam run on the device. A cuda trainer needs an nvcc translation unit that includes
// gcl/cuda.cuh.
#include <cstdint>
#include <filesystem>
#include <type_traits>
#include <vector>

#include "gcl/core/batch_uploader.hpp"
#include "gcl/core/random.hpp"
#include "gcl/data/batch.hpp"
#include "gcl/data/slice.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/transfer.hpp"
#include "gcl/optim/adam.hpp"
#include "gcl/optim/schedule.hpp"
#include "gcl/train/segmentation_objective.hpp"
#include "gcl/train/training_state.hpp"

namespace gcl::train {

struct SegmentationTrainerOptions {
    std::int64_t steps = 300;
    std::int64_t warmup_steps = 10;
    index_t batch_size = 8;
    optim::AdamOptions adam = {.learning_rate = 1e-3};
    double min_learning_rate = 0.0;
    data::AugmentOptions augment = {};
    SegmentationObjectiveOptions objective = {};
    std::uint64_t seed = 0;  // batch draws and augmentation
};

template <class T, class Net>
class SegmentationTrainer {
public:
    using value_type = T;
    using device_type = typename Net::device_type;
    using D = device_type;

    SegmentationTrainer(Net& net, nn::ParameterArena<T, D>& arena, const std::vector<data::Slice>& slices,
                        const SegmentationTrainerOptions& options)
        : net_(&net), arena_(&arena), slices_(&slices), options_(options), objective_(options.objective),
          adam_(options.adam),
          schedule_(options.adam.learning_rate, options.warmup_steps, options.steps, options.min_learning_rate) {
        constexpr std::string_view op = "train::SegmentationTrainer";
        check(!slices.empty(), op, "no labelled slices to train on");
        check(options.batch_size >= 1, op, "batch_size must be at least 1, got ", options.batch_size);
        for (std::size_t i = 0; i < slices.size(); ++i)
            check(slices[i].labelled(), op, "slice ", i, " (patient ", slices[i].meta.patient, ") has no ground truth");
    }

    bool done() const { return step_ >= options_.steps; }
    std::int64_t steps_done() const { return step_; }
    double learning_rate() const { return adam_.learning_rate(); }
    optim::Adam<T, D>& optimizer() { return adam_; }
    const SegmentationTrainerOptions& options() const { return options_; }
    // The images every step draws: the global batch under data parallel.
    index_t batch_images() const { return std::min(options_.batch_size, static_cast<index_t>(slices_->size())); }

    // Data-parallel fine-tuning: each step trains on this rank's share of the global batch of
    // batch_images() slices, and the losses are the global batch's (dist::DataParallelSegmentation
    // sets it up). nullptr (the default): one process. Not owned.
    void set_batch_exchange(SegmentationBatchExchange<T, D>* exchange) {
        exchange_ = exchange;
        objective_.set_batch_exchange(exchange);
    }

    // The whole training state (parameters, buffers, Adam's state, steps done) to `path`,
    // atomically; under data parallel rank 0 writes (training_state.hpp).
    void save(const std::filesystem::path& path) {
        save_trainer_state(path, *arena_, adam_, step_, identity(), exchange_);
    }
    // Continues a run saved by save() of a trainer with the same options and data set size, on any
    // number of ranks the global batch allows; a checkpoint that does not fit raises gcl::Error.
    void resume(const std::filesystem::path& path) {
        step_ = resume_trainer_state(path, *arena_, adam_, identity(), exchange_);
    }

    SegmentationStepReport step() {
        check(!done(), "train::SegmentationTrainer::step", "all ", options_.steps, " steps are done");
        const auto s = static_cast<std::uint64_t>(step_);
        // A batch of distinct slices, uniformly at random (by the step's own stream).
        Rng draw = Rng(options_.seed, 1).split(s);
        const auto n = static_cast<index_t>(slices_->size());
        std::vector<index_t> order = random_permutation(n, draw);
        order.resize(static_cast<std::size_t>(batch_images()));
        data::Batch batch =
            data::augmented_batch(*slices_, order, options_.augment, data::MetaSpec{}, Rng(options_.seed, 2).split(s));
        // Data parallel: every rank drew the same global batch; it trains on its own images.
        const BatchShare share = exchange_ ? exchange_->share(batch.images.dim(0)) : BatchShare{};
        const ConstView<float> own_images = exchange_ ? own_rows(batch.images.cview(), share) : batch.images.cview();
        const ConstView<std::int32_t> labels = exchange_ ? own_rows(batch.labels.cview(), share) : batch.labels.cview();
        // The images in T on the host, then on D once per step.
        Tensor<T> images_host;
        if constexpr (std::is_same_v<T, float>) {
            images_host = exchange_ ? Tensor<T>::copy_of(own_images) : std::move(batch.images);
        } else {
            images_host = Tensor<T>(own_images.shape());
            ops::convert(own_images, images_host.view());
        }
        const Tensor<T, D> images = uploader_.upload(std::move(images_host));  // pinned staging on cuda
        const SegmentationStepReport report = objective_.gradient(*net_, *arena_, images.cview(), labels, share);
        adam_.set_learning_rate(schedule_(step_));
        adam_.step(*arena_);
        ++step_;
        return report;
    }

private:
    template <class V>
    static ConstView<V> own_rows(ConstView<V> global, const BatchShare& share) {
        Shape shape = global.shape();
        const index_t width = global.numel() / shape[0];
        shape[0] = share.count;
        return ConstView<V>(global.data() + share.first * width, shape);
    }

    TrainerIdentity identity() const {
        return {.kind = "segmentation_trainer",
                .integers = {{"steps", options_.steps},
                             {"warmup_steps", options_.warmup_steps},
                             {"batch_size", batch_images()},
                             {"seed", static_cast<std::int64_t>(options_.seed)},
                             {"slices", static_cast<std::int64_t>(slices_->size())}},
                .reals = {{"learning_rate", options_.adam.learning_rate},
                          {"min_learning_rate", options_.min_learning_rate},
                          {"cross_entropy_weight", options_.objective.cross_entropy_weight},
                          {"dice_weight", options_.objective.dice_weight}}};
    }

    Net* net_;
    nn::ParameterArena<T, D>* arena_;
    const std::vector<data::Slice>* slices_;
    SegmentationTrainerOptions options_;
    SegmentationObjective<T, D> objective_;
    optim::Adam<T, D> adam_;
    optim::CosineWarmupSchedule schedule_;
    std::int64_t step_ = 0;
    SegmentationBatchExchange<T, D>* exchange_ = nullptr;
    BatchUploader<D> uploader_;  // the batches' way to D (core/batch_uploader.hpp)
};

}  // namespace gcl::train
