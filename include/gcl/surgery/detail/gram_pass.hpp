#pragma once
// The first pass of the mitigation: Q = G G^T for a K x P matrix G, reading G once.
//
// Columns are split into fixed chunks; each chunk's partial Gram matrix (upper triangle, in
// double) goes to its own workspace slot and the slots are added in chunk order, so Q does not
// depend on the number of threads. Inside a chunk, products are accumulated in T in short
// vectors over blocks of columns and flushed to double after each block.
//   K <= 4: one sweep over the columns keeps all K(K+1)/2 accumulators in registers.
//   K > 4:  rows in groups of four; each block of columns (a few KB per row, L1-resident after
//           its first touch) is swept once per group and once per 2 x 4 tile across groups.
#include <algorithm>
#include <cstddef>

#include "gcl/core/shape.hpp"
#include "gcl/surgery/detail/simd.hpp"

namespace gcl::surgery::detail {

inline constexpr index_t pass_chunk = index_t{1} << 15;  // columns per chunk (fixed: thread-count independent)

template <class T>
inline constexpr index_t gram_block = 2048 / static_cast<index_t>(sizeof(T));  // columns per flush to double

inline index_t pass_chunks(index_t P) { return (P + pass_chunk - 1) / pass_chunk; }
inline index_t gram_pairs(index_t K) { return K * (K + 1) / 2; }

// Upper-triangle pair index of (i, j), i <= j, row-major.
inline index_t pair_index(index_t i, index_t j, index_t K) { return i * K - i * (i - 1) / 2 + (j - i); }

// All pairs of K (<= 4) rows over columns [begin, end), added to acc (upper triangle, row-major).
template <int K, class T>
void gram_all_pairs(const T* const* rows, index_t begin, index_t end, double* acc) {
    using V = simd_t<T>;
    constexpr int W = simd<T>::width;
    constexpr int NP = K * (K + 1) / 2;
    const T* r[K];
    for (int k = 0; k < K; ++k) r[k] = rows[k];
    index_t p = begin;
    while (end - p >= W) {
        const index_t stop = std::min(end, p + gram_block<T>);
        V s[NP] = {};
        for (; p + W <= stop; p += W) {
            V x[K];
GCL_SIMD_UNROLL(8)
            for (int k = 0; k < K; ++k) x[k] = load(r[k] + p);
            int q = 0;
GCL_SIMD_UNROLL(8)
            for (int i = 0; i < K; ++i)
GCL_SIMD_UNROLL(8)
                for (int j = i; j < K; ++j) s[q++] += x[i] * x[j];
        }
        for (int q = 0; q < NP; ++q) acc[q] += lane_sum<T>(s[q]);
    }
    for (; p < end; ++p) {
        int q = 0;
        for (int i = 0; i < K; ++i)
            for (int j = i; j < K; ++j) acc[q++] += static_cast<double>(r[i][p]) * static_cast<double>(r[j][p]);
    }
}

// Dot products of the RI (<= 2) rows a with the RJ (<= 4) rows b over [begin, end), a range short
// enough to accumulate in T; out[i * RJ + j] += a_i . b_j.
template <int RI, int RJ, class T>
void cross_tile(const T* const* a, const T* const* b, index_t begin, index_t end, double* out) {
    using V = simd_t<T>;
    constexpr int W = simd<T>::width;
    V s[RI * RJ] = {};
    index_t p = begin;
    for (; p + W <= end; p += W) {
        V x[RI], y[RJ];
GCL_SIMD_UNROLL(2)
        for (int i = 0; i < RI; ++i) x[i] = load(a[i] + p);
GCL_SIMD_UNROLL(4)
        for (int j = 0; j < RJ; ++j) y[j] = load(b[j] + p);
GCL_SIMD_UNROLL(2)
        for (int i = 0; i < RI; ++i)
GCL_SIMD_UNROLL(4)
            for (int j = 0; j < RJ; ++j) s[i * RJ + j] += x[i] * y[j];
    }
    for (int i = 0; i < RI; ++i)
        for (int j = 0; j < RJ; ++j) {
            double tail = 0;
            for (index_t q = p; q < end; ++q) tail += static_cast<double>(a[i][q]) * static_cast<double>(b[j][q]);
            out[i * RJ + j] += lane_sum<T>(s[i * RJ + j]) + tail;
        }
}

template <int RI, class T>
void cross_tile_rj(index_t rj, const T* const* a, const T* const* b, index_t begin, index_t end, double* out) {
    switch (rj) {
        case 4: cross_tile<RI, 4>(a, b, begin, end, out); break;
        case 3: cross_tile<RI, 3>(a, b, begin, end, out); break;
        case 2: cross_tile<RI, 2>(a, b, begin, end, out); break;
        default: cross_tile<RI, 1>(a, b, begin, end, out); break;
    }
}

template <class T>
void gram_all_pairs_any(const T* const* rows, index_t R, index_t begin, index_t end, double* acc) {
    switch (R) {
        case 1: gram_all_pairs<1>(rows, begin, end, acc); break;
        case 2: gram_all_pairs<2>(rows, begin, end, acc); break;
        case 3: gram_all_pairs<3>(rows, begin, end, acc); break;
        default: gram_all_pairs<4>(rows, begin, end, acc); break;
    }
}

// Any K: rows in groups of four. Each block of columns (L1-resident after its first touch) is
// swept once per group for the pairs inside it, and once per 2 x 4 tile for pairs across groups.
template <class T>
void gram_tiled(const T* const* rows, index_t K, index_t begin, index_t end, double* acc) {
    double local[10];
    for (index_t b0 = begin; b0 < end; b0 += gram_block<T>) {
        const index_t b1 = std::min(end, b0 + gram_block<T>);
        for (index_t g0 = 0; g0 < K; g0 += 4) {
            const index_t rg = std::min<index_t>(4, K - g0);
            std::fill(local, local + 10, 0.0);
            gram_all_pairs_any(rows + g0, rg, b0, b1, local);
            index_t q = 0;
            for (index_t i = 0; i < rg; ++i)
                for (index_t j = i; j < rg; ++j) acc[pair_index(g0 + i, g0 + j, K)] += local[q++];
            for (index_t i0 = g0; i0 < g0 + rg; i0 += 2) {
                const index_t ri = std::min<index_t>(2, g0 + rg - i0);
                for (index_t j0 = g0 + 4; j0 < K; j0 += 4) {
                    const index_t rj = std::min<index_t>(4, K - j0);
                    std::fill(local, local + 8, 0.0);
                    if (ri == 2)
                        cross_tile_rj<2>(rj, rows + i0, rows + j0, b0, b1, local);
                    else
                        cross_tile_rj<1>(rj, rows + i0, rows + j0, b0, b1, local);
                    for (index_t i = 0; i < ri; ++i)
                        for (index_t j = 0; j < rj; ++j) acc[pair_index(i0 + i, j0 + j, K)] += local[i * rj + j];
                }
            }
        }
    }
}

template <class T>
void gram_columns(const T* const* rows, index_t K, index_t begin, index_t end, double* acc) {
    switch (K) {
        case 1: gram_all_pairs<1>(rows, begin, end, acc); break;
        case 2: gram_all_pairs<2>(rows, begin, end, acc); break;
        case 3: gram_all_pairs<3>(rows, begin, end, acc); break;
        case 4: gram_all_pairs<4>(rows, begin, end, acc); break;
        default: gram_tiled(rows, K, begin, end, acc); break;
    }
}

// Workspace doubles needed by gram_pass for K rows of P columns.
inline std::size_t gram_workspace(index_t K, index_t P) {
    return static_cast<std::size_t>(pass_chunks(P) * gram_pairs(K));
}

// Q (K x K, row-major, symmetric) of the K rows; `workspace` holds gram_workspace(K, P) doubles.
template <class T>
void gram_pass(const T* const* rows, index_t K, index_t P, double* workspace, double* gram) {
    const index_t chunks = pass_chunks(P);
    const index_t np = gram_pairs(K);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (index_t c = 0; c < chunks; ++c) {
        double* acc = workspace + c * np;
        std::fill(acc, acc + np, 0.0);
        gram_columns(rows, K, c * pass_chunk, std::min(P, (c + 1) * pass_chunk), acc);
    }
    for (index_t i = 0; i < K; ++i)
        for (index_t j = i; j < K; ++j) {
            double q = 0;
            const index_t pi = pair_index(i, j, K);
            for (index_t c = 0; c < chunks; ++c) q += workspace[c * np + pi];
            gram[i * K + j] = q;
            gram[j * K + i] = q;
        }
}

}  // namespace gcl::surgery::detail
