#pragma once
// dist::ShardPasses<T, D>: the per-device passes of the sharded mitigation (sharded_mitigate.hpp):
// packing the columns rank by rank, scaling, the Gram matrix of a slice, the K x K sum over ranks, and
// w^T G on a slice. The host passes are here; the CUDA ones in dist/cuda/shard_passes.cuh, which
// queue their work on the communicator's stream. Each takes the communicator for that reason.
#include <algorithm>
#include <span>
#include <vector>

#include "gcl/core/buffer.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/dist/partition.hpp"
#include "gcl/surgery/detail/combine_pass.hpp"
#include "gcl/surgery/detail/gram_pass.hpp"

namespace gcl::dist {

template <class T, class D>
struct ShardPasses;

template <class T>
struct ShardPasses<T, cpu> {
    // send = G's columns rank by rank: block r holds the K rows of slice r (K x counts[r]).
    template <class Comm>
    static void pack(const T* G, index_t K, index_t P, const Partition& part, T* send, Comm&) {
        for (int r = 0; r < part.ranks(); ++r) {
            const index_t off = part.offsets[r], n = part.counts[r];
            T* block = send + K * off;
            for (index_t k = 0; k < K; ++k) std::copy(G + k * P + off, G + k * P + off + n, block + k * n);
        }
    }

    template <class Comm>
    static void scale(T* x, index_t n, T factor, Comm&) {
        for (index_t i = 0; i < n; ++i) x[i] *= factor;
    }

    // gram (host, K x K) = S S^T for the K x n slice (rows contiguous); zero when n == 0.
    template <class Comm>
    static void gram(const T* slice, index_t K, index_t n, double* gram, Comm&) {
        if (n == 0) {
            std::fill(gram, gram + K * K, 0.0);
            return;
        }
        rows_.resize(static_cast<std::size_t>(K));
        for (index_t k = 0; k < K; ++k) rows_[k] = slice + k * n;
        workspace_.resize(surgery::detail::gram_workspace(K, n));
        surgery::detail::gram_pass(rows_.data(), K, n, workspace_.data(), gram);
    }

    // The host K x K matrix summed over ranks, then rank 0's sum given to every rank, so all
    // solve the same problem whatever order the all-reduce added in.
    template <class Comm>
    static void sum_gram(double* gram, index_t K, Comm& comm) {
        comm.all_reduce_sum(gram, K * K);
        comm.broadcast(gram, K * K, 0);
    }

    // out (n) = sum_k w[k] slice_k, w on the host.
    template <class Comm>
    static void combine(const T* slice, index_t K, index_t n, const T* w, T* out, Comm&) {
        if (n == 0) return;
        rows_.resize(static_cast<std::size_t>(K));
        for (index_t k = 0; k < K; ++k) rows_[k] = slice + k * n;
        surgery::detail::combine_pass(rows_.data(), K, n, w, out);
    }

    // Memory for n values; kept when large enough.
    template <class Comm>
    static void reserve(Buffer<T, cpu>& buffer, index_t n, Comm&) {
        if (buffer.size() < static_cast<std::size_t>(n)) buffer = Buffer<T, cpu>(static_cast<std::size_t>(n));
    }

private:
    static inline thread_local std::vector<const T*> rows_;
    static inline thread_local std::vector<double> workspace_;
};

}  // namespace gcl::dist
