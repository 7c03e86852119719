// Data-parallel GCL pre-training against one process on the same global batch: two steps on
// every rank of the job (1, 2 or 3 ranks) must leave the parameters and the batch-norm running
// estimates of the single-process run, at every mitigation level, with synchronised batch norm.
// Every rank also runs the single-process reference itself. (The same runs on GPUs over NCCL:
// tests/cuda/test_dist_nccl.cu.)
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <vector>

#include "gcl/dist/mpi_communicator.hpp"
#include "data_parallel_runs.hpp"

namespace {

using dp_runs::PretrainRun;

PretrainRun pretrain(tr::Mitigation level, dist::MpiCommunicator* comm,
                     dist::BatchNormSync sync = dist::BatchNormSync::synchronised) {
    return dp_runs::pretrain<gcl::cpu>(level, comm, sync);
}

constexpr double tolerance = 1e-5;  // float: the ranks' partial sums add up in another order

}  // namespace

TEST_CASE("Data-parallel pre-training equals one process on the global batch", "[dist][pretrain]") {
    dist::MpiCommunicator comm;
    for (const tr::Mitigation level : {tr::Mitigation::parameters, tr::Mitigation::representation,
                                       tr::Mitigation::embeddings, tr::Mitigation::none}) {
        INFO("mitigation " << tr::to_string(level) << ", " << comm.size() << " ranks");
        const PretrainRun single = pretrain(level, nullptr);
        const PretrainRun parallel = pretrain(level, &comm);
        const dp_runs::Differences d = dp_runs::differences(parallel, single, dp_runs::rank_run(comm, tr::to_string(level)));
        CHECK(d.losses <= 1e-5);
        CHECK(d.parameters <= tolerance);
        CHECK(d.buffers <= tolerance);
        // Every rank holds the same parameters.
        Tensor<float> mine = Tensor<float>::copy_of(parallel.parameters.cview()), rank0 = mine;
        comm.broadcast(rank0.data(), rank0.numel(), 0);
        CHECK(relative_difference(mine, rank0) == 0);
    }
}

TEST_CASE("Data-parallel pre-training with local batch norm is another method", "[dist][pretrain]") {
    dist::MpiCommunicator comm;
    if (comm.size() == 1) return;  // one rank: local statistics are the global ones
    const PretrainRun single = pretrain(tr::Mitigation::parameters, nullptr);
    const PretrainRun local = pretrain(tr::Mitigation::parameters, &comm, dist::BatchNormSync::local);
    CHECK(relative_difference(local.parameters, single.parameters) > 100 * tolerance);
}

TEST_CASE("Data-parallel pre-training rejects a global batch smaller than the ranks", "[dist][pretrain]") {
    dist::MpiCommunicator comm;
    nn::ParameterArena<float> arena;
    CHECK_THROWS_WITH((dist::DataParallelGcl<float, dist::MpiCommunicator>(comm, arena, comm.size() - 1)),
                      Catch::Contains("cannot give each of"));
}
