#pragma once
// The first pass of the CUDA mitigation: Q = G G^T for a K x P matrix G in device memory,
// accumulated in double and bitwise repeatable.
//
// Columns are cut into fixed chunks of gram_chunk. One block sums one chunk: thread t takes the
// columns begin + t, begin + t + gram_threads, ... in order, then a fixed-order block sum
// (backend/cuda/block_sum.cuh) writes the chunk's partial sums to their own slots. A second kernel adds the
// slots of each entry, again in a fixed order. Nothing depends on the grid size, the number of
// SMs or the scheduling, so the same input gives the same Q, bit for bit, on every run.
//
// One sweep handles up to gram_max_rows rows, with all their pairs in registers. For K above
// that, rows are taken in groups of four and every pair of groups is swept once (rows of both
// groups together), which reads each row (number of groups - 1) times.
#include <algorithm>
#include <cstddef>
#include <vector>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/core/shape.hpp"
#include "gcl/surgery/cuda/detail/launch.cuh"

namespace gcl::surgery::cuda_impl {

inline constexpr int gram_threads = 256;                  // threads per block of the chunk kernel
inline constexpr index_t gram_chunk = 8192;               // columns per chunk (fixed: GPU independent)
inline constexpr int gram_max_rows = 8;                   // rows one sweep handles
inline constexpr int gram_max_pairs = gram_max_rows * (gram_max_rows + 1) / 2;
inline constexpr int gram_group_rows = 4;                 // rows per group when K > gram_max_rows
inline constexpr int gram_finish_threads = 256;

inline index_t gram_chunks(index_t P) { return (P + gram_chunk - 1) / gram_chunk; }

// Slot of the pair (i, j), i <= j < R, in row-major upper-triangle order.
__host__ __device__ constexpr int pair_slot(int i, int j, int R) { return i * R - i * (i - 1) / 2 + (j - i); }

// The rows of one sweep (a kernel argument).
template <class T>
struct SweepRows {
    const T* row[gram_max_rows];
};

// Where each pair of a sweep goes in Q (row-major K x K): entry and its mirror, or -1 when another
// sweep already provides that entry.
struct SweepTargets {
    index_t entry[gram_max_pairs];
    index_t mirror[gram_max_pairs];
};

// Thread t's share of chunk c: acc[pair_slot(i, j, R)] = sum of row_i[p] * row_j[p] over the
// columns p = begin + t, begin + t + Threads, ... below the chunk's end, in that order.
template <class T, int R, int Threads>
__host__ __device__ __forceinline__ void gram_thread_sums(const SweepRows<T>& rows, index_t P, index_t c, int t,
                                                          double (&acc)[R * (R + 1) / 2]) {
    const index_t begin = c * gram_chunk;
    const index_t end = begin + gram_chunk < P ? begin + gram_chunk : P;
#pragma unroll
    for (int q = 0; q < R * (R + 1) / 2; ++q) acc[q] = 0;
#pragma unroll 4
    for (index_t p = begin + t; p < end; p += Threads) {
        double x[R];
#pragma unroll
        for (int k = 0; k < R; ++k) x[k] = static_cast<double>(rows.row[k][p]);
#pragma unroll
        for (int i = 0; i < R; ++i)
#pragma unroll
            for (int j = i; j < R; ++j) acc[pair_slot(i, j, R)] += x[i] * x[j];
    }
}

// partials[c * NP + q] = the sum over chunk c of row_i * row_j, q = pair_slot(i, j, R), NP = R (R + 1) / 2.
template <class T, int R>
__global__ void __launch_bounds__(gram_threads)
    gram_chunk_kernel(SweepRows<T> rows, index_t P, index_t chunks, double* partials) {
    constexpr int NP = R * (R + 1) / 2;
    __shared__ double shared[(gram_threads / warp_size) * NP];
    for (index_t c = blockIdx.x; c < chunks; c += gridDim.x) {  // uniform per block: all threads reach block_sum
        double acc[NP];
        gram_thread_sums<T, R, gram_threads>(rows, P, c, static_cast<int>(threadIdx.x), acc);
        const double total = block_sum<gram_threads, NP>(acc, shared);
        if (static_cast<int>(threadIdx.x) < NP) partials[c * NP + threadIdx.x] = total;
    }
}

// Thread t's share of entry q: partials[c * np + q] over the chunks c = t, t + Threads, ..., in order.
template <int Threads>
__host__ __device__ __forceinline__ double gram_finish_thread_sum(const double* partials, index_t chunks, int np, int q,
                                                                  int t) {
    double s = 0;
    for (index_t c = t; c < chunks; c += Threads) s += partials[c * np + q];
    return s;
}

// Block q adds the chunks' partial sums of entry q (gram_finish_thread_sum, then the fixed-order
// block sum) and writes the total to its targets in Q.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    gram_finish_kernel(const double* partials, index_t chunks, int np, SweepTargets targets, double* gram) {
    __shared__ double shared[Threads / warp_size];
    for (int q = static_cast<int>(blockIdx.x); q < np; q += static_cast<int>(gridDim.x)) {
        const double v[1] = {gram_finish_thread_sum<Threads>(partials, chunks, np, q, static_cast<int>(threadIdx.x))};
        const double total = block_sum<Threads, 1>(v, shared);
        if (threadIdx.x == 0 && targets.entry[q] >= 0) {
            gram[targets.entry[q]] = total;
            gram[targets.mirror[q]] = total;
        }
    }
}

template <class T, int R>
void launch_gram_chunks_fixed(const SweepRows<T>& rows, index_t P, double* partials, cudaStream_t stream) {
    const index_t chunks = gram_chunks(P);
    const auto blocks = static_cast<unsigned>(std::min<index_t>(chunks, index_t{1} << 20));
    gram_chunk_kernel<T, R><<<blocks, gram_threads, 0, stream>>>(rows, P, chunks, partials);
    GCL_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_gram_chunks(int R, const SweepRows<T>& rows, index_t P, double* partials, cudaStream_t stream) {
    switch (R) {
        case 1: launch_gram_chunks_fixed<T, 1>(rows, P, partials, stream); break;
        case 2: launch_gram_chunks_fixed<T, 2>(rows, P, partials, stream); break;
        case 3: launch_gram_chunks_fixed<T, 3>(rows, P, partials, stream); break;
        case 4: launch_gram_chunks_fixed<T, 4>(rows, P, partials, stream); break;
        case 5: launch_gram_chunks_fixed<T, 5>(rows, P, partials, stream); break;
        case 6: launch_gram_chunks_fixed<T, 6>(rows, P, partials, stream); break;
        case 7: launch_gram_chunks_fixed<T, 7>(rows, P, partials, stream); break;
        default: launch_gram_chunks_fixed<T, 8>(rows, P, partials, stream); break;
    }
}

// Largest number of pairs in one sweep for K rows.
inline int gram_sweep_pairs(index_t K) {
    const auto R = static_cast<int>(std::min<index_t>(K, gram_max_rows));
    return R * (R + 1) / 2;
}

// Device workspace (in doubles) of gram_pass: one sweep's partial sums, then Q.
inline std::size_t gram_workspace(index_t K, index_t P) {
    return static_cast<std::size_t>(gram_chunks(P) * gram_sweep_pairs(K) + K * K);
}

// One sweep: its rows (ascending) and where each of its pairs goes in Q.
struct GramSweep {
    std::vector<index_t> rows;
    SweepTargets targets;
    int pairs() const { return static_cast<int>(rows.size() * (rows.size() + 1) / 2); }
};

// The sweeps that together cover every pair of K rows; every entry of Q (and its mirror) is
// written by exactly one sweep.
inline std::vector<GramSweep> gram_sweep_plan(index_t K) {
    std::vector<std::vector<index_t>> row_lists;
    if (K <= gram_max_rows) {
        std::vector<index_t> all(static_cast<std::size_t>(K));
        for (index_t k = 0; k < K; ++k) all[k] = k;
        row_lists.push_back(all);
    } else {
        const index_t groups = (K + gram_group_rows - 1) / gram_group_rows;
        for (index_t a = 0; a < groups; ++a)
            for (index_t b = a + 1; b < groups; ++b) {
                std::vector<index_t> rows;
                for (index_t g : {a, b})
                    for (index_t k = g * gram_group_rows; k < std::min(K, (g + 1) * gram_group_rows); ++k)
                        rows.push_back(k);
                row_lists.push_back(rows);
            }
    }
    std::vector<char> done(static_cast<std::size_t>(K * K), 0);
    std::vector<GramSweep> plan;
    for (const std::vector<index_t>& rows : row_lists) {
        GramSweep sweep{rows, {}};
        const int R = static_cast<int>(rows.size());
        for (int i = 0; i < R; ++i)
            for (int j = i; j < R; ++j) {
                const int q = pair_slot(i, j, R);
                const index_t entry = rows[i] * K + rows[j];
                sweep.targets.entry[q] = done[entry] ? -1 : entry;
                sweep.targets.mirror[q] = rows[j] * K + rows[i];
                done[entry] = 1;
            }
        plan.push_back(sweep);
    }
    return plan;
}

// Q (K x K, row-major) of the K rows grads + k * row_stride (P values each, device memory), into
// host memory `gram`. `workspace` holds gram_workspace(K, P) doubles of device memory. Returns
// when Q is on the host.
template <class T>
void gram_pass(const T* grads, index_t row_stride, index_t K, index_t P, double* workspace, double* gram,
               cudaStream_t stream) {
    double* partials = workspace;
    double* gram_device = workspace + gram_chunks(P) * gram_sweep_pairs(K);
    for (const GramSweep& sweep : gram_sweep_plan(K)) {
        const int R = static_cast<int>(sweep.rows.size());
        SweepRows<T> rows{};
        for (int r = 0; r < R; ++r) rows.row[r] = grads + sweep.rows[r] * row_stride;
        launch_gram_chunks<T>(R, rows, P, partials, stream);
        gram_finish_kernel<gram_finish_threads>
            <<<static_cast<unsigned>(sweep.pairs()), gram_finish_threads, 0, stream>>>(partials, gram_chunks(P),
                                                                                       sweep.pairs(), sweep.targets,
                                                                                       gram_device);
        GCL_CUDA_CHECK_LAUNCH();
    }
    download(gram, gram_device, static_cast<std::size_t>(K * K) * sizeof(double), stream);
}

}  // namespace gcl::surgery::cuda_impl
