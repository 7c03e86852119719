// One GCL pre-training step on the GPU, timed: benchmarks/gcl_step.cpp's step (the same model,
// batch, objective options and SGD, gcl_step_setup.hpp) with the model, the batch and the
// objective on cuda, in float. benchmarks/reference/gcl_step.py --device cuda is the same step in
// PyTorch on the GPU; scripts/gpu-check runs the two alternately.
//
//   gcl_step_cuda --model demo|deep --mitigation parameters|representation|none [--steps N] [--warmup W]
//
// Every step ends with cudaDeviceSynchronize, so its wall time holds its kernels. Prints
// `gcl_step_cuda model=<m> mitigation=<l> steps=<n> median_s=<x> min_s=<y> device_mb=<z>
// mallocs=<a> params=<P>` (device_mb: the device memory the caching pool holds at the end, in use
// and cached; mallocs: its cudaMalloc calls over the whole run, warm-up included). Without a GPU
// it prints SKIPPED and exits 0.
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

#include "../gcl_step_setup.hpp"
#include "gcl/cuda.cuh"

namespace {

using namespace gcl_bench;

int run(int argc, char** argv) {
    const Settings s = parse(argc, argv);
    gcl::check(s.dump.empty() && s.passes.empty(), "gcl_step_cuda", "--dump and --passes are gcl_step's (the cpu)");
    if (gcl::cuda_device_count() == 0) {
        std::printf("gcl_step_cuda: SKIPPED, no CUDA device\n");
        return 0;
    }
    const ModelSpec m = spec_of(s.model);
    nn::ParameterArena<float, gcl::cuda> arena;
    nn::PretrainModel<float, gcl::cuda> model(arena, model_options(m), kSeed);
    gcl::Tensor<float> host_images;
    gcl::Tensor<std::int64_t> host_meta;
    make_batch(m.size, host_images, host_meta);
    const gcl::Tensor<float, gcl::cuda> images = gcl::ops::host_to_device<gcl::cuda>(host_images);
    const gcl::Tensor<std::int64_t, gcl::cuda> meta = gcl::ops::host_to_device<gcl::cuda>(host_meta);

    tr::GclObjective<float, gcl::cuda> objective(model, arena, objective_options(s.mitigation));
    gcl::optim::SGD<float, gcl::cuda> sgd(kSgd);
    std::vector<double> seconds, cpu_seconds;
    time_steps(
        s,
        [&](int step) {
            objective.gradient(images.cview(), meta.cview(), static_cast<std::uint64_t>(step));
            sgd.step(arena);
        },
        seconds, cpu_seconds, [] { GCL_CUDA_CHECK(cudaDeviceSynchronize()); });
    const gcl::CachingPoolStats pool = gcl::cuda_memory_stats();
    std::printf("gcl_step_cuda model=%s mitigation=%s steps=%d median_s=%.5f min_s=%.5f device_mb=%.1f mallocs=%zu "
                "params=%lld\n",
                s.model.c_str(), tr::to_string(s.mitigation), s.steps, seconds[seconds.size() / 2], seconds.front(),
                static_cast<double>(pool.bytes_in_use + pool.bytes_cached) / (1024.0 * 1024.0), pool.source_allocations,
                static_cast<long long>(arena.size()));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
