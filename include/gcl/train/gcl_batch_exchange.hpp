#pragma once
// train::GclBatchExchange: what GCL pre-training needs from the ranks of a data-parallel job.
#include <cstdint>
#include <vector>

#include "gcl/core/tensor.hpp"
#include "gcl/surgery/mitigate_options.hpp"
#include "gcl/train/training_state.hpp"

namespace gcl::train {

// The seam of data-parallel pre-training (dist/data_parallel_gcl.hpp implements it over a
// communicator). With an exchange set, the objective's batch is this rank's share of a global
// batch: the exchange assembles the global embeddings and meta labels, so the losses, GradFilter's
// ranking and every anchor's positives and negatives are the global batch's; the objective keeps
// the gradient rows of its own samples, and the exchange combines the ranks' parameter gradients.
// "Rows" are the leading dimension of a [2b, ...] tensor: the rank's b images' first views, then
// their second views; the global [2B, ...] is in the single process's order.
// Checkpoints go through its CheckpointRanks side (training_state.hpp).
// Every tensor is on the objective's device D (dist/data_parallel_gcl.hpp implements the cpu's).
template <class T, class D = cpu>
class GclBatchExchange : public CheckpointRanks {
public:
    // This rank's rows [2b, ...] -> the global batch's [2B, ...].
    virtual Tensor<T, D> gather(ConstView<T, D> local) = 0;
    // This rank's meta labels [K, 2b] -> the global batch's [K, 2B].
    virtual Tensor<std::int64_t, D> gather_meta(ConstView<std::int64_t, D> local) = 0;
    // This rank's rows of a global [2B, ...] (and columns of global meta labels [K, 2B]).
    virtual Tensor<T, D> local_rows(ConstView<T, D> global) = 0;
    virtual Tensor<std::int64_t, D> local_meta(ConstView<std::int64_t, D> global) = 0;
    // Parameter level: this rank's per-label gradients [K, P] (its samples' share of the global
    // losses' gradients) -> GradMitigator on their sum over the ranks, written to out [P].
    virtual surgery::MitigateReport mitigate(ConstView<T, D> local_grads, TensorView<T, D> out,
                                             const surgery::MitigateOptions& options, std::uint64_t step) = 0;
    // The other levels: this rank's share of the combined gradient -> the sum over the ranks.
    virtual void sum_gradient(TensorView<T, D> grad) = 0;
    // The global index of each of this rank's [2b rows_per_sample] rows (rows_per_sample rows per
    // sample, e.g. its h w locations): what seeds their per-sample projection orders.
    virtual std::vector<std::uint64_t> global_rows(index_t rows_per_sample) = 0;
};

}  // namespace gcl::train
