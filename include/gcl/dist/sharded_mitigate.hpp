#pragma once
// dist::ShardedGradMitigator: GradMitigator on the global per-label gradients of a data-parallel
// job, G = mean over ranks r of G_r (K x P), without ever gathering G on one rank.
//
//   1. reduce-scatter G_r: rank r receives the K rows of G restricted to its slice of the columns;
//   2. each rank forms its slice's partial Gram matrix; one all-reduce of K x K doubles gives Q;
//   3. every rank computes the same weights w from Q (same seed, step and projection orders);
//   4. each rank writes w^T G on its slice, and an all-gather assembles the combined gradient
//      (or the slice is kept, for an optimizer whose state is sharded the same way).
// Traffic per rank: reduce-scatter of K P values plus all-gather of P, against plain data
// parallel's all-reduce of P (= reduce-scatter P + all-gather P): (K + 1) / 2 times, not K.
// The result is the single-process mitigation of G, up to the order of the sums over ranks.
//
//   dist::ShardedGradMitigator<float> mitigator({.seed = 1});            // host, MpiCommunicator
//   auto report = mitigator.run({.local_grads = G_r, .out = g, .step = step}, comm);
//   dist::ShardedGradMitigator<float, cuda> on_gpus({.seed = 1});        // device, NcclCommunicator
//   (include gcl/dist/cuda/shard_passes.cuh; out is written when comm.stream() gets there)
#include <cmath>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/dist/communicator.hpp"
#include "gcl/dist/partition.hpp"
#include "gcl/dist/shard_passes.hpp"
#include "gcl/core/buffer.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/surgery/gram_weights.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/mitigate_options.hpp"

namespace gcl::dist {

template <class T, class D = cpu>
class ShardedGradMitigator {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "ShardedGradMitigator works on float or double");
    using Passes = ShardPasses<T, D>;

public:
    struct Arguments {
        ConstView<T, D> local_grads;  // K x P: this rank's per-label gradients (of its part of the global batch)
        TensorView<T, D> out;         // [P]: the combined gradient, on every rank; or [slice] with gather = false
        std::uint64_t step = 0;       // with the seed, fixes the projection orders (the same on every rank)
        bool gather = true;           // false: out is this rank's slice (Partition(P, size).counts[rank] columns)
    };

    explicit ShardedGradMitigator(surgery::MitigateOptions options = {}) : options_(options) {}
    const surgery::MitigateOptions& options() const { return options_; }

    template <class Comm>
        requires CommunicatorFor<Comm, T> && CommunicatorFor<Comm, double>
    surgery::MitigateReport run(const Arguments& args, Comm& comm) {
        constexpr std::string_view op = "ShardedGradMitigator";
        const ConstView<T, D>& G = args.local_grads;
        check(G.rank() == 2 && G.dim(0) >= 1 && G.dim(1) >= 1, op, "local_grads must be a non-empty K x P matrix, got shape ",
              G.shape());
        check(G.is_contiguous(), op, "local_grads must be contiguous, got shape ", G.shape());
        const index_t K = G.dim(0), P = G.dim(1);
        const int S = comm.size(), me = comm.rank();
        const Partition part(P, S);
        const index_t mine = part.counts[static_cast<std::size_t>(me)];
        const index_t expected = args.gather ? P : mine;
        check(args.out.rank() == 1 && args.out.dim(0) == expected && args.out.is_contiguous(), op, "out must be a contiguous [",
              expected, "] vector (", args.gather ? "the whole gradient" : "this rank's slice", "), got shape ",
              args.out.shape());

        // 1. Columns packed rank by rank, summed over ranks onto their owners and divided by S:
        //    this rank's slice of the global G.
        Passes::reserve(send_, K * P, comm);
        Passes::reserve(slice_, K * std::max<index_t>(mine, 1), comm);
        Passes::pack(G.data(), K, P, part, send_.data(), comm);
        std::vector<index_t> counts(static_cast<std::size_t>(S));
        for (int r = 0; r < S; ++r) counts[r] = K * part.counts[r];
        comm.reduce_scatter_sum(send_.data(), slice_.data(), std::span<const index_t>(counts));
        Passes::scale(slice_.data(), K * mine, static_cast<T>(1) / static_cast<T>(S), comm);

        // 2. The slice's Gram matrix, summed over ranks: Q of the global G.
        surgery::MitigateReport report;
        report.gram = Tensor<double>(Shape{K, K});
        double* gram = report.gram.data();
        Passes::gram(slice_.data(), K, mine, gram, comm);
        Passes::sum_gram(gram, K, comm);
        // NaN or Inf in a row shows in its squared norm; an infinite off-diagonal entry with finite
        // norms is an overflow. Q is the same on every rank, so every rank raises the same error.
        for (index_t k = 0; k < K; ++k)
            if (!std::isfinite(gram[k * K + k]))
                fail(op, "the global gradient row ", k, " is not finite (a NaN or Inf in some rank's gradients)");
        for (index_t i = 0; i < K * K; ++i)
            if (!std::isfinite(gram[i]))
                fail(op, "the dot products of global gradient rows ", i / K, " and ", i % K,
                     " overflow; the gradients are too large to combine");

        // 3. The weights, identical on every rank.
        report.weights = Tensor<double>(Shape{K});
        report.coefficients = Tensor<double>(Shape{K, K});
        const surgery::GramWeightCounts c = surgery::gram_weights(gram, K, options_, args.step, 0, report.weights.data(),
                                                                  report.coefficients.data());
        report.conflicting_pairs = c.conflicting_pairs;
        report.projections = c.projections;
        report.skipped_rows = c.skipped_rows;

        // 4. w^T G on the slice, then (optionally) every slice to every rank.
        std::vector<T> w(static_cast<std::size_t>(K));
        for (index_t k = 0; k < K; ++k) w[k] = static_cast<T>(report.weights(k));
        if (!args.gather) {
            Passes::combine(slice_.data(), K, mine, w.data(), args.out.data(), comm);
            return report;
        }
        Passes::reserve(combined_, std::max<index_t>(mine, 1), comm);
        Passes::combine(slice_.data(), K, mine, w.data(), combined_.data(), comm);
        comm.all_gather(combined_.data(), args.out.data(), std::span<const index_t>(part.counts));
        return report;
    }

private:
    surgery::MitigateOptions options_;
    Buffer<T, D> send_, slice_, combined_;  // kept between steps: a steady-state step allocates nothing here
};

// Plain data parallel: g becomes the mean over ranks of every rank's g (one all-reduce), on the
// communicator's device.
template <class T, class Comm>
    requires CommunicatorFor<Comm, T>
void average_gradients(TensorView<T, typename Comm::device_type> g, Comm& comm) {
    check(g.is_contiguous(), "dist::average_gradients", "the gradient must be contiguous, got shape ", g.shape());
    comm.all_reduce_sum(g.data(), g.numel());
    ops::scale(g, static_cast<T>(1) / static_cast<T>(comm.size()), g);
}

}  // namespace gcl::dist
