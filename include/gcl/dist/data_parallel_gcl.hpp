#pragma once
// dist::DataParallelGcl: GCL pre-training spread over the ranks of a communicator, equal (up to
// the order of floating-point sums) to one process training on the whole global batch.
//
//   dist::MpiCommunicator& comm = ...;                       // inside dist::run_on_ranks
//   nn::ParameterArena<float> arena;
//   nn::PretrainModel<float> model(arena, model_options, seed);
//   train::GclPretrainer<float> pretrainer(model, arena, slices, options);   // options.sampler.batch_size = global B
//   dist::DataParallelGcl<float, dist::MpiCommunicator> dp(comm, arena, options.sampler.batch_size);
//   (on GPUs: nn::ParameterArena<float, cuda>, GclPretrainer<float, cuda> and an NcclCommunicator,
//   dist::DataParallelGcl<float, dist::NcclCommunicator>; nccl_communicator.cuh)
//   pretrainer.set_batch_exchange(&dp.exchange());
//   while (!pretrainer.done()) pretrainer.step();            // every rank ends with the same parameters
//
// What it does:
// - broadcasts rank 0's parameters and buffers, so every rank starts from the same model;
// - the batch: every rank draws the same global batch from the seeded sampler and keeps its
//   contiguous share of the B images (Partition(B, ranks): no duplicates, no gaps), both views;
// - the contrast (GclBatchExchange): the image embeddings, the pixel embeddings and the meta
//   labels are all-gathered into the global batch's order, so every rank computes the global
//   losses, GradFilter's global ranking and every anchor's global positives and negatives, and
//   keeps the gradient rows of its own samples;
// - batch norm synchronised (the default) or local: synchronised layers normalise with the
//   global batch's statistics (SynchronisedBatchStatistics), which makes the step exact;
// - the parameter gradient: at the parameter level, the ranks' per-label gradients go to
//   ShardedGradMitigator (GradMitigator on their sum); at the other levels, one all-reduce sum of
//   the combined gradient. Each rank's share is its samples' part of the global loss's gradient,
//   so the sum over the ranks (not the mean) is the single-process gradient.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/dist/communicator.hpp"
#include "gcl/dist/partition.hpp"
#include "gcl/dist/replicated_arena.hpp"
#include "gcl/dist/sharded_mitigate.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/train/gcl_objective.hpp"

namespace gcl::dist {

struct DataParallelGclOptions {
    BatchNormSync batch_norm = BatchNormSync::synchronised;
};

// The rows of a two-view batch spread over the ranks: rank r holds images
// [offsets[r], offsets[r] + counts[r]) of the B, first views then second views. Its tensors are on
// the communicator's device; the reordering between rank blocks and the global order is strided
// copies (ops::copy) there.
template <class T, class Comm>
    requires DataParallelCommunicator<Comm, T>
class GclRankExchange final : public train::GclBatchExchange<T, typename Comm::device_type> {
public:
    using device_type = typename Comm::device_type;

    GclRankExchange(Comm& comm, index_t global_images) : comm_(&comm), part_(global_images, comm.size()) {
        check(global_images >= comm.size(), "dist::DataParallelGcl", "a global batch of ", global_images,
              " images cannot give each of ", comm.size(), " ranks at least one");
    }

    index_t own_images() const { return part_.counts[static_cast<std::size_t>(comm_->rank())]; }
    index_t first_image() const { return part_.offsets[static_cast<std::size_t>(comm_->rank())]; }

    Tensor<T, device_type> gather(ConstView<T, device_type> local) override {
        check(local.rank() >= 1 && local.dim(0) == 2 * own_images(), "dist::DataParallelGcl",
              "gather: this rank holds ", own_images(), " images (", 2 * own_images(),
              " rows), got a tensor of shape ", local.shape());
        const index_t width = local.numel() / local.dim(0);
        Shape shape = local.shape();
        shape[0] = 2 * part_.total();
        Tensor<T, device_type> out(shape);
        // Rank blocks [its first views | its second views] -> [all first views | all second views].
        gather_blocks<T>(local, 2 * width, [&](int r) { return rows_of(out.view(), width, r); }, "gather");
        return out;
    }

    Tensor<std::int64_t, device_type> gather_meta(ConstView<std::int64_t, device_type> local) override {
        check(local.rank() == 2 && local.dim(1) == 2 * own_images(), "dist::DataParallelGcl::gather_meta",
              "meta labels must be [K, ", 2 * own_images(), "], got ", local.shape());
        const index_t K = local.dim(0);
        Tensor<std::int64_t, device_type> out(Shape{K, 2 * part_.total()});
        // Rank blocks [K, 2, b_r] -> columns [v B + offset_r, v B + offset_r + b_r) of every label.
        gather_blocks<std::int64_t>(local, 2 * K, [&](int r) { return columns_of(out.view(), r); }, "gather_meta");
        return out;
    }

    Tensor<T, device_type> local_rows(ConstView<T, device_type> global) override {
        check(global.rank() >= 1 && global.dim(0) == 2 * part_.total() && global.is_contiguous(), "dist::DataParallelGcl",
              "local_rows: the global batch has ", 2 * part_.total(), " contiguous rows, got a tensor of shape ",
              global.shape());
        const index_t width = global.numel() / global.dim(0);
        Shape shape = global.shape();
        shape[0] = 2 * own_images();
        Tensor<T, device_type> out(shape);
        ops::copy(rows_of(global, width, comm_->rank()), out.view().reshape(Shape{2, own_images(), width}));
        return out;
    }

    Tensor<std::int64_t, device_type> local_meta(ConstView<std::int64_t, device_type> global) override {
        check(global.rank() == 2 && global.dim(1) == 2 * part_.total() && global.is_contiguous(),
              "dist::DataParallelGcl::local_meta", "meta labels must be a contiguous [K, ", 2 * part_.total(), "], got ",
              global.shape());
        const index_t K = global.dim(0);
        Tensor<std::int64_t, device_type> out(Shape{K, 2 * own_images()});
        ops::copy(columns_of(global, comm_->rank()), out.view().reshape(Shape{K, 2, own_images()}));
        return out;
    }

    surgery::MitigateReport mitigate(ConstView<T, device_type> local_grads, TensorView<T, device_type> out,
                                     const surgery::MitigateOptions& options, std::uint64_t step) override {
        // ShardedGradMitigator mitigates the mean of the ranks' G_r; the single-process G is their
        // sum, so each rank passes S G_r (exact for a power-of-two S).
        scaled_.resize(local_grads.shape());
        ops::scale(local_grads, static_cast<T>(comm_->size()), scaled_.view());
        if (!mitigator_ || !same(mitigator_->options(), options)) mitigator_.emplace(options);
        return mitigator_->run({.local_grads = scaled_.cview(), .out = out, .step = step}, *comm_);
    }

    void sum_gradient(TensorView<T, device_type> grad) override {
        check(grad.is_contiguous(), "dist::DataParallelGcl", "the gradient must be contiguous");
        comm_->all_reduce_sum(grad.data(), grad.numel());
    }

    bool writes_checkpoints() const override { return comm_->rank() == 0; }
    void share_bytes(std::vector<unsigned char>& bytes) override { broadcast_bytes(host_communicator(*comm_), bytes); }

    std::vector<std::uint64_t> global_rows(index_t rows_per_sample) override {
        const index_t B = part_.total(), b = own_images(), first = first_image();
        std::vector<std::uint64_t> ids;
        ids.reserve(static_cast<std::size_t>(2 * b * rows_per_sample));
        for (index_t v = 0; v < 2; ++v)
            for (index_t i = 0; i < b; ++i)
                for (index_t p = 0; p < rows_per_sample; ++p)
                    ids.push_back(static_cast<std::uint64_t>((v * B + first + i) * rows_per_sample + p));
        return ids;
    }

private:
    static bool same(const surgery::MitigateOptions& a, const surgery::MitigateOptions& b) {
        return a.reduction == b.reduction && a.seed == b.seed && a.eps == b.eps;
    }

    // Rank r's rows of a global [2B, ...] batch, as a [2, b_r, width] view.
    template <class View>
    View rows_of(View global, index_t width, int r) const {
        return global.reshape(Shape{2, part_.total(), width}).narrow(1, part_.offsets[r], part_.counts[r]);
    }
    // Rank r's columns of global meta labels [K, 2B], as a [K, 2, b_r] view.
    template <class View>
    View columns_of(View global, int r) const {
        return global.reshape(Shape{global.dim(0), 2, part_.total()}).narrow(2, part_.offsets[r], part_.counts[r]);
    }

    // All-gathers every rank's contiguous block (per_image values for each of its images) and
    // copies rank r's block into the [d0, d1, b_r] view destination(r).
    template <class U, class Destination>
    void gather_blocks(ConstView<U, device_type> local, index_t per_image, Destination&& destination, const char* what) {
        check(local.is_contiguous(), "dist::DataParallelGcl", what, ": the tensor must be contiguous");
        const int S = comm_->size();
        std::vector<index_t> counts(static_cast<std::size_t>(S));
        for (int r = 0; r < S; ++r) counts[r] = per_image * part_.counts[r];
        Tensor<U, device_type> blocks(Shape{per_image * part_.total()});
        comm_->all_gather(local.data(), blocks.data(), std::span<const index_t>(counts));
        index_t at = 0;
        for (int r = 0; r < S; ++r) {
            const TensorView<U, device_type> to = destination(r);
            ops::copy(blocks.cview().narrow(0, at, counts[r]).reshape(to.shape()), to);
            at += counts[r];
        }
    }

    Comm* comm_;
    Partition part_;
    Tensor<T, device_type> scaled_;
    std::optional<ShardedGradMitigator<T, device_type>> mitigator_;
};

template <class T, class Comm>
    requires DataParallelCommunicator<Comm, T>
class DataParallelGcl {
public:
    using device_type = typename Comm::device_type;

    DataParallelGcl(Comm& comm, nn::ParameterArena<T, device_type>& arena, index_t global_batch_size,
                    const DataParallelGclOptions& options = {})
        : exchange_(comm, global_batch_size), replica_(comm, arena, options.batch_norm) {}

    GclRankExchange<T, Comm>& exchange() { return exchange_; }

private:
    // The exchange first: its checks run before the broadcasts.
    GclRankExchange<T, Comm> exchange_;
    ReplicatedArena<T, Comm> replica_;
};

}  // namespace gcl::dist
