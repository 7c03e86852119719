// The NCCL communicator on device memory: the sharded mitigation against the host mitigation of
// the global G, and data-parallel pre-training and fine-tuning on cuda (the runs of
// tests/dist/data_parallel_runs.hpp, which the MPI tests run on the cpu) against one process on
// the same global batch. Run under mpirun with one rank per GPU (one GPU: one rank, which still
// goes through every NCCL call and every exchange). Without a GPU it says so and exits 77 (skipped).
#include <catch2/catch.hpp>
#include <cstdio>
#include <vector>

#include <cuda_runtime.h>
#include <mpi.h>

#include "../surgery/surgery_data.hpp"
#include "dist/data_parallel_runs.hpp"
#include "gcl/cuda.cuh"
#include "gcl/dist/mpi_communicator.hpp"
#include "gcl/dist/nccl_communicator.cuh"
#include "gcl/dist/sharded_mitigate.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "support/catch_session.hpp"

using gcl::Shape;

namespace {
dist::MpiCommunicator* world = nullptr;
int local_device = 0;
}  // namespace

TEMPLATE_TEST_CASE("NCCL sharded mitigation equals the host mitigation of the global G", "[dist][nccl]", float, double) {
    using T = TestType;
    dist::NcclCommunicator gpus(*world, local_device);
    const int S = gpus.size();
    for (const index_t K : {index_t{2}, index_t{3}, index_t{9}})
        for (const index_t P : {index_t{1001}, index_t{100003}}) {
            CAPTURE(K, P, S);
            std::vector<Tensor<T>> g;
            for (int r = 0; r < S; ++r) g.push_back(gcl::testing::conflicting_gradients<T>(K, P, 40 + K * 10 + r));
            Tensor<T> G = Tensor<T>::copy_of(g[0].cview());
            for (int r = 1; r < S; ++r)
                for (index_t i = 0; i < G.numel(); ++i) G.data()[i] += g[r].data()[i];
            for (index_t i = 0; i < G.numel(); ++i) G.data()[i] *= T(1) / static_cast<T>(S);
            Tensor<T> expected(Shape{P});
            const auto reference = gcl::surgery::mitigate<T>(G.cview(), expected.view(), {.seed = 2}, 5);

            const Tensor<T, gcl::cuda> local = gcl::to_device(g[gpus.rank()].cview());
            Tensor<T, gcl::cuda> out(Shape{P});
            dist::ShardedGradMitigator<T, gcl::cuda> mitigator({.seed = 2});
            const auto report = mitigator.run({.local_grads = local.cview(), .out = out.view(), .step = 5}, gpus);
            gpus.synchronize();
            const Tensor<T> result = gcl::to_host(out.cview());
            CHECK(report.conflicting_pairs == reference.conflicting_pairs);
            CHECK(report.projections == reference.projections);
            double worst = 0, scale = 0;
            for (index_t p = 0; p < P; ++p) scale = std::max(scale, std::abs(static_cast<double>(expected(p))));
            for (index_t p = 0; p < P; ++p)
                worst = std::max(worst, std::abs(static_cast<double>(result(p)) - expected(p)) / scale);
            CHECK(worst <= (std::is_same_v<T, double> ? 1e-12 : 2e-5));
        }
}

TEST_CASE("Data-parallel pre-training on cuda over NCCL equals one process on the global batch", "[dist][nccl]") {
    dist::NcclCommunicator gpus(*world, local_device);
    for (const tr::Mitigation level : {tr::Mitigation::parameters, tr::Mitigation::representation,
                                       tr::Mitigation::embeddings, tr::Mitigation::none}) {
        INFO("mitigation " << tr::to_string(level) << ", " << gpus.size() << " ranks");
        const auto single = dp_runs::pretrain<gcl::cuda, dist::NcclCommunicator>(level, nullptr);
        const auto parallel = dp_runs::pretrain<gcl::cuda>(level, &gpus);
        const dp_runs::Differences d =
            dp_runs::differences(parallel, single, dp_runs::rank_run(gpus, std::string("cuda, ") + tr::to_string(level)));
        CHECK(d.losses <= 1e-5);
        CHECK(d.parameters <= 1e-5);
        CHECK(d.buffers <= 1e-5);
        // Every rank holds the same parameters.
        Tensor<float> rank0 = Tensor<float>::copy_of(parallel.parameters.cview());
        world->broadcast(rank0.data(), rank0.numel(), 0);
        CHECK(relative_difference(parallel.parameters, rank0) == 0);
    }
}

TEST_CASE("Data-parallel fine-tuning on cuda over NCCL equals one process on the global batch", "[dist][nccl]") {
    dist::NcclCommunicator gpus(*world, local_device);
    for (const bool per_image : {false, true}) {
        INFO((per_image ? "per-image" : "batch") << " Dice, " << gpus.size() << " ranks");
        const auto single = dp_runs::fine_tune<gcl::cuda, dist::NcclCommunicator>(per_image, nullptr);
        const auto parallel = dp_runs::fine_tune<gcl::cuda>(per_image, &gpus);
        const dp_runs::Differences d =
            dp_runs::differences(parallel, single, dp_runs::rank_run(gpus, per_image ? "cuda, per-image Dice" : "cuda, batch Dice"));
        // double: the ranks' partial sums add up in another order.
        CHECK(d.losses <= 1e-12);
        CHECK(d.parameters <= 1e-12);
        CHECK(d.buffers <= 1e-12);
    }
}

TEST_CASE("The NCCL communicator names a GPU that is not there", "[dist][nccl]") {
    int devices = 0;
    REQUIRE(cudaGetDeviceCount(&devices) == cudaSuccess);
    CHECK_THROWS_WITH(dist::NcclCommunicator(*world, devices), Catch::Contains("asks for GPU"));
}

int main(int argc, char** argv) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("SKIPPED: no CUDA device available; the NCCL tests compiled but did not run\n");
        return 77;
    }
    dist::MpiSession session(argc, argv);
    dist::MpiCommunicator comm;
    world = &comm;
    local_device = comm.rank() % devices;
    const int failed = gcl_test::run_catch_session(argc, argv);
    int worst = 0;
    MPI_Allreduce(&failed, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}
