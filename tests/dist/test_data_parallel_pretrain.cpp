// Data-parallel GCL pre-training against one process on the same global batch: two steps on
// every rank of the job (1, 2 or 3 ranks) must leave the parameters and the batch-norm running
// estimates of the single-process run, at every mitigation level, with synchronised batch norm.
// Every rank also runs the single-process reference itself.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "gcl/dist/data_parallel_gcl.hpp"
#include "gcl/dist/mpi_communicator.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/train/gcl_pretrainer.hpp"
#include "data_parallel_test_support.hpp"

namespace {

tr::GclPretrainerOptions options(tr::Mitigation level) {
    tr::GclPretrainerOptions o;
    o.steps = 2;
    o.warmup_steps = 1;
    o.sgd.learning_rate = 0.05;
    o.sampler.batch_size = 8;  // 8 images: 4 + 4 on two ranks, 3 + 3 + 2 on three
    o.sampler.seed = 1;
    o.objective.mitigation = level;
    o.objective.pixel_samples = 4;
    return o;
}

struct Run {
    Tensor<float> parameters, buffers;
    std::vector<double> losses;
};

// Two pre-training steps; data parallel over comm when given.
Run pretrain(tr::Mitigation level, dist::MpiCommunicator* comm, dist::BatchNormSync sync = dist::BatchNormSync::synchronised) {
    nn::ParameterArena<float> arena;
    // A different initialisation on every rank but 0: the broadcast must make them equal.
    const std::uint64_t seed = 9 + (comm ? static_cast<std::uint64_t>(comm->rank()) : 0);
    nn::PretrainModel<float> model(arena,
                                   {.encoder = {.in_channels = 1, .depth = 2, .base_width = 4}, .image_hidden = 8,
                                    .image_out = 6, .pixel_hidden = 8, .pixel_out = 6},
                                   seed);
    const tr::GclPretrainerOptions o = options(level);
    tr::GclPretrainer<float> pretrainer(model, arena, pretrain_slices(), o);
    std::optional<dist::DataParallelGcl<float, dist::MpiCommunicator>> dp;
    if (comm) {
        dp.emplace(*comm, arena, o.sampler.batch_size, dist::DataParallelGclOptions{.batch_norm = sync});
        pretrainer.set_batch_exchange(&dp->exchange());
    }
    Run r;
    while (!pretrainer.done()) r.losses.push_back(pretrainer.step().total);
    r.parameters = Tensor<float>::copy_of(arena.flat_values());
    r.buffers = Tensor<float>::copy_of(arena.flat_buffers());
    return r;
}

constexpr double tolerance = 1e-5;  // float: the ranks' partial sums add up in another order

}  // namespace

TEST_CASE("Data-parallel pre-training equals one process on the global batch", "[dist][pretrain]") {
    dist::MpiCommunicator comm;
    for (const tr::Mitigation level : {tr::Mitigation::parameters, tr::Mitigation::representation,
                                       tr::Mitigation::embeddings, tr::Mitigation::none}) {
        INFO("mitigation " << tr::to_string(level) << ", " << comm.size() << " ranks");
        const Run single = pretrain(level, nullptr);
        const Run parallel = pretrain(level, &comm);
        REQUIRE(parallel.losses.size() == single.losses.size());
        for (std::size_t s = 0; s < single.losses.size(); ++s)
            CHECK(std::abs(parallel.losses[s] - single.losses[s]) <= 1e-5 * std::abs(single.losses[s]));
        const double dp = relative_difference(parallel.parameters, single.parameters);
        const double db = relative_difference(parallel.buffers, single.buffers);
        std::printf("rank %d of %d, %s: parameters differ by %.3g, running estimates by %.3g (relative to the largest)\n",
                    comm.rank(), comm.size(), tr::to_string(level), dp, db);
        CHECK(dp <= tolerance);
        CHECK(db <= tolerance);
        // Every rank holds the same parameters.
        Tensor<float> mine = Tensor<float>::copy_of(parallel.parameters.cview()), rank0 = mine;
        comm.broadcast(rank0.data(), rank0.numel(), 0);
        CHECK(relative_difference(mine, rank0) == 0);
    }
}

TEST_CASE("Data-parallel pre-training with local batch norm is another method", "[dist][pretrain]") {
    dist::MpiCommunicator comm;
    if (comm.size() == 1) return;  // one rank: local statistics are the global ones
    const Run single = pretrain(tr::Mitigation::parameters, nullptr);
    const Run local = pretrain(tr::Mitigation::parameters, &comm, dist::BatchNormSync::local);
    CHECK(relative_difference(local.parameters, single.parameters) > 100 * tolerance);
}

TEST_CASE("Data-parallel pre-training rejects a global batch smaller than the ranks", "[dist][pretrain]") {
    dist::MpiCommunicator comm;
    nn::ParameterArena<float> arena;
    CHECK_THROWS_WITH((dist::DataParallelGcl<float, dist::MpiCommunicator>(comm, arena, comm.size() - 1)),
                      Catch::Contains("cannot give each of"));
}
