// BatchUploader<cuda>: host batch -> pinned staging -> device on a copy stream. Uploads equal
// to_device's bits, the pinned staging is reused in a steady loop, and the copy is ordered after
// the default stream's earlier work and before its later work while the host carries on.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gcl/backend/cuda/batch_uploader.cuh"
#include "gcl/backend/cuda/device.cuh"
#include "gcl/core/random.hpp"
#include "support/errors.hpp"

namespace {

// Holds its threads for about `cycles` clock ticks, then writes `value` everywhere: a kernel
// still running (and writing) when the host has moved on.
__global__ void spin_then_fill(float* x, long n, float value, long long cycles) {
    const long long start = clock64();
    while (clock64() - start < cycles) {
    }
    for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<long>(gridDim.x) * blockDim.x)
        x[i] = value;
}

__global__ void scale_into(const float* x, float* y, long n, float a) {
    for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<long>(gridDim.x) * blockDim.x)
        y[i] = a * x[i];
}

constexpr long long long_spin = 400'000'000;  // a few hundred milliseconds on any current GPU

template <class T>
bool same_bits(const gcl::Tensor<T>& a, const gcl::Tensor<T>& b) {
    return a.shape() == b.shape() &&
           std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0;
}

gcl::Tensor<float> random_batch(const gcl::Shape& shape, std::uint64_t seed) {
    gcl::Tensor<float> t(shape);
    gcl::Rng rng(seed);
    gcl::fill_uniform(t.view(), rng, -1.0f, 1.0f);
    return t;
}

}  // namespace

TEST_CASE("BatchUploader<cuda>: batches uploaded in a row equal to_device's bits", "[cuda][upload]") {
    gcl::BatchUploader<gcl::cuda> uploader;
    std::vector<gcl::Tensor<float>> host;
    for (const gcl::Shape& shape : {gcl::Shape{8, 1, 64, 64}, gcl::Shape{2, 3}, gcl::Shape{4, 1, 256, 256},
                                    gcl::Shape{0, 4}, gcl::Shape{8, 1, 64, 64}})
        host.push_back(random_batch(shape, 11 + host.size()));
    gcl::Tensor<std::int64_t> meta = gcl::Tensor<std::int64_t>::from(gcl::Shape{3, 2}, {0, 1, -5, 7, 1LL << 40, 3});
    gcl::Tensor<double> weights = gcl::Tensor<double>::from(gcl::Shape{3}, {0.1, -0.0, 1e300});

    // All kept on the device while later uploads reuse the two staging blocks.
    std::vector<gcl::Tensor<float, gcl::cuda>> device;
    for (const auto& h : host) device.push_back(uploader.upload(h));
    const gcl::Tensor<std::int64_t, gcl::cuda> meta_device = uploader.upload(meta.cview());
    const gcl::Tensor<double, gcl::cuda> weights_device = uploader.upload(weights);

    for (std::size_t i = 0; i < host.size(); ++i) {
        INFO("batch " << i << " of shape " << host[i].shape());
        CHECK(same_bits(gcl::to_host(device[i]), host[i]));
        CHECK(same_bits(gcl::to_host(device[i]), gcl::to_host(gcl::to_device(host[i]))));
    }
    CHECK(same_bits(gcl::to_host(meta_device), meta));
    CHECK(same_bits(gcl::to_host(weights_device), weights));
}

TEST_CASE("BatchUploader<cuda>: a steady loop reuses its pinned staging and device blocks", "[cuda][upload][pool]") {
    gcl::Tensor<float> host = random_batch(gcl::Shape{8, 1, 96, 96}, 5);
    {
        gcl::BatchUploader<gcl::cuda> uploader;
        for (int i = 0; i < 2; ++i) (void)uploader.upload(host);  // both staging blocks exist now
        const gcl::CachingPoolStats pinned = gcl::cuda_pinned_stats();
        const gcl::CachingPoolStats device = gcl::cuda_memory_stats();
        for (int i = 0; i < 20; ++i) {
            host.data()[0] = static_cast<float>(i);  // the next batch
            gcl::Tensor<float, gcl::cuda> batch = uploader.upload(host);
            if (i % 5 == 4) CHECK(gcl::to_host(batch).data()[0] == static_cast<float>(i));
        }
        CHECK(gcl::cuda_pinned_stats().source_allocations == pinned.source_allocations);  // no cudaHostAlloc
        CHECK(gcl::cuda_pinned_stats().bytes_in_use == pinned.bytes_in_use);
        CHECK(gcl::cuda_memory_stats().source_allocations == device.source_allocations);  // no cudaMalloc
    }
    // The uploader's blocks went back to the pool; a new uploader takes them without cudaHostAlloc.
    const gcl::CachingPoolStats released = gcl::cuda_pinned_stats();
    CHECK(released.bytes_cached >= 2 * gcl::CachingPool<gcl::cuda_detail::CudaPinnedMemory>::size_class(
                                           static_cast<std::size_t>(host.numel()) * sizeof(float)));
    gcl::BatchUploader<gcl::cuda> next;
    CHECK(same_bits(gcl::to_host(next.upload(host)), host));
    CHECK(gcl::cuda_pinned_stats().source_allocations == released.source_allocations);
    CHECK(gcl::cuda_pinned_stats().cache_hits > released.cache_hits);

    gcl::cuda_release_cached_pinned_memory();
    CHECK(gcl::cuda_pinned_stats().source_releases > released.source_releases);
}

TEST_CASE("BatchUploader<cuda>: the copy waits for kernels still using the batch's recycled block",
          "[cuda][upload][streams]") {
    const long n = 1 << 20;
    const gcl::Tensor<float> host = random_batch(gcl::Shape{n}, 7);
    gcl::BatchUploader<gcl::cuda> uploader;
    const float* recycled = nullptr;
    {
        gcl::Tensor<float, gcl::cuda> scratch(gcl::Shape{n});
        recycled = scratch.data();
        spin_then_fill<<<64, 256>>>(scratch.data(), n, -1.0f, long_spin);
        GCL_CUDA_CHECK_LAUNCH();
    }  // back in the pool while the kernel still runs and will write it
    gcl::Tensor<float, gcl::cuda> batch = uploader.upload(host);
    // upload returned at once: the copy still waits behind the kernel on the default stream.
    CHECK(cudaStreamQuery(uploader.copy_stream()) == cudaErrorNotReady);
    static_cast<void>(cudaGetLastError());  // the expected "not ready" stays the last error: clear it
    CHECK(batch.data() == recycled);  // the pool handed the kernel's block to the batch
    CHECK(same_bits(gcl::to_host(batch), host));
}

TEST_CASE("BatchUploader<cuda>: kernels queued after an upload read the batch while the host refills it",
          "[cuda][upload][streams]") {
    const long n = 16L << 20;  // 64 MiB: the copy takes milliseconds
    const gcl::Tensor<float> original = random_batch(gcl::Shape{n}, 9);
    gcl::Tensor<float> host(gcl::Shape{n}), expected(gcl::Shape{n});
    gcl::BatchUploader<gcl::cuda> uploader;
    gcl::Tensor<float, gcl::cuda> busy(gcl::Shape{256});
    for (int round = 0; round < 3; ++round) {
        INFO("round " << round);
        for (long i = 0; i < n; ++i) {
            host.data()[i] = original.data()[i] + static_cast<float>(round);  // this round's batch
            expected.data()[i] = 2.0f * host.data()[i];
        }
        spin_then_fill<<<1, 256>>>(busy.data(), 256, 0.0f, long_spin / 8);  // the default stream is busy
        GCL_CUDA_CHECK_LAUNCH();
        gcl::Tensor<float, gcl::cuda> batch = uploader.upload(host);
        std::fill(host.data(), host.data() + n, -2.0f);  // the host builds its next batch in place at once
        gcl::Tensor<float, gcl::cuda> doubled(gcl::Shape{n});
        scale_into<<<1024, 256>>>(batch.data(), doubled.data(), n, 2.0f);
        GCL_CUDA_CHECK_LAUNCH();
        CHECK(same_bits(gcl::to_host(doubled), expected));
    }
}

TEST_CASE("BatchUploader<cuda>: a started copy runs beside kernels queued before take()", "[cuda][upload][streams]") {
    const long n = 1 << 20;
    const gcl::Tensor<float> host = random_batch(gcl::Shape{n}, 13);
    gcl::BatchUploader<gcl::cuda> uploader;
    gcl::Tensor<float, gcl::cuda> busy(gcl::Shape{256});
    gcl::PendingUpload<float, gcl::cuda> next = uploader.start(host);
    spin_then_fill<<<1, 256>>>(busy.data(), 256, 1.0f, long_spin);  // this step's kernels
    GCL_CUDA_CHECK_LAUNCH();
    // The copy did not wait for the kernel queued after start(): it has finished while the
    // kernel still runs.
    GCL_CUDA_CHECK(cudaStreamSynchronize(uploader.copy_stream()));
    CHECK(cudaStreamQuery(nullptr) == cudaErrorNotReady);
    static_cast<void>(cudaGetLastError());  // the expected "not ready" stays the last error: clear it
    gcl::Tensor<float, gcl::cuda> batch = next.take();
    gcl::Tensor<float, gcl::cuda> doubled(gcl::Shape{n});
    scale_into<<<1024, 256>>>(batch.data(), doubled.data(), n, 2.0f);
    GCL_CUDA_CHECK_LAUNCH();
    gcl::Tensor<float> expected(gcl::Shape{n});
    for (long i = 0; i < n; ++i) expected.data()[i] = 2.0f * host.data()[i];
    CHECK(same_bits(gcl::to_host(doubled), expected));
    gcl_test::require_error([&] { (void)next.take(); }, {"PendingUpload::take", "taken already"});
}

TEST_CASE("BatchUploader<cuda>: take() and an untaken upload's end order the default stream after a late copy",
          "[cuda][upload][streams]") {
    const long n = 1 << 20;
    const gcl::Tensor<float> host = random_batch(gcl::Shape{n}, 17);
    gcl::BatchUploader<gcl::cuda> uploader;
    gcl::Tensor<float, gcl::cuda> busy(gcl::Shape{256});
    const auto hold_copy_stream = [&] {  // the next copy starts only after this kernel
        spin_then_fill<<<1, 256, 0, uploader.copy_stream()>>>(busy.data(), 256, 1.0f, long_spin);
        GCL_CUDA_CHECK_LAUNCH();
    };

    hold_copy_stream();
    gcl::Tensor<float, gcl::cuda> batch = uploader.upload(host);
    gcl::Tensor<float, gcl::cuda> doubled(gcl::Shape{n});
    scale_into<<<1024, 256>>>(batch.data(), doubled.data(), n, 2.0f);  // waits for the copy
    GCL_CUDA_CHECK_LAUNCH();
    gcl::Tensor<float> expected(gcl::Shape{n});
    for (long i = 0; i < n; ++i) expected.data()[i] = 2.0f * host.data()[i];
    CHECK(same_bits(gcl::to_host(doubled), expected));

    // Dropped before take(): its block returns to the pool, and the next tensor of its size
    // class takes it and is zeroed on the default stream, which must come after the copy.
    gcl::cuda_release_cached_memory();  // so the dropped batch's block is the only one cached
    hold_copy_stream();
    { gcl::PendingUpload<float, gcl::cuda> dropped = uploader.start(host); }
    const gcl::CachingPoolStats dropped = gcl::cuda_memory_stats();
    CHECK(dropped.bytes_cached == gcl::CachingPool<gcl::cuda_detail::CudaMemory>::size_class(n * sizeof(float)));
    gcl::Tensor<float, gcl::cuda> zeroed(gcl::Shape{n});
    CHECK(gcl::cuda_memory_stats().bytes_cached == 0);  // it took the dropped batch's block
    GCL_CUDA_CHECK(cudaDeviceSynchronize());
    const gcl::Tensor<float> zeros = gcl::to_host(zeroed);
    CHECK(std::all_of(zeros.data(), zeros.data() + n, [](float v) { return v == 0.0f; }));
}

TEST_CASE("BatchUploader<cuda>: a strided host view is rejected, naming its shape", "[cuda][upload][errors]") {
    gcl::BatchUploader<gcl::cuda> uploader;
    const gcl::Tensor<float> host = random_batch(gcl::Shape{4, 6}, 3);
    const gcl::CachingPoolStats before = gcl::cuda_pinned_stats();
    gcl_test::require_error([&] { (void)uploader.upload(host.cview().transpose(0, 1)); },
                            {"BatchUploader: ", "[6, 4]", "not contiguous"});
    // Rejected before it took a staging block.
    CHECK(gcl::cuda_pinned_stats().source_allocations == before.source_allocations);
    CHECK(gcl::cuda_pinned_stats().cache_hits == before.cache_hits);
    // A block of whole rows is contiguous.
    CHECK(same_bits(gcl::to_host(uploader.upload(host.cview().narrow(0, 1, 2))),
                    gcl::Tensor<float>::copy_of(host.cview().narrow(0, 1, 2))));
}

TEST_CASE("BatchUploader<cuda> moves, as the cpu uploader does", "[cuda][upload]") {
    const gcl::Tensor<float> host = random_batch(gcl::Shape{3, 5}, 19);
    gcl::BatchUploader<gcl::cuda> first;
    gcl::PendingUpload<float, gcl::cuda> pending = first.start(host);
    gcl::BatchUploader<gcl::cuda> moved = std::move(first);
    CHECK(same_bits(gcl::to_host(pending.take()), host));
    CHECK(same_bits(gcl::to_host(moved.upload(host)), host));
    gcl_test::require_error([&] { (void)first.upload(host); }, {"BatchUploader: ", "moved from"});  // NOLINT(bugprone-use-after-move): the check
}
