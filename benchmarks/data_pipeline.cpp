// Data pipeline throughput: phantom generation, NIfTI decoding and two-view batch assembly.
//   cmake --build build --target data_pipeline && ./build/benchmarks/data_pipeline
#include <benchmark/benchmark.h>

#include "gcl/data/batch.hpp"
#include "gcl/data/nifti.hpp"
#include "gcl/data/phantom.hpp"
#include "gcl/data/sampler.hpp"

namespace gd = gcl::data;

// The whole phantom data set: patients x 10 slices x 2 phases at 128 x 128.
static void BM_phantom(benchmark::State& state) {
    gd::PhantomOptions o;
    o.patients = state.range(0);
    for (auto _ : state) benchmark::DoNotOptimize(gd::phantom_volumes(o));
    state.counters["slices/s"] = benchmark::Counter(static_cast<double>(state.iterations() * o.patients * 2 * o.slices),
                                                    benchmark::Counter::kIsRate);
}
BENCHMARK(BM_phantom)->Arg(10)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

// Decoding one 128 x 128 x 10 float32 volume from .nii.gz bytes held in memory.
static void BM_parse_nifti_gz(benchmark::State& state) {
    gd::PhantomOptions o;
    const gd::Volume v = gd::phantom_volume(o, 1, gd::Phase::ed);
    const auto bytes = gcl::io::gzip_bytes(gd::encode_nifti<float>(v.image.cview()), "data_pipeline");
    for (auto _ : state) benchmark::DoNotOptimize(gd::parse_nifti<float>(bytes));
    state.SetBytesProcessed(state.iterations() * v.image.numel() * 4);
}
BENCHMARK(BM_parse_nifti_gz)->Unit(benchmark::kMillisecond);

// A contrastive pre-training batch: sampler + two augmented views of B = 32 slices at 128 x 128.
static void BM_two_view_batch(benchmark::State& state) {
    gd::PhantomOptions o;
    o.patients = 20;
    const std::vector<gd::Slice> data = gd::phantom_slices(o);
    gd::SamplerOptions so;
    so.batch_size = 32;
    const gd::BatchSampler sampler(gd::meta_of(data), so);
    std::uint64_t step = 0;
    for (auto _ : state) {
        const auto idx = sampler.batch(step);
        benchmark::DoNotOptimize(gd::two_view_batch(data, idx, gd::AugmentOptions{}, gd::MetaSpec{}, gcl::Rng(1).split(step)));
        ++step;
    }
}
BENCHMARK(BM_two_view_batch)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
