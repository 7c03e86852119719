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
