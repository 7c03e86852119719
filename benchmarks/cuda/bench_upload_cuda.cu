// Host batches to the GPU: gcl::to_device (pageable memory, synchronous) against
// BatchUploader<cuda> (pinned staging, a copy stream), alone and beside a training step's kernels.
//
//   ./build/benchmarks/bench_upload_cuda
//
// For float batches of 2, 8 and 32 MiB it reports, over 40 repetitions after 5 warm-ups:
// - the rate of each path in GB/s (batch bytes over the host's wall time until the batch is on
//   the device), and how long the host is held by each call (to_device waits for the copy;
//   upload returns once the batch is in staging memory);
// - a loop of steps, each a kernel as long as one pageable copy, fed three ways: to_device then
//   the kernel; upload then the kernel; and start() of the next batch before this step's kernel
//   (take() the batch, start the next, run the kernel), the form in which the copy runs beside
//   the kernel. It prints milliseconds per step and the last form's speed-up over the first.
// The last line sums up the 8 MiB batch (scripts/gpu-check prints it).
// Prints SKIPPED and exits 0 without a GPU.
#include <chrono>
#include <cstdio>

#include "gcl/backend/cuda/batch_uploader.cuh"
#include "gcl/backend/cuda/device.cuh"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// A stand-in for a step's kernels: holds one block for `cycles` clock ticks, then reads the batch.
__global__ void step_kernel(const float* batch, float* sink, long long cycles) {
    const long long start = clock64();
    while (clock64() - start < cycles) {
    }
    if (threadIdx.x == 0) sink[0] += batch[0];
}

constexpr int warm_ups = 5, repetitions = 40;

// Mean seconds per call of f() over `repetitions`, the device drained before and after.
template <class F>
double mean_seconds(F&& f) {
    for (int i = 0; i < warm_ups; ++i) f();
    GCL_CUDA_CHECK(cudaDeviceSynchronize());
    const Clock::time_point start = Clock::now();
    for (int i = 0; i < repetitions; ++i) f();
    GCL_CUDA_CHECK(cudaDeviceSynchronize());
    return seconds_since(start) / repetitions;
}

// Mean seconds the host spends inside one call of f(), the device drained after each call.
template <class F>
double mean_host_seconds(F&& f) {
    double total = 0;
    for (int i = 0; i < warm_ups + repetitions; ++i) {
        const Clock::time_point start = Clock::now();
        f();
        if (i >= warm_ups) total += seconds_since(start);
        GCL_CUDA_CHECK(cudaDeviceSynchronize());
    }
    return total / repetitions;
}

}  // namespace

int main() {
    if (gcl::cuda_device_count() == 0) {
        std::printf("SKIPPED: no CUDA device available; the upload benchmark did not run\n");
        return 0;
    }
    int clock_khz = 0;
    GCL_CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
    gcl::BatchUploader<gcl::cuda> uploader;
    gcl::Tensor<float, gcl::cuda> sink(gcl::Shape{1});

    std::printf("%8s %12s %12s %14s %14s %10s %10s %10s %8s\n", "MiB", "to_device", "upload", "to_device host",
                "upload host", "step ms", "sync ms", "async ms", "speedup");
    char summary[200] = "";
    for (const long mib : {2L, 8L, 32L}) {
        gcl::Tensor<float> host(gcl::Shape{mib << 18});  // mib MiB of floats
        const double gb = static_cast<double>(mib) * (1 << 20) / 1e9;

        const double pageable = mean_seconds([&] { (void)gcl::to_device(host); });
        const double pinned = mean_seconds([&] { (void)uploader.upload(host); });
        const double pageable_host = mean_host_seconds([&] { (void)gcl::to_device(host); });
        const double pinned_host = mean_host_seconds([&] { (void)uploader.upload(host); });

        const long long cycles = static_cast<long long>(pageable * clock_khz * 1e3);
        const auto step = [&](const gcl::Tensor<float, gcl::cuda>& batch) {
            step_kernel<<<1, 32>>>(batch.data(), sink.data(), cycles);
            GCL_CUDA_CHECK_LAUNCH();
        };
        const double step_alone = mean_seconds([&] { step(sink); });
        const double serial = mean_seconds([&] { step(gcl::to_device(host)); });
        const double uploaded = mean_seconds([&] { step(uploader.upload(host)); });
        gcl::PendingUpload<float, gcl::cuda> next = uploader.start(host);
        const double prefetched = mean_seconds([&] {
            gcl::Tensor<float, gcl::cuda> batch = next.take();
            next = uploader.start(host);
            step(batch);
        });
        (void)next.take();

        std::printf("%8ld %9.2f GB/s %7.2f GB/s %11.3f ms %11.3f ms %10.3f %10.3f %10.3f %7.2fx\n", mib, gb / pageable,
                    gb / pinned, pageable_host * 1e3, pinned_host * 1e3, step_alone * 1e3, serial * 1e3,
                    prefetched * 1e3, serial / prefetched);
        std::printf("%8s (upload then the step: %.3f ms per step)\n", "", uploaded * 1e3);
        if (mib == 8)
            std::snprintf(summary, sizeof summary,
                          "8 MiB: to_device %.2f GB/s, upload %.2f GB/s, prefetched steps %.2fx faster", gb / pageable,
                          gb / pinned, serial / prefetched);
    }
    std::printf("%s\n", summary);
    return 0;
}
