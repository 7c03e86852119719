// The CUDA GradMitigator against the GPU's memory bandwidth.
//
//   ./build/benchmarks/bench_surgery_cuda
//
// For K = 2, 3, 4, 8 and P = 10^6 .. 3 x 10^7 floats it times CudaGradMitigator::run (Gram pass,
// Q to the host, the K x K loop, w^T G) with CUDA events, and reports GB/s counted as
// (2K + 1) P * sizeof(float) bytes per call: the Gram pass reads G, the combine pass reads G again
// and writes P values. Beside it, a device triad (a = b + s c over three arrays of 2^26 floats,
// 768 MiB) is timed in the same binary, alternating with the mitigation in every repetition, so
// the ratio is measured under the same conditions. Prints SKIPPED and exits 0 without a GPU.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "gcl/cuda.cuh"

namespace {

using gcl::index_t;

__global__ void triad_kernel(float* a, const float* b, const float* c, float s, index_t n) {
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) a[i] = b[i] + s * c[i];
}

__global__ void fill_kernel(float* x, float value, index_t n) {
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) x[i] = value;
}

// K gradients that conflict: noise plus a shared direction with alternating signs, so about half
// of the pairs have a negative dot product (as in benchmarks/bench_surgery.cpp).
__global__ void conflicting_kernel(float* g, index_t K, index_t P, std::uint64_t seed) {
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < K * P; e += stride) {
        const index_t k = e / P, p = e % P;
        const float noise = gcl::uniform_at<float>(seed, static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(p), -1.0f, 1.0f);
        const float shared = gcl::uniform_at<float>(seed, static_cast<std::uint64_t>(K), static_cast<std::uint64_t>(p), -1.0f, 1.0f);
        g[e] = noise + (k % 2 == 0 ? 2.0f : -2.0f) * shared;
    }
}

unsigned blocks_for(index_t n) { return static_cast<unsigned>(std::min<index_t>((n + 255) / 256, index_t{1} << 16)); }

class Timer {
public:
    Timer() {
        GCL_CUDA_CHECK(cudaEventCreate(&start_));
        GCL_CUDA_CHECK(cudaEventCreate(&middle_));
        GCL_CUDA_CHECK(cudaEventCreate(&stop_));
    }
    ~Timer() {
        cudaEventDestroy(start_);
        cudaEventDestroy(middle_);
        cudaEventDestroy(stop_);
    }
    cudaEvent_t start() const { return start_; }
    cudaEvent_t middle() const { return middle_; }
    cudaEvent_t stop() const { return stop_; }

private:
    cudaEvent_t start_ = nullptr, middle_ = nullptr, stop_ = nullptr;
};

}  // namespace

int main() {
    if (gcl::cuda_device_count() == 0) {
        std::printf("SKIPPED: no CUDA device available; the CUDA surgery benchmark did not run\n");
        return 0;
    }
    cudaDeviceProp properties{};
    GCL_CUDA_CHECK(cudaGetDeviceProperties(&properties, 0));
    std::printf("device: %s\n", properties.name);
    std::printf("bytes per mitigation: (2K + 1) P * 4; triad: 3 x 2^26 floats; median of the repetitions\n");
    std::printf("%3s %10s %10s %10s %12s %10s\n", "K", "P", "ms", "GB/s", "triad GB/s", "fraction");

    const index_t triad_n = index_t{1} << 26;
    gcl::Tensor<float, gcl::cuda> ta(gcl::Shape{triad_n}), tb(gcl::Shape{triad_n}), tc(gcl::Shape{triad_n});
    fill_kernel<<<blocks_for(triad_n), 256>>>(tb.data(), 1.0f, triad_n);
    fill_kernel<<<blocks_for(triad_n), 256>>>(tc.data(), 2.0f, triad_n);
    GCL_CUDA_CHECK_LAUNCH();
    const double triad_bytes = 3.0 * static_cast<double>(triad_n) * sizeof(float);

    const Timer timer;
    for (index_t P : {index_t{1000000}, index_t{3000000}, index_t{10000000}, index_t{30000000}})
        for (index_t K : {2, 3, 4, 8}) {
            gcl::Tensor<float, gcl::cuda> g(gcl::Shape{K, P}), out(gcl::Shape{P});
            conflicting_kernel<<<blocks_for(K * P), 256>>>(g.data(), K, P, 1);
            GCL_CUDA_CHECK_LAUNCH();
            const gcl::surgery::CudaGradMitigator<float> mitigator({.reduction = gcl::surgery::Reduction::sum, .seed = 7});
            const gcl::surgery::CudaGradMitigator<float>::Arguments args{g.cview(), out.view(), 0};
            gcl::Buffer<double, gcl::cuda> workspace(mitigator.workspace_size(args) / sizeof(double) + 1);
            GCL_CUDA_CHECK(cudaDeviceSynchronize());

            const double bytes = static_cast<double>((2 * K + 1) * P) * sizeof(float);
            const int repetitions = static_cast<int>(std::clamp(4e10 / bytes, 10.0, 200.0));
            std::vector<double> mitigate_ms, triad_ms;
            for (int r = -3; r < repetitions; ++r) {  // three warm-up rounds
                GCL_CUDA_CHECK(cudaEventRecord(timer.start()));
                mitigator.run(args, workspace.data());
                GCL_CUDA_CHECK(cudaEventRecord(timer.middle()));
                triad_kernel<<<blocks_for(triad_n), 256>>>(ta.data(), tb.data(), tc.data(), 3.0f, triad_n);
                GCL_CUDA_CHECK_LAUNCH();
                GCL_CUDA_CHECK(cudaEventRecord(timer.stop()));
                GCL_CUDA_CHECK(cudaEventSynchronize(timer.stop()));
                float m = 0, t = 0;
                GCL_CUDA_CHECK(cudaEventElapsedTime(&m, timer.start(), timer.middle()));
                GCL_CUDA_CHECK(cudaEventElapsedTime(&t, timer.middle(), timer.stop()));
                if (r >= 0) {
                    mitigate_ms.push_back(m);
                    triad_ms.push_back(t);
                }
            }
            std::sort(mitigate_ms.begin(), mitigate_ms.end());
            std::sort(triad_ms.begin(), triad_ms.end());
            const double m = mitigate_ms[mitigate_ms.size() / 2], t = triad_ms[triad_ms.size() / 2];
            const double gbps = bytes / (m * 1e-3) / 1e9, triad_gbps = triad_bytes / (t * 1e-3) / 1e9;
            std::printf("%3ld %10ld %10.3f %10.1f %12.1f %10.3f\n", static_cast<long>(K), static_cast<long>(P), m, gbps,
                        triad_gbps, gbps / triad_gbps);
        }
    return 0;
}
