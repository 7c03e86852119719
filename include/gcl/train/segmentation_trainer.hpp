#pragma once
// train::SegmentationTrainer: supervised fine-tuning of a segmentation network (e.g. a U-Net
// whose encoder was pre-trained with GCL) on labelled slices: random batches, augmentation with
// labels warped alongside, cross-entropy + soft Dice, Adam on a cosine schedule. Seeded.
//
//   train::SegmentationTrainer<float, nn::UNet<float>> trainer(unet, arena, labelled, options);
//   while (!trainer.done()) trainer.step();
#include <cstdint>
#include <type_traits>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/data/batch.hpp"
#include "gcl/data/slice.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/optim/adam.hpp"
#include "gcl/optim/schedule.hpp"
#include "gcl/train/segmentation_objective.hpp"

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
    SegmentationTrainer(Net& net, nn::ParameterArena<T, cpu>& arena, const std::vector<data::Slice>& slices,
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

    SegmentationStepReport step() {
        check(!done(), "train::SegmentationTrainer::step", "all ", options_.steps, " steps are done");
        const auto s = static_cast<std::uint64_t>(step_);
        // A batch of distinct slices, uniformly at random (by the step's own stream).
        Rng draw = Rng(options_.seed, 1).split(s);
        const auto n = static_cast<index_t>(slices_->size());
        std::vector<index_t> order = random_permutation(n, draw);
        order.resize(static_cast<std::size_t>(std::min(options_.batch_size, n)));
        const data::Batch batch =
            data::augmented_batch(*slices_, order, options_.augment, data::MetaSpec{}, Rng(options_.seed, 2).split(s));
        SegmentationStepReport report;
        if constexpr (std::is_same_v<T, float>) {
            report = objective_.gradient(*net_, *arena_, batch.images.cview(), batch.labels.cview());
        } else {
            Tensor<T> images(batch.images.shape());
            std::copy(batch.images.data(), batch.images.data() + images.numel(), images.data());
            report = objective_.gradient(*net_, *arena_, images.cview(), batch.labels.cview());
        }
        adam_.set_learning_rate(schedule_(step_));
        adam_.step(*arena_);
        ++step_;
        return report;
    }

private:
    Net* net_;
    nn::ParameterArena<T, cpu>* arena_;
    const std::vector<data::Slice>* slices_;
    SegmentationTrainerOptions options_;
    SegmentationObjective<T> objective_;
    optim::Adam<T> adam_;
    optim::CosineWarmupSchedule schedule_;
    std::int64_t step_ = 0;
};

}  // namespace gcl::train
