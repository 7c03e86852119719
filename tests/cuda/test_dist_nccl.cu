// The NCCL communicator and the sharded mitigation on device memory, against the host
// mitigation of the global G; run under mpirun with one rank per GPU (one GPU: one rank, which
// still goes through every NCCL call). Without a GPU it says so and exits 77 (skipped).
#include <catch2/catch.hpp>
#include <cstdio>
#include <vector>

#include <cuda_runtime.h>
#include <mpi.h>

#include "../surgery/surgery_data.hpp"
#include "gcl/backend/cuda/device.cuh"
#include "gcl/dist/cuda/shard_passes.cuh"
#include "gcl/dist/mpi_communicator.hpp"
#include "gcl/dist/nccl_communicator.cuh"
#include "gcl/dist/sharded_mitigate.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "support/catch_session.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace dist = gcl::dist;

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
