// Data-parallel fine-tuning against one process on the same global batch: two steps of a small
// U-Net (double) on every rank of the job (1, 2 or 3 ranks; a global batch of 5 divides by
// neither) must leave the parameters, the batch-norm running estimates and the losses of the
// single-process run, with synchronised batch norm, for batch-wide and per-image Dice. Every
// rank also runs the single-process reference itself.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <optional>
#include <vector>

#include "gcl/dist/data_parallel_segmentation.hpp"
#include "gcl/dist/mpi_communicator.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/train/segmentation_trainer.hpp"
#include "data_parallel_test_support.hpp"

namespace {

const std::vector<gcl::data::Slice>& labelled() {
    static const std::vector<gcl::data::Slice> s =
        gcl::data::phantom_slices({.patients = 2, .slices = 6, .size = 16, .seed = 3, .profile = {}});
    return s;
}

tr::SegmentationTrainerOptions finetune_options(bool per_image_dice) {
    tr::SegmentationTrainerOptions o;
    o.steps = 2;
    o.warmup_steps = 1;
    o.batch_size = 5;  // 3 + 2 on two ranks, 2 + 2 + 1 on three
    o.adam.learning_rate = 1e-2;
    o.seed = 5;
    o.objective.dice.per_image = per_image_dice;
    return o;
}

struct FineTuneRun {
    Tensor<double> parameters, buffers;
    std::vector<tr::SegmentationStepReport> reports;
};

FineTuneRun fine_tune(bool per_image_dice, dist::MpiCommunicator* comm,
              dist::BatchNormSync sync = dist::BatchNormSync::synchronised) {
    nn::ParameterArena<double> arena;
    // A different initialisation on every rank but 0: the broadcast must make them equal.
    const std::uint64_t seed = 4 + (comm ? static_cast<std::uint64_t>(comm->rank()) : 0);
    nn::UNet<double> unet(arena, {.in_channels = 1, .classes = 4, .depth = 2, .base_width = 4}, seed);
    tr::SegmentationTrainer<double, nn::UNet<double>> trainer(unet, arena, labelled(), finetune_options(per_image_dice));
    std::optional<dist::DataParallelSegmentation<double, dist::MpiCommunicator>> dp;
    if (comm) {
        dp.emplace(*comm, arena, trainer.batch_images(), dist::DataParallelSegmentationOptions{.batch_norm = sync});
        trainer.set_batch_exchange(&dp->exchange());
    }
    FineTuneRun r;
    while (!trainer.done()) r.reports.push_back(trainer.step());
    r.parameters = Tensor<double>::copy_of(arena.flat_values());
    r.buffers = Tensor<double>::copy_of(arena.flat_buffers());
    return r;
}

// double: the ranks' partial sums (losses, batch statistics, gradients) add up in another order.
constexpr double finetune_tolerance = 1e-12;

}  // namespace

TEST_CASE("Data-parallel fine-tuning equals one process on the global batch", "[dist][segmentation]") {
    dist::MpiCommunicator comm;
    for (const bool per_image : {false, true}) {
        INFO((per_image ? "per-image" : "batch") << " Dice, " << comm.size() << " ranks");
        const FineTuneRun single = fine_tune(per_image, nullptr);
        const FineTuneRun parallel = fine_tune(per_image, &comm);
        REQUIRE(parallel.reports.size() == single.reports.size());
        double worst_loss = 0;
        for (std::size_t s = 0; s < single.reports.size(); ++s) {
            const tr::SegmentationStepReport &a = parallel.reports[s], &b = single.reports[s];
            for (const auto& [x, y] : {std::pair{a.loss, b.loss}, std::pair{a.cross_entropy, b.cross_entropy},
                                       std::pair{a.dice_loss, b.dice_loss}})
                worst_loss = std::max(worst_loss, std::abs(x - y) / std::abs(y));
        }
        const double dp = relative_difference(parallel.parameters, single.parameters);
        const double db = relative_difference(parallel.buffers, single.buffers);
        std::printf("rank %d of %d, %s Dice: losses differ by %.3g, parameters by %.3g, running estimates by %.3g "
                    "(relative)\n",
                    comm.rank(), comm.size(), per_image ? "per-image" : "batch", worst_loss, dp, db);
        if (comm.size() == 1) {  // the same sums in the same order: bitwise
            CHECK(worst_loss == 0);
            CHECK(dp == 0);
            CHECK(db == 0);
        } else {
            CHECK(worst_loss <= finetune_tolerance);
            CHECK(dp <= finetune_tolerance);
            CHECK(db <= finetune_tolerance);
        }
        // Every rank holds the same parameters.
        Tensor<double> rank0 = Tensor<double>::copy_of(parallel.parameters.cview());
        comm.broadcast(rank0.data(), rank0.numel(), 0);
        CHECK(relative_difference(parallel.parameters, rank0) == 0);
    }
}

TEST_CASE("Data-parallel fine-tuning with local batch norm is another method", "[dist][segmentation]") {
    dist::MpiCommunicator comm;
    if (comm.size() == 1) return;  // one rank: local statistics are the global ones
    const FineTuneRun single = fine_tune(false, nullptr);
    const FineTuneRun local = fine_tune(false, &comm, dist::BatchNormSync::local);
    CHECK(relative_difference(local.parameters, single.parameters) > 1e6 * finetune_tolerance);
}

TEST_CASE("Data-parallel fine-tuning rejects batches that do not fit the ranks", "[dist][segmentation]") {
    dist::MpiCommunicator comm;
    nn::ParameterArena<double> arena;
    nn::UNet<double> unet(arena, {.in_channels = 1, .classes = 4, .depth = 1, .base_width = 2}, 1);
    CHECK_THROWS_WITH((dist::DataParallelSegmentation<double, dist::MpiCommunicator>(comm, arena, comm.size() - 1)),
                      Catch::Contains("cannot give each of"));
    // Set up for another global batch than the trainer draws: every rank raises the same error.
    tr::SegmentationTrainer<double, nn::UNet<double>> trainer(unet, arena, labelled(), finetune_options(false));
    dist::DataParallelSegmentation<double, dist::MpiCommunicator> dp(comm, arena, trainer.batch_images() + 1);
    trainer.set_batch_exchange(&dp.exchange());
    CHECK_THROWS_WITH(trainer.step(), Catch::Contains("made for a global batch of 6"));
}
