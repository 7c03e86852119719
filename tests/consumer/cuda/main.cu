// One GCL pre-training step on a GPU, written as a user of the installed package writes it: a
// pre-training model and its parameters on the device, GCL's objective, one SGD step. Without a
// GPU it says so and exits 77.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

#include "gcl/cuda.cuh"

namespace nn = gcl::nn;
namespace tr = gcl::train;

int main() try {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("SKIPPED: no CUDA device available; gcl_consumer_cuda compiled but did not run\n");
        return 77;
    }
    nn::ParameterArena<float, gcl::cuda> arena;
    nn::PretrainModel<float, gcl::cuda> model(arena, {.encoder = {.in_channels = 1, .depth = 3, .base_width = 16}}, 1);
    tr::GclObjective<float, gcl::cuda> objective(model, arena, {});
    gcl::optim::SGD<float, gcl::cuda> sgd({.learning_rate = 0.05, .momentum = 0.9});

    // 4 images in two views each (views 1 then views 2), under 3 meta labels.
    gcl::Tensor<float, gcl::cuda> images(gcl::Shape{8, 1, 64, 64});
    gcl::Rng rng(7);
    gcl::ops::fill_normal(images.view(), rng);
    const gcl::Tensor<std::int64_t> host_meta = gcl::Tensor<std::int64_t>::from(
        gcl::Shape{3, 8}, {0, 0, 1, 1, 0, 0, 1, 1,    // patient
                           0, 1, 0, 1, 0, 1, 0, 1,    // cardiac phase
                           0, 1, 1, 0, 0, 1, 1, 0});  // slice position
    const gcl::Tensor<std::int64_t, gcl::cuda> meta = gcl::ops::host_to_device<gcl::cuda>(host_meta);

    const tr::GclStepReport r = objective.gradient(images.cview(), meta.cview(), 0);
    sgd.step(arena);
    std::printf("gcl_consumer_cuda: one GCL step on the GPU, total loss %.4f, %lld projections\n", r.total,
                static_cast<long long>(r.projections));
    return 0;
} catch (const gcl::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
