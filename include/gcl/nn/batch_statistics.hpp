#pragma once
// nn::BatchStatisticsReducer: how the batch norm layers of a model see the batch of a whole
// data-parallel job (synchronised batch norm) rather than their own rank's part of it.
//
//   class Reducer : public nn::BatchStatisticsReducer { void sum(double* v, index_t n) override; };
//   arena.set_batch_statistics_reducer(&reducer);   // every BatchNorm1d / BatchNorm2d on the arena
//
// sum(values, n) must leave in values the sum over the ranks of every rank's values (an
// all-reduce); each rank's layers call it in the same order. The layers pass it their per-channel
// sums in forward (sum x, then sum (x - mean)^2) and backward (sum dy, sum dy xhat), in double,
// so the statistics and dx are those of the concatenated batch; their parameter gradients stay the
// rank's own share. dist::MpiBatchStatistics implements it over a communicator; nothing in nn/
// knows about ranks.
#include "gcl/core/shape.hpp"

namespace gcl::nn {

class BatchStatisticsReducer {
public:
    virtual ~BatchStatisticsReducer() = default;
    virtual void sum(double* values, index_t n) = 0;
};

}  // namespace gcl::nn
