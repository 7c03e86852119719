// Throughput of one optimizer step over P flat elements, against a triad over the same number of
// elements as the memory-bandwidth reference. Bytes per element: SGD with momentum reads p, g, b
// and writes p, b (5 values); Adam reads p, g, m, v and writes p, m, v (7 values) and reads g once
// more for the finiteness check; the triad reads two arrays and writes one (3 values).
//
//   ./optim_step --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>

#include "gcl/core/random.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/optim/adam.hpp"
#include "gcl/optim/sgd.hpp"

namespace {

template <class T>
gcl::Tensor<T> random_vector(gcl::index_t n, std::uint64_t seed) {
    gcl::Tensor<T> t(gcl::Shape{n});
    gcl::Rng rng(seed);
    gcl::fill_normal<T>(t.view(), rng, T(0), T(1));
    return t;
}

template <class T>
void BM_Triad(benchmark::State& state) {
    const gcl::index_t n = state.range(0);
    auto a = random_vector<T>(n, 1), b = random_vector<T>(n, 2), c = random_vector<T>(n, 3);
    T* pa = a.data();
    const T* pb = b.data();
    const T* pc = c.data();
    for (auto _ : state) {
#pragma omp parallel for schedule(static)
        for (gcl::index_t i = 0; i < n; ++i) pa[i] = pb[i] + T(0.5) * pc[i];
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * n * 3 * gcl::index_t(sizeof(T)));
}

template <class T, class Optimizer>
void run_flat(benchmark::State& state, Optimizer opt, int values_per_element) {
    const gcl::index_t n = state.range(0);
    auto p = random_vector<T>(n, 4);
    const auto g = random_vector<T>(n, 5);
    for (auto _ : state) {
        opt.step(p.view(), g.cview());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * n * values_per_element * gcl::index_t(sizeof(T)));
}

template <class T>
void BM_SgdMomentum(benchmark::State& state) {
    run_flat<T>(state, gcl::optim::SGD<T>({.learning_rate = 0.01, .momentum = 0.9, .weight_decay = 1e-4}), 6);
}

template <class T>
void BM_Adam(benchmark::State& state) {
    run_flat<T>(state, gcl::optim::Adam<T>({.learning_rate = 1e-3}), 8);
}

// AdamW over an arena of many parameters with alternating options (a U-Net-like layout:
// conv weights with decay, biases and norm affines without).
template <class T>
void BM_AdamWArena(benchmark::State& state) {
    const gcl::index_t n = state.range(0);
    gcl::nn::ParameterArena<T> arena;
    gcl::index_t used = 0;
    for (int k = 0; used < n; ++k) {
        const gcl::index_t weight = std::min<gcl::index_t>(n - used, 64 * 64 * 9);
        arena.add_parameter("w" + std::to_string(k), gcl::Shape{weight});
        used += weight;
        if (used + 64 <= n) {
            arena.add_parameter("b" + std::to_string(k), gcl::Shape{64}, {.weight_decay = false});
            used += 64;
        }
    }
    const auto init = random_vector<T>(arena.size(), 6);
    std::copy(init.data(), init.data() + init.numel(), arena.flat_values().data());
    const auto g = random_vector<T>(arena.size(), 7);
    std::copy(g.data(), g.data() + g.numel(), arena.flat_grads().data());
    gcl::optim::AdamW<T> opt({.learning_rate = 1e-3, .weight_decay = 0.01});
    for (auto _ : state) {
        opt.step(arena);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * arena.size() * 8 * gcl::index_t(sizeof(T)));
    state.counters["parameters"] = double(arena.parameter_count());
}

}  // namespace

// 16M elements (8M in double): far beyond the caches.
BENCHMARK_TEMPLATE(BM_Triad, float)->Arg(1 << 24)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_SgdMomentum, float)->Arg(1 << 24)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Adam, float)->Arg(1 << 24)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_AdamWArena, float)->Arg(1 << 24)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Adam, double)->Arg(1 << 23)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
