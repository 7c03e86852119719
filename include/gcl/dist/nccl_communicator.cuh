#pragma once
// dist::NcclCommunicator: the communicator contract (communicator.hpp) over NCCL, for device
// buffers, one rank per GPU. An MPI job bootstraps it: rank 0 creates NCCL's unique id and MPI
// carries it to the other ranks.
//
//   gcl::dist::MpiCommunicator world;
//   gcl::dist::NcclCommunicator gpus(world, /*device=*/local_rank);
//   gpus.all_reduce_sum(grad_dev.data(), grad_dev.numel());   // queued on gpus.stream()
//
// NCCL's reduce-scatter and all-gather move equal blocks; uneven slices (P not divisible by the
// number of ranks) go through padded staging buffers on the device.
//
// Collectives are queued on the communicator's stream: by default the stream current when it is
// made (core/stream.hpp; the legacy default stream unless a StreamGuard says otherwise), where
// gcl's layers, losses and optimizers queue their kernels, so a collective runs after the kernels
// that wrote its input and before those that read its output, with no host wait. Another stream
// (to overlap communication with compute) is the caller's to order against that work.
// synchronize() waits for the stream. host() is the bootstrap MPI communicator: the same ranks,
// for host buffers (communicator.hpp). Include from nvcc translation units and link gcl::nccl;
// DataParallelGcl and DataParallelSegmentation take it for models on cuda.
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/stream.cuh"
#include "gcl/core/error.hpp"
#include "gcl/dist/communicator.hpp"
#include "gcl/dist/cuda/shard_passes.cuh"
#include "gcl/dist/mpi_communicator.hpp"

namespace gcl::dist {

namespace detail {
template <class T>
ncclDataType_t nccl_type() {
    if constexpr (std::is_same_v<T, float>) return ncclFloat32;
    else if constexpr (std::is_same_v<T, double>) return ncclFloat64;
    else if constexpr (std::is_same_v<T, std::int64_t>) return ncclInt64;
    else if constexpr (std::is_same_v<T, std::int32_t>) return ncclInt32;
    else if constexpr (std::is_same_v<T, std::uint8_t>) return ncclUint8;
    else static_assert(sizeof(T) == 0, "NcclCommunicator moves float, double, int64, int32 or uint8");
}

inline void check_nccl(ncclResult_t status, const char* call) {
    if (status == ncclSuccess) return;
    fail("dist::nccl", call, " failed: ", ncclGetErrorString(status));
}
}  // namespace detail

class NcclCommunicator {
public:
    using device_type = cuda;  // device buffers

    // Joins every rank of `bootstrap` on GPU `device` (this rank's local GPU, made current), queuing
    // its collectives on `stream` (see the top). `bootstrap` must outlive it.
    NcclCommunicator(MpiCommunicator& bootstrap, int device, Stream<cuda> stream = current_stream<cuda>())
        : host_(&bootstrap), stream_(stream), rank_(bootstrap.rank()), size_(bootstrap.size()) {
        int devices = 0;
        GCL_CUDA_CHECK(cudaGetDeviceCount(&devices));
        check(device >= 0 && device < devices, "dist::nccl", "rank ", rank_, " asks for GPU ", device, " but this node has ",
              devices);
        GCL_CUDA_CHECK(cudaSetDevice(device));
        ncclUniqueId id{};
        if (rank_ == 0) detail::check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
        bootstrap.broadcast(reinterpret_cast<std::uint8_t*>(&id), static_cast<index_t>(sizeof(id)), 0);
        detail::check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
    }
    NcclCommunicator(const NcclCommunicator&) = delete;
    NcclCommunicator& operator=(const NcclCommunicator&) = delete;
    ~NcclCommunicator() {
        // Queued collectives still use the communicator and the staging buffers, whose blocks go
        // back to the pool after this body; a destructor cannot report a failure, so none is.
        static_cast<void>(cudaStreamSynchronize(stream_));
        if (comm_) ncclCommDestroy(comm_);
    }

    int rank() const { return rank_; }
    int size() const { return size_; }
    MpiCommunicator& host() const { return *host_; }
    cudaStream_t stream() const { return stream_; }
    const Traffic& traffic() const { return traffic_; }
    void synchronize() { GCL_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

    template <class T>
    void all_reduce_sum(T* data, index_t n) {
        detail::check_nccl(ncclAllReduce(data, data, static_cast<std::size_t>(n), detail::nccl_type<T>(), ncclSum, comm_, stream_),
                           "ncclAllReduce");
        traffic_.add(2 * Traffic::ring_share(static_cast<std::uint64_t>(n) * sizeof(T), size_));
    }

    template <class T>
    void reduce_scatter_sum(const T* in, T* out, std::span<const index_t> counts) {
        check_counts(counts, "reduce_scatter_sum");
        const index_t block = *std::max_element(counts.begin(), counts.end());
        if (block == 0) return;
        // Every rank's block padded to the largest one.
        T* padded = staging<T>(0, block * size_);
        index_t offset = 0;
        for (int r = 0; r < size_; ++r) {
            copy(padded + r * block, in + offset, counts[r]);
            offset += counts[r];
        }
        T* received = staging<T>(1, block);
        detail::check_nccl(ncclReduceScatter(padded, received, static_cast<std::size_t>(block),
                                             detail::nccl_type<T>(), ncclSum, comm_, stream_),
                           "ncclReduceScatter");
        copy(out, received, counts[rank_]);
        traffic_.add(Traffic::ring_share(static_cast<std::uint64_t>(block * size_) * sizeof(T), size_));
    }

    template <class T>
    void all_gather(const T* in, T* out, std::span<const index_t> counts) {
        check_counts(counts, "all_gather");
        const index_t block = *std::max_element(counts.begin(), counts.end());
        if (block == 0) return;
        T* mine = staging<T>(1, block);
        copy(mine, in, counts[rank_]);
        T* gathered = staging<T>(0, block * size_);
        detail::check_nccl(ncclAllGather(mine, gathered, static_cast<std::size_t>(block),
                                         detail::nccl_type<T>(), comm_, stream_),
                           "ncclAllGather");
        index_t offset = 0;
        for (int r = 0; r < size_; ++r) {
            copy(out + offset, gathered + r * block, counts[r]);
            offset += counts[r];
        }
        traffic_.add(Traffic::ring_share(static_cast<std::uint64_t>(block * size_) * sizeof(T), size_));
    }

    template <class T>
    void broadcast(T* data, index_t n, int root) {
        check(root >= 0 && root < size_, "dist::nccl", "broadcast root ", root, " is not a rank of ", size_);
        detail::check_nccl(ncclBroadcast(data, data, static_cast<std::size_t>(n), detail::nccl_type<T>(), root, comm_, stream_),
                           "ncclBroadcast");
        traffic_.add(rank_ == root && size_ > 1 ? static_cast<std::uint64_t>(n) * sizeof(T) : 0);
    }

private:
    void check_counts(std::span<const index_t> counts, const char* call) const {
        check(static_cast<int>(counts.size()) == size_, "dist::nccl", call, ": ", counts.size(), " counts for ", size_,
              " ranks");
    }
    template <class T>
    void copy(T* to, const T* from, index_t n) {
        if (n > 0)
            GCL_CUDA_CHECK(cudaMemcpyAsync(to, from, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDeviceToDevice, stream_));
    }
    // Two staging buffers per element type, grown when needed and kept (no allocation per step).
    // (cudaMalloc aligns for every element type.)
    template <class T>
    T* staging(int which, index_t n) {
        Buffer<std::uint8_t, cuda>& raw = staging_[which];
        const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(T);
        if (raw.size() < bytes) {
            synchronize();  // the old buffer may still be in use by queued work
            // Made (and zeroed) on the collectives' stream, so that its zeroing is ordered before
            // the copies into it and its block is cached for that stream.
            const StreamGuard<cuda> on_collectives(stream_);
            raw = Buffer<std::uint8_t, cuda>(bytes);
        }
        return reinterpret_cast<T*>(raw.data());
    }

    MpiCommunicator* host_;
    ncclComm_t comm_ = nullptr;
    Stream<cuda> stream_;
    int rank_ = 0;
    int size_ = 1;
    Traffic traffic_;
    Buffer<std::uint8_t, cuda> staging_[2];
};

static_assert(CommunicatorFor<NcclCommunicator, float> && CommunicatorFor<NcclCommunicator, double>);
static_assert(DataParallelCommunicator<NcclCommunicator, float> && DataParallelCommunicator<NcclCommunicator, double>);

}  // namespace gcl::dist
