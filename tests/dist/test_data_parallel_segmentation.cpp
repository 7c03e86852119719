// Data-parallel fine-tuning against one process on the same global batch: two steps of a small
// U-Net (double) on every rank of the job (1, 2 or 3 ranks; a global batch of 5 divides by
// neither) must leave the parameters, the batch-norm running estimates and the losses of the
// single-process run, with synchronised batch norm, for batch-wide and per-image Dice. Every
// rank also runs the single-process reference itself. (The same runs on GPUs over NCCL:
// tests/cuda/test_dist_nccl.cu.)
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <vector>

#include "gcl/dist/mpi_communicator.hpp"
#include "data_parallel_runs.hpp"

namespace {

using dp_runs::FineTuneRun;
using dp_runs::finetune_options;
using dp_runs::labelled;

FineTuneRun fine_tune(bool per_image_dice, dist::MpiCommunicator* comm,
                      dist::BatchNormSync sync = dist::BatchNormSync::synchronised) {
    return dp_runs::fine_tune<gcl::cpu>(per_image_dice, comm, sync);
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
        const dp_runs::Differences d =
            dp_runs::differences(parallel, single, dp_runs::rank_run(comm, per_image ? "per-image Dice" : "batch Dice"));
        if (comm.size() == 1) {  // the same sums in the same order: bitwise
            CHECK(d.losses == 0);
            CHECK(d.parameters == 0);
            CHECK(d.buffers == 0);
        } else {
            CHECK(d.losses <= finetune_tolerance);
            CHECK(d.parameters <= finetune_tolerance);
            CHECK(d.buffers <= finetune_tolerance);
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
