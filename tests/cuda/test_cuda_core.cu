#include <catch2/catch.hpp>

#include "gcl/cuda.cuh"

namespace {
__global__ void scale_kernel(float* x, long n, float a) {
    const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
    if (i < n) x[i] *= a;
}
}  // namespace

TEST_CASE("CUDA tensors: zeroed allocation, host/device round trip, deep copy", "[cuda]") {
    gcl::Tensor<float, gcl::cuda> zeros(gcl::Shape{3, 5});
    auto z = gcl::to_host(zeros);
    for (gcl::index_t i = 0; i < z.numel(); ++i) CHECK(z.data()[i] == 0.0f);

    gcl::Tensor<float> host(gcl::Shape{1000});
    gcl::Rng rng(3);
    gcl::fill_uniform(host.view(), rng);
    auto dev = gcl::to_device(host);
    gcl::Tensor<float, gcl::cuda> copy = dev;  // device-to-device deep copy
    scale_kernel<<<4, 256>>>(dev.data(), dev.numel(), 2.0f);
    GCL_CUDA_CHECK_LAUNCH();
    auto doubled = gcl::to_host(dev);
    auto same = gcl::to_host(copy);
    for (gcl::index_t i = 0; i < host.numel(); ++i) {
        CHECK(doubled.data()[i] == 2.0f * host.data()[i]);
        CHECK(same.data()[i] == host.data()[i]);
    }
}

TEST_CASE("CUDA failures throw gcl::Error naming the call", "[cuda]") {
    CHECK_THROWS_WITH(GCL_CUDA_CHECK(cudaSetDevice(10000)), Catch::Contains("cudaSetDevice"));
    CHECK(gcl::cuda_device_count() > 0);
    CHECK(gcl::cuda_detail::cublas_handle() == gcl::cuda_detail::cublas_handle());
    CHECK(gcl::cuda_detail::cudnn_handle() != nullptr);
}

TEST_CASE("CUDA tensors come from the caching pool: a steady loop calls cudaMalloc only at first", "[cuda][pool]") {
    const auto step = [] {
        // One step's temporaries: several sizes, some sharing a size class, some above 1 MiB.
        gcl::Tensor<float, gcl::cuda> a(gcl::Shape{1000}), b(gcl::Shape{1000}), c(gcl::Shape{600, 1000});
        gcl::Tensor<double, gcl::cuda> d(gcl::Shape{37});
        gcl::Tensor<float, gcl::cuda> grown(gcl::Shape{10});
        grown.resize(gcl::Shape{5000});
        return gcl::to_host(c).data()[0] + gcl::to_host(grown).data()[4999];  // zeroed, reused or not
    };
    CHECK(step() == 0.0f);
    const gcl::CachingPoolStats warm = gcl::cuda_memory_stats();
    for (int i = 0; i < 5; ++i) CHECK(step() == 0.0f);
    const gcl::CachingPoolStats steady = gcl::cuda_memory_stats();
    CHECK(steady.source_allocations == warm.source_allocations);
    CHECK(steady.cache_hits > warm.cache_hits);
    CHECK(steady.bytes_in_use == warm.bytes_in_use);

    gcl::cuda_release_cached_memory();
    CHECK(gcl::cuda_memory_stats().bytes_cached == 0);
}
