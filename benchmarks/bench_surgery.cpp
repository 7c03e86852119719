// Gradient-surgery kernels against the machine's memory bandwidth.
//
//   OMP_NUM_THREADS=2 ./build/benchmarks/bench_surgery
//
// BM_Triad is a STREAM-style triad (a = b + s c over arrays far larger than the last-level cache)
// in the same binary and with the same threads: the bandwidth the mitigation is compared with.
// BM_MitigatePairedWithTriad alternates the two in every iteration, for a ratio measured under
// the same conditions.
// BM_Mitigate reports bytes_per_second counted as (2 K P + P) * sizeof(T) per call: the Gram pass
// reads G, the combine pass reads G again and writes P values. benchmarks/run_surgery.sh runs this
// beside benchmarks/pytorch_pcgrad.py and prints the summary.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/surgery/filter.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/mitigate_batched.hpp"

namespace {

using gcl::index_t;

// K gradients that conflict: noise plus a shared direction with alternating signs, so about half
// of the pairs have a negative dot product (the same construction as pytorch_pcgrad.py).
template <class T>
gcl::Tensor<T> conflicting_gradients(index_t K, index_t P, std::uint64_t seed) {
    gcl::Tensor<T> g(gcl::Shape{K, P});
    gcl::Rng rng(seed);
    gcl::fill_normal<T>(g.view(), rng);
    gcl::Tensor<T> base(gcl::Shape{P});
    gcl::fill_normal<T>(base.view(), rng);
    for (index_t k = 0; k < K; ++k) {
        const T sign = k % 2 == 0 ? T(1) : T(-1);
        T* row = g.data() + k * P;
        const T* b = base.data();
#pragma omp parallel for schedule(static)
        for (index_t p = 0; p < P; ++p) row[p] += T(2) * sign * b[p];
    }
    return g;
}

// STREAM triad a = b + s c over three arrays of n floats (first touched by the threads that use them).
class Triad {
public:
    explicit Triad(index_t n) : n_(n), a_(static_cast<std::size_t>(n)), b_(a_.size()), c_(a_.size()) {
#pragma omp parallel for schedule(static)
        for (index_t i = 0; i < n_; ++i) {
            a_[i] = 0.0f;
            b_[i] = 1.0f;
            c_[i] = 2.0f;
        }
    }
    void run() {
        const float s = 3.0f;
        float* pa = a_.data();
        const float* pb = b_.data();
        const float* pc = c_.data();
#pragma omp parallel for schedule(static)
        for (index_t i = 0; i < n_; ++i) pa[i] = pb[i] + s * pc[i];
        benchmark::DoNotOptimize(pa);
        benchmark::ClobberMemory();
    }
    index_t bytes() const { return 3 * n_ * static_cast<index_t>(sizeof(float)); }

private:
    index_t n_;
    std::vector<float> a_, b_, c_;
};

// 3 x 2^26 floats (768 MiB), far beyond the last-level cache.
constexpr index_t triad_size = index_t{1} << 26;

void BM_Triad(benchmark::State& state) {
    Triad triad(state.range(0));
    for (auto _ : state) triad.run();
    state.SetBytesProcessed(state.iterations() * triad.bytes());
}
BENCHMARK(BM_Triad)->Arg(triad_size)->UseRealTime()->Unit(benchmark::kMillisecond);

// Mitigation and triad alternating in every iteration, timed separately: the two bandwidths are
// measured under the same conditions (this machine's memory bandwidth drifts with its neighbours).
// The reported time and bytes_per_second are the mitigation's; triad_GBps is the triad measured
// alongside, fraction_of_triad their ratio.
void BM_MitigatePairedWithTriad(benchmark::State& state) {
    using clock = std::chrono::steady_clock;
    const index_t K = state.range(0), P = state.range(1);
    const gcl::Tensor<float> g = conflicting_gradients<float>(K, P, 1);
    gcl::Tensor<float> out(gcl::Shape{P});
    const gcl::surgery::GradMitigator<float> mitigator({.reduction = gcl::surgery::Reduction::sum, .seed = 7});
    const gcl::surgery::GradMitigator<float>::Arguments args{g.cview(), out.view(), 0};
    std::vector<double> workspace(mitigator.workspace_size(args) / sizeof(double) + 1);
    Triad triad(triad_size);
    double mitigate_seconds = 0, triad_seconds = 0;
    for (auto _ : state) {
        const auto t0 = clock::now();
        mitigator.run(args, workspace.data());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
        const auto t1 = clock::now();
        triad.run();
        const auto t2 = clock::now();
        const double m = std::chrono::duration<double>(t1 - t0).count();
        mitigate_seconds += m;
        triad_seconds += std::chrono::duration<double>(t2 - t1).count();
        state.SetIterationTime(m);
    }
    const double bytes = static_cast<double>((2 * K * P + P) * static_cast<index_t>(sizeof(float)));
    const double iterations = static_cast<double>(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<index_t>(bytes));
    const double triad_gbps = iterations * static_cast<double>(triad.bytes()) / triad_seconds / 1e9;
    state.counters["triad_GBps"] = triad_gbps;
    state.counters["fraction_of_triad"] = (iterations * bytes / mitigate_seconds / 1e9) / triad_gbps;
}
BENCHMARK(BM_MitigatePairedWithTriad)
    ->ArgNames({"K", "P"})
    ->Args({4, 16000000})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

template <class T>
void BM_Mitigate(benchmark::State& state) {
    const index_t K = state.range(0), P = state.range(1);
    const gcl::Tensor<T> g = conflicting_gradients<T>(K, P, 1);
    gcl::Tensor<T> out(gcl::Shape{P});
    const gcl::surgery::GradMitigator<T> mitigator({.reduction = gcl::surgery::Reduction::sum, .seed = 7});
    const typename gcl::surgery::GradMitigator<T>::Arguments args{g.cview(), out.view(), 0};
    std::vector<double> workspace(mitigator.workspace_size(args) / sizeof(double) + 1);
    gcl::surgery::MitigateReport report;
    for (auto _ : state) {
        report = mitigator.run(args, workspace.data());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * (2 * K * P + P) * static_cast<index_t>(sizeof(T)));
    state.counters["projections"] = static_cast<double>(report.projections);
    state.counters["conflicts"] = static_cast<double>(report.conflicting_pairs);
}
BENCHMARK(BM_Mitigate<float>)
    ->ArgNames({"K", "P"})
    ->ArgsProduct({{2, 3, 4, 8}, {100000, 1000000, 16000000, 30000000}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Mitigate<double>)->ArgNames({"K", "P"})->Args({4, 16000000})->UseRealTime()->Unit(benchmark::kMillisecond);

// Representation-level form: N samples of K x D.
void BM_MitigateBatched(benchmark::State& state) {
    const index_t N = state.range(0), K = state.range(1), D = state.range(2);
    gcl::Tensor<float> g = conflicting_gradients<float>(K, N * D, 3);
    g.reshape(gcl::Shape{K, N, D});
    gcl::Tensor<float> out(gcl::Shape{N, D});
    const gcl::surgery::BatchedGradMitigator<float> mitigator({.seed = 7});
    for (auto _ : state) {
        mitigator({g.cview().transpose(0, 1), out.view(), 0});
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(state.iterations() * (K * N * D + N * D) * static_cast<index_t>(sizeof(float)));
    state.SetItemsProcessed(state.iterations() * N);
}
BENCHMARK(BM_MitigateBatched)->ArgNames({"N", "K", "D"})->Args({4096, 4, 128})->UseRealTime()->Unit(benchmark::kMillisecond);

// Filter over an A x M matrix of pair-gradient magnitudes.
void BM_Filter(benchmark::State& state) {
    const index_t A = state.range(0), M = state.range(1);
    const bool global = state.range(2) != 0;
    gcl::Tensor<float> mag(gcl::Shape{A, M});
    gcl::Rng rng(5);
    gcl::fill_uniform<float>(mag.view(), rng);
    gcl::surgery::FilterOptions options;
    options.rule = global ? gcl::surgery::FilterRule::top_ratio_global : gcl::surgery::FilterRule::top_k_per_anchor;
    options.k = 16;
    options.ratio = 0.05;
    const gcl::surgery::GradFilter<float> filter(options);
    for (auto _ : state) {
        gcl::surgery::FilterResult r = filter({mag.cview(), {}});
        benchmark::DoNotOptimize(r.mask.data());
    }
    state.SetItemsProcessed(state.iterations() * A * M);
    state.SetBytesProcessed(state.iterations() * A * M * static_cast<index_t>(sizeof(float)));
}
BENCHMARK(BM_Filter)
    ->ArgNames({"A", "M", "global"})
    ->ArgsProduct({{1024, 4096}, {4096}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
