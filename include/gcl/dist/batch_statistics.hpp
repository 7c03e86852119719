#pragma once
// dist::SynchronisedBatchStatistics: synchronised batch norm over the ranks of a communicator.
// Every BatchNorm1d / BatchNorm2d on an arena whose reducer it is normalises with the statistics
// of the ranks' concatenated batches, and its backward pass with their summed gradient sums
// (nn/batch_statistics.hpp), so a data-parallel step equals the single-process step.
//
//   dist::SynchronisedBatchStatistics<dist::MpiCommunicator> sync(comm);
//   arena.set_batch_statistics_reducer(&sync);   // nullptr: local statistics again
//
// Two all-reduces of C + 1 and C doubles per layer in forward, one of 2 C + 1 in each backward pass.
// The communicator is a host one: the layers pass host doubles on every device (the CUDA layers
// copy their per-channel sums to the host and back), so a GPU job uses its NCCL communicator's
// host() here.
#include "gcl/dist/communicator.hpp"
#include "gcl/nn/batch_statistics.hpp"

namespace gcl::dist {

template <class Comm>
    requires CommunicatorFor<Comm, double> && std::same_as<typename Comm::device_type, cpu>
class SynchronisedBatchStatistics final : public nn::BatchStatisticsReducer {
public:
    explicit SynchronisedBatchStatistics(Comm& comm) : comm_(&comm) {}
    void sum(double* values, index_t n) override { comm_->all_reduce_sum(values, n); }

private:
    Comm* comm_;
};

}  // namespace gcl::dist
