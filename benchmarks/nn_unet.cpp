// U-Net and pre-training model, float, on the host: forward, forward + backward, and one forward
// followed by K backward passes into the rows of a K x P matrix (GradMitigator's parameter level).
// benchmarks/nn_torch.py times the same models in PyTorch with the same batch and threads.
//
//   OMP_NUM_THREADS=2 ./build/benchmarks/nn_unet --benchmark_min_time=3
#include <benchmark/benchmark.h>

#include "gcl/gcl.hpp"

namespace {

namespace nn = gcl::nn;
constexpr gcl::index_t kBatch = 4, kSize = 128;
const nn::UNetOptions kUNet{.in_channels = 1, .classes = 4, .depth = 4, .base_width = 16};
const nn::PretrainModelOptions kPretrain{
    .encoder = kUNet.encoder(), .image_hidden = 128, .image_out = 64, .pixel_hidden = 128, .pixel_out = 64};

gcl::Tensor<float> input() {
    gcl::Rng rng(1);
    gcl::Tensor<float> x({kBatch, 1, kSize, kSize});
    gcl::fill_normal<float>(x.view(), rng);
    return x;
}

void BM_UNetForward(benchmark::State& state) {
    nn::ParameterArena<float> arena;
    nn::UNet<float> unet(arena, kUNet, 1);
    const auto x = input();
    for (auto _ : state) benchmark::DoNotOptimize(unet.forward(x.cview()).data());
    state.counters["parameters"] = static_cast<double>(arena.size());
}

void BM_UNetForwardBackward(benchmark::State& state) {
    nn::ParameterArena<float> arena;
    nn::UNet<float> unet(arena, kUNet, 1);
    const auto x = input();
    const gcl::Tensor<float> dy(unet.output_shape(x.shape()), 1e-3f);
    for (auto _ : state) {
        unet.forward(x.cview());
        arena.begin_backward();
        benchmark::DoNotOptimize(unet.backward(dy.cview()).data());
    }
}

// One forward, then K backward passes (K = state.range(0)), each into its own row of G.
void BM_PretrainForwardKBackward(benchmark::State& state) {
    const auto K = static_cast<gcl::index_t>(state.range(0));
    nn::ParameterArena<float> arena;
    nn::PretrainModel<float> model(arena, kPretrain, 1);
    const auto x = input();
    const gcl::Tensor<float> d_image(model.image_shape(x.shape()), 1e-2f), d_pixel(model.pixel_shape(x.shape()), 1e-3f);
    gcl::Tensor<float> G({K, arena.size()});
    for (auto _ : state) {
        model.forward(x.cview());
        for (gcl::index_t m = 0; m < K; ++m) {
            arena.begin_backward(G.view(), m, gcl::WriteMode::overwrite);
            benchmark::DoNotOptimize(model.backward(d_image.cview(), d_pixel.cview()).input.data());
        }
    }
    state.counters["parameters"] = static_cast<double>(arena.size());
}

}  // namespace

BENCHMARK(BM_UNetForward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_UNetForwardBackward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PretrainForwardKBackward)->Arg(1)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
