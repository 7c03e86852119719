#pragma once
// dist::ReplicatedArena: one model's parameter arena held by every rank of a data-parallel job,
// on the communicator's device (an MpiCommunicator's host arena, an NcclCommunicator's GPU one).
// It broadcasts rank 0's parameters and buffers, so every rank starts from the same model, and for
// its lifetime sets synchronised batch norm (SynchronisedBatchStatistics, over the host
// communicator) on the arena unless local statistics are asked for. DataParallelGcl and
// DataParallelSegmentation hold one.
#include "gcl/dist/batch_statistics.hpp"
#include "gcl/dist/communicator.hpp"
#include "gcl/nn/parameter_arena.hpp"

namespace gcl::dist {

enum class BatchNormSync {
    synchronised,  // statistics of the global batch: the step equals the single-process step
    local,         // each rank's own statistics (cheaper; a different method for small local batches)
};

template <class T, class Comm>
    requires CommunicatorFor<Comm, T> && CommunicatorFor<HostCommunicator<Comm>, double>
class ReplicatedArena {
public:
    using device_type = typename Comm::device_type;

    ReplicatedArena(Comm& comm, nn::ParameterArena<T, device_type>& arena, BatchNormSync batch_norm)
        : arena_(&arena), sync_(host_communicator(comm)) {
        comm.broadcast(arena.flat_values().data(), arena.size(), 0);
        const auto buffers = arena.flat_buffers();
        comm.broadcast(buffers.data(), buffers.numel(), 0);
        if (batch_norm == BatchNormSync::synchronised) arena.set_batch_statistics_reducer(&sync_);
    }
    ReplicatedArena(const ReplicatedArena&) = delete;
    ReplicatedArena& operator=(const ReplicatedArena&) = delete;
    ~ReplicatedArena() {
        if (arena_->batch_statistics_reducer() == &sync_) arena_->set_batch_statistics_reducer(nullptr);
    }

private:
    nn::ParameterArena<T, device_type>* arena_;
    SynchronisedBatchStatistics<HostCommunicator<Comm>> sync_;
};

}  // namespace gcl::dist
