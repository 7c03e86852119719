#pragma once
// dist::DataParallelGcl: GCL pre-training spread over the ranks of a communicator, equal (up to
// the order of floating-point sums) to one process training on the whole global batch.
//
//   dist::MpiCommunicator& comm = ...;                       // inside dist::run_on_ranks
//   nn::ParameterArena<float> arena;
//   nn::PretrainModel<float> model(arena, model_options, seed);
//   train::GclPretrainer<float> pretrainer(model, arena, slices, options);   // options.sampler.batch_size = global B
//   dist::DataParallelGcl<float, dist::MpiCommunicator> dp(comm, arena, options.sampler.batch_size);
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
#include <algorithm>
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
#include "gcl/train/gcl_objective.hpp"

namespace gcl::dist {

struct DataParallelGclOptions {
    BatchNormSync batch_norm = BatchNormSync::synchronised;
};

// The rows of a two-view batch spread over the ranks: rank r holds images
// [offsets[r], offsets[r] + counts[r]) of the B, first views then second views.
template <class T, class Comm>
    requires CommunicatorFor<Comm, T> && CommunicatorFor<Comm, double> && CommunicatorFor<Comm, std::int64_t> &&
             CommunicatorFor<Comm, std::uint8_t>
class GclRankExchange final : public train::GclBatchExchange<T> {
public:
    GclRankExchange(Comm& comm, index_t global_images) : comm_(&comm), part_(global_images, comm.size()) {
        check(global_images >= comm.size(), "dist::DataParallelGcl", "a global batch of ", global_images,
              " images cannot give each of ", comm.size(), " ranks at least one");
    }

    index_t own_images() const { return part_.counts[static_cast<std::size_t>(comm_->rank())]; }
    index_t first_image() const { return part_.offsets[static_cast<std::size_t>(comm_->rank())]; }

    Tensor<T> gather(ConstView<T> local) override { return gather_rows<T>(local, "gather"); }

    Tensor<std::int64_t> gather_meta(ConstView<std::int64_t> local) override {
        check(local.rank() == 2, "dist::DataParallelGcl::gather_meta", "meta labels must be [K, 2b], got ", local.shape());
        // Label-major [K, 2b] -> sample-major [2b, K], gathered, and back.
        const index_t K = local.dim(0), n = local.dim(1);
        Tensor<std::int64_t> rows(Shape{n, K});
        for (index_t k = 0; k < K; ++k)
            for (index_t i = 0; i < n; ++i) rows(i, k) = local(k, i);
        const Tensor<std::int64_t> all = gather_rows<std::int64_t>(rows.cview(), "gather_meta");
        Tensor<std::int64_t> out(Shape{K, all.dim(0)});
        for (index_t k = 0; k < K; ++k)
            for (index_t i = 0; i < all.dim(0); ++i) out(k, i) = all(i, k);
        return out;
    }

    Tensor<T> local_rows(ConstView<T> global) override { return own_rows<T>(global); }

    Tensor<std::int64_t> local_meta(ConstView<std::int64_t> global) override {
        check(global.rank() == 2 && global.dim(1) == 2 * part_.total(), "dist::DataParallelGcl::local_meta",
              "meta labels must be [K, ", 2 * part_.total(), "], got ", global.shape());
        const index_t K = global.dim(0), b = own_images(), first = first_image(), B = part_.total();
        Tensor<std::int64_t> out(Shape{K, 2 * b});
        for (index_t k = 0; k < K; ++k)
            for (index_t v = 0; v < 2; ++v)
                for (index_t i = 0; i < b; ++i) out(k, v * b + i) = global(k, v * B + first + i);
        return out;
    }

    surgery::MitigateReport mitigate(ConstView<T> local_grads, TensorView<T> out, const surgery::MitigateOptions& options,
                                     std::uint64_t step) override {
        // ShardedGradMitigator mitigates the mean of the ranks' G_r; the single-process G is their
        // sum, so each rank passes S G_r (exact for a power-of-two S).
        scaled_ = Tensor<T>::copy_of(local_grads);
        const T ranks = static_cast<T>(comm_->size());
        for (index_t i = 0; i < scaled_.numel(); ++i) scaled_.data()[i] *= ranks;
        if (!mitigator_ || !same(mitigator_->options(), options)) mitigator_.emplace(options);
        return mitigator_->run({.local_grads = scaled_.cview(), .out = out, .step = step}, *comm_);
    }

    void sum_gradient(TensorView<T> grad) override {
        check(grad.is_contiguous(), "dist::DataParallelGcl", "the gradient must be contiguous");
        comm_->all_reduce_sum(grad.data(), grad.numel());
    }

    bool writes_checkpoints() const override { return comm_->rank() == 0; }
    void share_bytes(std::vector<unsigned char>& bytes) override { broadcast_bytes(*comm_, bytes); }

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

    template <class U>
    Tensor<U> gather_rows(ConstView<U> local, const char* what) {
        const index_t B = part_.total(), b = own_images();
        check(local.rank() >= 1 && local.dim(0) == 2 * b && local.is_contiguous(), "dist::DataParallelGcl", what,
              ": this rank holds ", b, " images (", 2 * b, " rows), got a tensor of shape ", local.shape());
        const index_t width = local.numel() / local.dim(0);
        const int S = comm_->size();
        std::vector<index_t> counts(static_cast<std::size_t>(S));
        for (int r = 0; r < S; ++r) counts[r] = 2 * part_.counts[r] * width;
        std::vector<U> blocks(static_cast<std::size_t>(2 * B * width));
        comm_->all_gather(local.data(), blocks.data(), std::span<const index_t>(counts));
        Shape shape = local.shape();
        shape[0] = 2 * B;
        Tensor<U> out(shape);
        // Rank blocks [views 0 of its images | views 1] -> [all views 0 | all views 1].
        index_t at = 0;
        for (int r = 0; r < S; ++r)
            for (index_t v = 0; v < 2; ++v) {
                const index_t n = part_.counts[r] * width;
                std::copy(blocks.data() + at, blocks.data() + at + n, out.data() + (v * B + part_.offsets[r]) * width);
                at += n;
            }
        return out;
    }

    template <class U>
    Tensor<U> own_rows(ConstView<U> global) {
        const index_t B = part_.total(), b = own_images(), first = first_image();
        check(global.rank() >= 1 && global.dim(0) == 2 * B && global.is_contiguous(), "dist::DataParallelGcl",
              "local_rows: the global batch has ", 2 * B, " rows, got a tensor of shape ", global.shape());
        const index_t width = global.numel() / global.dim(0);
        Shape shape = global.shape();
        shape[0] = 2 * b;
        Tensor<U> out(shape);
        for (index_t v = 0; v < 2; ++v)
            std::copy(global.data() + (v * B + first) * width, global.data() + (v * B + first + b) * width,
                      out.data() + v * b * width);
        return out;
    }

    Comm* comm_;
    Partition part_;
    Tensor<T> scaled_;
    std::optional<ShardedGradMitigator<T>> mitigator_;
};

template <class T, class Comm>
    requires CommunicatorFor<Comm, T> && CommunicatorFor<Comm, double> && CommunicatorFor<Comm, std::int64_t> &&
             CommunicatorFor<Comm, std::uint8_t>
class DataParallelGcl {
    // The exchange first: its checks run before the broadcasts.
public:
    DataParallelGcl(Comm& comm, nn::ParameterArena<T, cpu>& arena, index_t global_batch_size,
                    const DataParallelGclOptions& options = {})
        : exchange_(comm, global_batch_size), replica_(comm, arena, options.batch_norm) {}

    GclRankExchange<T, Comm>& exchange() { return exchange_; }

private:
    GclRankExchange<T, Comm> exchange_;
    ReplicatedArena<T, Comm> replica_;
};

}  // namespace gcl::dist
