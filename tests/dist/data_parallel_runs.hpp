#pragma once
// The data-parallel training runs, written once over the device and the communicator: the MPI
// tests run them on the cpu over MpiCommunicator (test_data_parallel_*.cpp), the NCCL test on
// cuda over NcclCommunicator (tests/cuda/test_dist_nccl.cu), each against the single-process
// run on the same global batch. comm == nullptr: the single-process run. Results come back to
// the host.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <optional>
#include <vector>

#include "gcl/data/phantom.hpp"
#include "gcl/dist/data_parallel_gcl.hpp"
#include "gcl/dist/data_parallel_segmentation.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/ops/transfer.hpp"
#include "gcl/train/gcl_pretrainer.hpp"
#include "gcl/train/segmentation_trainer.hpp"
#include "data_parallel_test_support.hpp"

namespace dp_runs {

// Two pre-training steps of a small model on 8 images: 4 + 4 on two ranks, 3 + 3 + 2 on three.
inline tr::GclPretrainerOptions pretrain_options(tr::Mitigation level) {
    tr::GclPretrainerOptions o;
    o.steps = 2;
    o.warmup_steps = 1;
    o.sampler.batch_size = 8;
    o.sampler.seed = 1;
    o.objective.mitigation = level;
    o.objective.pixel_samples = 4;
    return o;
}

struct PretrainRun {
    Tensor<float> parameters, buffers;
    std::vector<double> losses;
};

template <class D, class Comm>
PretrainRun pretrain(tr::Mitigation level, Comm* comm, dist::BatchNormSync sync = dist::BatchNormSync::synchronised) {
    nn::ParameterArena<float, D> arena;
    // A different initialisation on every rank but 0: the broadcast must make them equal.
    const std::uint64_t seed = 9 + (comm ? static_cast<std::uint64_t>(comm->rank()) : 0);
    nn::PretrainModel<float, D> model(arena,
                                      {.encoder = {.in_channels = 1, .depth = 2, .base_width = 4}, .image_hidden = 8,
                                       .image_out = 6, .pixel_hidden = 8, .pixel_out = 6},
                                      seed);
    const tr::GclPretrainerOptions o = pretrain_options(level);
    tr::GclPretrainer<float, D> pretrainer(model, arena, pretrain_slices(), o);
    std::optional<dist::DataParallelGcl<float, Comm>> dp;
    if (comm) {
        dp.emplace(*comm, arena, o.sampler.batch_size, dist::DataParallelGclOptions{.batch_norm = sync});
        pretrainer.set_batch_exchange(&dp->exchange());
    }
    PretrainRun r;
    while (!pretrainer.done()) r.losses.push_back(pretrainer.step().total);
    r.parameters = gcl::ops::device_to_host(arena.flat_values());
    r.buffers = gcl::ops::device_to_host(arena.flat_buffers());
    return r;
}

inline const std::vector<gcl::data::Slice>& labelled() {
    static const std::vector<gcl::data::Slice> s =
        gcl::data::phantom_slices({.patients = 2, .slices = 6, .size = 16, .seed = 3, .profile = {}});
    return s;
}

// Two fine-tuning steps of a small U-Net (double) on 5 images: 3 + 2 on two ranks, 2 + 2 + 1 on
// three.
inline tr::SegmentationTrainerOptions finetune_options(bool per_image_dice) {
    tr::SegmentationTrainerOptions o;
    o.steps = 2;
    o.warmup_steps = 1;
    o.batch_size = 5;
    o.adam.learning_rate = 1e-2;
    o.seed = 5;
    o.objective.dice.per_image = per_image_dice;
    return o;
}

struct FineTuneRun {
    Tensor<double> parameters, buffers;
    std::vector<tr::SegmentationStepReport> reports;
};

template <class D, class Comm>
FineTuneRun fine_tune(bool per_image_dice, Comm* comm, dist::BatchNormSync sync = dist::BatchNormSync::synchronised) {
    nn::ParameterArena<double, D> arena;
    // A different initialisation on every rank but 0: the broadcast must make them equal.
    const std::uint64_t seed = 4 + (comm ? static_cast<std::uint64_t>(comm->rank()) : 0);
    nn::UNet<double, D> unet(arena, {.in_channels = 1, .classes = 4, .depth = 2, .base_width = 4}, seed);
    tr::SegmentationTrainer<double, nn::UNet<double, D>> trainer(unet, arena, labelled(), finetune_options(per_image_dice));
    std::optional<dist::DataParallelSegmentation<double, Comm>> dp;
    if (comm) {
        dp.emplace(*comm, arena, trainer.batch_images(), dist::DataParallelSegmentationOptions{.batch_norm = sync});
        trainer.set_batch_exchange(&dp->exchange());
    }
    FineTuneRun r;
    while (!trainer.done()) r.reports.push_back(trainer.step());
    r.parameters = gcl::ops::device_to_host(arena.flat_values());
    r.buffers = gcl::ops::device_to_host(arena.flat_buffers());
    return r;
}

// How far a data-parallel run is from the single-process one: the largest relative difference of
// the losses, and of the parameters and running estimates (relative to the largest value).
struct Differences {
    double losses = 0, parameters = 0, buffers = 0;
};

inline double relative_loss_difference(double got, double expected) { return std::abs(got - expected) / std::abs(expected); }

// The differences of two runs' arenas, with the losses' already found; printed after `who`.
template <class Run>
Differences with_arena_differences(double losses, const Run& parallel, const Run& single, const std::string& who) {
    const Differences d{.losses = losses,
                        .parameters = relative_difference(parallel.parameters, single.parameters),
                        .buffers = relative_difference(parallel.buffers, single.buffers)};
    std::printf("%s: losses differ by %.3g, parameters by %.3g, running estimates by %.3g (relative)\n", who.c_str(),
                d.losses, d.parameters, d.buffers);
    return d;
}

// (`who`: which rank, which run.)
inline Differences differences(const PretrainRun& parallel, const PretrainRun& single, const std::string& who) {
    REQUIRE(parallel.losses.size() == single.losses.size());
    double losses = 0;
    for (std::size_t s = 0; s < single.losses.size(); ++s)
        losses = std::max(losses, relative_loss_difference(parallel.losses[s], single.losses[s]));
    return with_arena_differences(losses, parallel, single, who);
}

inline Differences differences(const FineTuneRun& parallel, const FineTuneRun& single, const std::string& who) {
    REQUIRE(parallel.reports.size() == single.reports.size());
    double losses = 0;
    for (std::size_t s = 0; s < single.reports.size(); ++s) {
        const tr::SegmentationStepReport &x = parallel.reports[s], &y = single.reports[s];
        for (const auto& [u, v] : {std::pair{x.loss, y.loss}, std::pair{x.cross_entropy, y.cross_entropy},
                                   std::pair{x.dice_loss, y.dice_loss}})
            losses = std::max(losses, relative_loss_difference(u, v));
    }
    return with_arena_differences(losses, parallel, single, who);
}

// "rank r of S, <run>".
template <class Comm>
std::string rank_run(const Comm& comm, const std::string& run) {
    return "rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.size()) + ", " + run;
}

}  // namespace dp_runs
