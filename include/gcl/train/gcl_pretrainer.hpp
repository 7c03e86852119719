#pragma once
// train::GclPretrainer: contrastive pre-training of an encoder with GCL on slices with meta labels.
// Each step draws a batch with positives under every meta label (data::BatchSampler), makes two
// augmented views of every slice, computes the GCL gradient (GclObjective: image- and pixel-wise
// contrast per meta label, GradFilter, GradMitigator) and takes an AdamW (or SGD) step on a cosine
// schedule with linear warm-up. Everything is seeded: the same options and thread count repeat
// exactly.
//
// GclPretrainer<T, D> trains a model on device D (D = gcl::cpu by default). The batch is drawn and
// augmented on the host (the sampler and the augmentation are host code, seeded by the step),
// converted to T there and moved to D once per step (BatchUploader: through pinned staging on
// cuda, a move on the cpu); the objective, the model and the optimizer then run on D. A cuda pre-trainer needs an nvcc
// translation unit that includes gcl/cuda.cuh.
//
//   std::vector<data::Slice> unlabelled = data::phantom_slices({.patients = 48, .size = 64});
//   nn::ParameterArena<float> arena;
//   nn::PretrainModel<float> model(arena, {.encoder = {.depth = 3, .base_width = 16}}, seed);
//   train::GclPretrainer<float> pretrainer(model, arena, unlabelled, options);
//   while (!pretrainer.done()) { auto r = pretrainer.step(); ... }
//   nn::transfer_parameters(arena, unet_arena, {.source_prefix = "encoder."});
//   pretrainer.save("pretrain.gclckpt");     // the whole state; resume() in a trainer built the
//                                            // same way continues exactly (training_state.hpp)
#include <cstdint>
#include <filesystem>
#include <variant>
#include <vector>

#include "gcl/core/batch_uploader.hpp"
#include "gcl/data/batch.hpp"
#include "gcl/data/sampler.hpp"
#include "gcl/data/slice.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/transfer.hpp"
#include "gcl/optim/adam.hpp"
#include "gcl/optim/schedule.hpp"
#include "gcl/optim/sgd.hpp"
#include "gcl/train/gcl_objective.hpp"
#include "gcl/train/training_state.hpp"

namespace gcl::train {

// Gamma, contrast and noise; no flip, rotation or zoom.
inline data::AugmentOptions pretrain_augmentation() {
    data::AugmentOptions a;
    a.flip_horizontal = 0;
    a.max_rotation = 0;
    a.min_scale = a.max_scale = 1;
    a.max_noise = 0.03;
    return a;
}

// AdamW by default: on the phantom, in the same 400 steps, it ends every meta label's image loss,
// the cardiac phase's most of all, further below collapse than SGD with momentum does
// (docs/training.md, "The optimizer and the length of pre-training").
enum class PretrainOptimizer { adamw, sgd };

inline const char* to_string(PretrainOptimizer o) { return o == PretrainOptimizer::sgd ? "sgd" : "adamw"; }

struct GclPretrainerOptions {
    std::int64_t steps = 200;
    std::int64_t warmup_steps = 10;
    // The optimizer, and its options; the other optimizer's options are not used. SGD's rate is
    // the best of 0.05-0.3 on the phantom (docs/training.md).
    PretrainOptimizer optimizer = PretrainOptimizer::adamw;
    optim::AdamOptions adamw = {.learning_rate = 3e-3, .weight_decay = 1e-4};
    optim::SgdOptions sgd = {.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 1e-4};
    double min_learning_rate = 0.0;  // the cosine schedule's floor
    // The chosen optimizer's base learning rate (the schedule's peak), read and set.
    double learning_rate() const { return optimizer == PretrainOptimizer::sgd ? sgd.learning_rate : adamw.learning_rate; }
    void set_learning_rate(double lr) { (optimizer == PretrainOptimizer::sgd ? sgd.learning_rate : adamw.learning_rate) = lr; }
    // Batch size B (2B views per step), the meta labels whose positives every batch guarantees
    // (and that the losses contrast, in this order), position partitions, sampler seed.
    data::SamplerOptions sampler = {};
    // Intensity augmentation only, by default. The two views share their geometry (so that a pixel
    // location is the same anatomy in both), so flips, rotations and zooms cannot teach invariance
    // between the views; they only vary the images across the batch, where they hide what the meta
    // labels are about: a patient's heart orientation and size, and the cavity size that tells the
    // cardiac phase (docs/training.md has the measurements).
    data::AugmentOptions augment = pretrain_augmentation();
    data::ViewGeometry geometry = data::ViewGeometry::shared;  // pixel locations correspond across views
    GclObjectiveOptions objective = {};
    // Instance contrast only (SimCLR): one "label" whose positives are the two views of each image,
    // whatever the meta labels say; the sampler then needs no positives (sampler.positives may be empty).
    bool instance_contrast = false;
    std::uint64_t seed = 0;  // augmentation
};

template <class T, class D = cpu>
class GclPretrainer {
public:
    using value_type = T;
    using device_type = D;
    using Optimizer = std::variant<optim::AdamW<T, D>, optim::SGD<T, D>>;

    GclPretrainer(nn::PretrainModel<T, D>& model, nn::ParameterArena<T, D>& arena, const std::vector<data::Slice>& slices,
                  const GclPretrainerOptions& options)
        : arena_(&arena), slices_(&slices), options_(options), sampler_(data::meta_of(slices), options.sampler),
          objective_(model, arena, options.objective), optimizer_(make_optimizer(options)),
          schedule_(options.learning_rate(), options.warmup_steps, options.steps, options.min_learning_rate),
          spec_{options.sampler.positives, options.sampler.position_partitions} {
        check(!slices.empty(), "train::GclPretrainer", "no slices to pre-train on");
        check(options.instance_contrast || !spec_.labels.empty(), "train::GclPretrainer",
              "no meta labels to contrast (sampler.positives is empty); set instance_contrast for SimCLR-style pre-training");
        if (spec_.labels.empty()) spec_.labels = {data::MetaLabel::patient};  // batches carry some meta row
    }

    bool done() const { return step_ >= options_.steps; }
    std::int64_t steps_done() const { return step_; }
    double learning_rate() const {
        return std::visit([](const auto& o) { return o.learning_rate(); }, optimizer_);
    }
    // The optimizer options.optimizer chose (std::get<optim::SGD<T, D>> for SGD's state).
    Optimizer& optimizer() { return optimizer_; }
    // The meta labels the batches carry (and, unless instance_contrast, the losses contrast).
    const data::MetaSpec& meta_spec() const { return spec_; }
    const GclPretrainerOptions& options() const { return options_; }

    // Data-parallel pre-training: each step takes this rank's share of the global batch of
    // options.sampler.batch_size images, and the objective sees the global batch through the
    // exchange (dist::DataParallelGcl sets it up). nullptr (the default): one process. Not owned.
    void set_batch_exchange(GclBatchExchange<T, D>* exchange) {
        exchange_ = exchange;
        objective_.set_batch_exchange(exchange);
    }

    // The whole training state (parameters, buffers, the optimizer's state, steps done) to `path`,
    // atomically; under data parallel rank 0 writes.
    void save(const std::filesystem::path& path) {
        std::visit([&](const auto& o) { save_trainer_state(path, *arena_, o, step_, identity(), exchange_); }, optimizer_);
    }
    // Continues a run saved by save() of a pre-trainer with the same options and data set size, on
    // any number of ranks the global batch allows; a checkpoint that does not fit raises gcl::Error.
    void resume(const std::filesystem::path& path) {
        step_ = std::visit([&](auto& o) { return resume_trainer_state(path, *arena_, o, identity(), exchange_); },
                           optimizer_);
    }

    // One pre-training step; returns what the objective saw.
    GclStepReport step() {
        check(!done(), "train::GclPretrainer::step", "all ", options_.steps, " steps are done");
        const auto s = static_cast<std::uint64_t>(step_);
        const std::vector<index_t> indices = sampler_.batch(s);
        data::TwoViewBatch batch =
            data::two_view_batch(*slices_, indices, options_.augment, spec_, Rng(options_.seed).split(s), options_.geometry);
        Tensor<std::int64_t> meta_host = std::move(batch.meta);
        if (options_.instance_contrast) {  // image i's two views share value i, nothing else does
            const index_t N = meta_host.dim(1);
            meta_host = Tensor<std::int64_t>(Shape{1, N});
            for (index_t n = 0; n < N; ++n) meta_host(0, n) = n % (N / 2);
        }
        Tensor<T> images_host;
        if constexpr (std::is_same_v<T, float>) {
            images_host = std::move(batch.images);
        } else {
            images_host = Tensor<T>(batch.images.shape());
            ops::convert(batch.images.cview(), images_host.view());
        }
        // The batch on D, once per step (through pinned staging on cuda; a move on the cpu).
        Tensor<T, D> images = uploader_.upload(std::move(images_host));
        Tensor<std::int64_t, D> meta = ops::host_to_device<D>(std::move(meta_host));
        // Data parallel: this rank's share of the global batch (dist/data_parallel_gcl.hpp).
        if (exchange_) {
            images = exchange_->local_rows(images.cview());
            meta = exchange_->local_meta(meta.cview());
        }
        const GclStepReport report = objective_.gradient(images.cview(), meta.cview(), s);
        std::visit(
            [&](auto& o) {
                o.set_learning_rate(schedule_(step_));
                o.step(*arena_);
            },
            optimizer_);
        ++step_;
        return report;
    }

private:
    static Optimizer make_optimizer(const GclPretrainerOptions& o) {
        if (o.optimizer == PretrainOptimizer::sgd) return Optimizer(std::in_place_type<optim::SGD<T, D>>, o.sgd);
        return Optimizer(std::in_place_type<optim::AdamW<T, D>>, o.adamw);
    }

    TrainerIdentity identity() const {
        const GclObjectiveOptions& o = options_.objective;
        TrainerIdentity id{.kind = "gcl_pretrainer",
                .integers = {{"steps", options_.steps},
                             {"warmup_steps", options_.warmup_steps},
                             {"batch_size", options_.sampler.batch_size},
                             {"sampler_seed", static_cast<std::int64_t>(options_.sampler.seed)},
                             {"seed", static_cast<std::int64_t>(options_.seed)},
                             {"slices", static_cast<std::int64_t>(slices_->size())},
                             {"meta_labels", static_cast<std::int64_t>(options_.sampler.positives.size())},
                             {"instance_contrast", options_.instance_contrast ? 1 : 0},
                             {"mitigation", static_cast<std::int64_t>(o.mitigation)},
                             {"pixel_samples", static_cast<std::int64_t>(o.pixel_samples)},
                             {"optimizer", static_cast<std::int64_t>(options_.optimizer)}},
                .reals = {{"learning_rate", options_.learning_rate()},
                          {"min_learning_rate", options_.min_learning_rate},
                          {"temperature", o.temperature},
                          {"pixel_weight", o.pixel_weight}}};
        if (options_.optimizer == PretrainOptimizer::sgd) {
            id.reals.insert(id.reals.end(), {{"momentum", options_.sgd.momentum}, {"weight_decay", options_.sgd.weight_decay}});
        } else {
            const optim::AdamOptions& a = options_.adamw;
            id.reals.insert(id.reals.end(), {{"beta1", a.beta1}, {"beta2", a.beta2}, {"eps", a.eps}, {"weight_decay", a.weight_decay}});
        }
        return id;
    }

    nn::ParameterArena<T, D>* arena_;
    const std::vector<data::Slice>* slices_;
    GclPretrainerOptions options_;
    data::BatchSampler sampler_;
    GclObjective<T, D> objective_;
    Optimizer optimizer_;
    optim::CosineWarmupSchedule schedule_;
    data::MetaSpec spec_;
    std::int64_t step_ = 0;
    GclBatchExchange<T, D>* exchange_ = nullptr;
    BatchUploader<D> uploader_;  // the batches' way to D (core/batch_uploader.hpp)
};

}  // namespace gcl::train
