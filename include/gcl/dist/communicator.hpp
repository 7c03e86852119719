#pragma once
// The communicator contract of data-parallel training, and its traffic accounting.
//
// A communicator connects the S ranks of one job and moves contiguous buffers of one device,
// its device_type (cpu or cuda):
//   rank(), size()
//   all_reduce_sum(data, n)                 in place: every rank ends with the sum over ranks
//   reduce_scatter_sum(in, out, counts)     in holds sum(counts) values laid out rank by rank;
//                                           rank r receives the sum over ranks of block r (counts[r])
//   all_gather(in, out, counts)             in holds counts[rank] values; every rank receives all
//                                           blocks, rank by rank, in out (sum(counts) values)
//   broadcast(data, n, root)                every rank receives root's n values
//   traffic()                               the bytes this rank has sent so far (see Traffic)
// MpiCommunicator (mpi_communicator.hpp) implements it over MPI for host memory, and
// NcclCommunicator (nccl_communicator.cuh) over NCCL for device memory.
//
// A device communicator also has host(): the communicator of the same ranks for host buffers
// (an NcclCommunicator's is the MPI job it was bootstrapped from). Data-parallel training sends
// the losses' partial sums, the batch-norm statistics and checkpoint bytes through it.
// host_communicator(c) is c.host(), or c itself for a host communicator.
#include <concepts>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "gcl/core/device.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::dist {

// Bytes one rank sends in the bandwidth-optimal (ring) algorithms, the usual model of
// collective cost: all-reduce 2 (S-1)/S n, reduce-scatter and all-gather (S-1)/S n, broadcast
// n at the root. MPI and NCCL may pick other algorithms; this counts the payload, not the wire.
struct Traffic {
    std::uint64_t bytes_sent = 0;
    std::uint64_t collectives = 0;

    void add(std::uint64_t bytes) {
        bytes_sent += bytes;
        ++collectives;
    }
    static std::uint64_t ring_share(std::uint64_t total_bytes, int ranks) {
        return ranks <= 1 ? 0 : total_bytes * static_cast<std::uint64_t>(ranks - 1) / static_cast<std::uint64_t>(ranks);
    }
};

template <class C, class T>
concept CommunicatorFor = requires(C& c, const T* in, T* out, index_t n, std::span<const index_t> counts, int root) {
    typename C::device_type;
    { c.rank() } -> std::convertible_to<int>;
    { c.size() } -> std::convertible_to<int>;
    c.all_reduce_sum(out, n);
    c.reduce_scatter_sum(in, out, counts);
    c.all_gather(in, out, counts);
    c.broadcast(out, n, root);
    { c.traffic() } -> std::convertible_to<Traffic>;
};

template <class Comm>
auto& host_communicator(Comm& comm) {
    if constexpr (requires { comm.host(); })
        return comm.host();
    else
        return comm;
}

template <class Comm>
using HostCommunicator = std::remove_reference_t<decltype(host_communicator(std::declval<Comm&>()))>;

// What data-parallel training (DataParallelGcl, DataParallelSegmentation) moves: T and int64
// tensors and the mitigation's double Gram matrix on the communicator's device, doubles and bytes
// through its host communicator.
template <class Comm, class T>
concept DataParallelCommunicator =
    CommunicatorFor<Comm, T> && CommunicatorFor<Comm, double> && CommunicatorFor<Comm, std::int64_t> &&
    CommunicatorFor<HostCommunicator<Comm>, double> && CommunicatorFor<HostCommunicator<Comm>, std::int64_t> &&
    CommunicatorFor<HostCommunicator<Comm>, std::uint8_t> &&
    std::same_as<typename HostCommunicator<Comm>::device_type, cpu>;

// Every rank receives root's bytes (any length): the length, then the bytes.
template <class Comm>
    requires CommunicatorFor<Comm, std::int64_t> && CommunicatorFor<Comm, std::uint8_t>
void broadcast_bytes(Comm& comm, std::vector<unsigned char>& bytes, int root = 0) {
    std::int64_t n = static_cast<std::int64_t>(bytes.size());
    comm.broadcast(&n, 1, root);
    bytes.resize(static_cast<std::size_t>(n));
    if (n > 0) comm.broadcast(reinterpret_cast<std::uint8_t*>(bytes.data()), static_cast<index_t>(n), root);
}

}  // namespace gcl::dist
