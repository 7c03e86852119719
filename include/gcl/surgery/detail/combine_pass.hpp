#pragma once
// The second pass of the mitigation: out = w^T G for a K x P matrix G, reading G once and
// writing out once. `out` may be one of the rows of G (each column is read before it is written).
#include <algorithm>

#include "gcl/core/shape.hpp"
#include "gcl/surgery/detail/gram_pass.hpp"
#include "gcl/surgery/detail/simd.hpp"

namespace gcl::surgery::detail {

template <int K, class T>
void combine_fixed(const T* const* rows, const T* w, index_t begin, index_t end, T* out) {
    using V = simd_t<T>;
    constexpr int W = simd<T>::width;
    const T* r[K];
    V wv[K];
    for (int k = 0; k < K; ++k) {
        r[k] = rows[k];
        wv[k] = broadcast<T>(w[k]);
    }
    index_t p = begin;
    for (; p + W <= end; p += W) {
        V s = wv[0] * load(r[0] + p);
GCL_SIMD_UNROLL(8)
        for (int k = 1; k < K; ++k) s += wv[k] * load(r[k] + p);
        store(out + p, s);
    }
    for (; p < end; ++p) {
        T s = w[0] * r[0][p];
        for (int k = 1; k < K; ++k) s += w[k] * r[k][p];
        out[p] = s;
    }
}

template <class T>
void combine_any(const T* const* rows, index_t K, const T* w, index_t begin, index_t end, T* out) {
    using V = simd_t<T>;
    constexpr int W = simd<T>::width;
    index_t p = begin;
    for (; p + W <= end; p += W) {
        V s = broadcast<T>(w[0]) * load(rows[0] + p);
        for (index_t k = 1; k < K; ++k) s += broadcast<T>(w[k]) * load(rows[k] + p);
        store(out + p, s);
    }
    for (; p < end; ++p) {
        T s = w[0] * rows[0][p];
        for (index_t k = 1; k < K; ++k) s += w[k] * rows[k][p];
        out[p] = s;
    }
}

template <class T>
void combine_columns(const T* const* rows, index_t K, const T* w, index_t begin, index_t end, T* out) {
    switch (K) {
        case 1: combine_fixed<1>(rows, w, begin, end, out); break;
        case 2: combine_fixed<2>(rows, w, begin, end, out); break;
        case 3: combine_fixed<3>(rows, w, begin, end, out); break;
        case 4: combine_fixed<4>(rows, w, begin, end, out); break;
        case 5: combine_fixed<5>(rows, w, begin, end, out); break;
        case 6: combine_fixed<6>(rows, w, begin, end, out); break;
        case 7: combine_fixed<7>(rows, w, begin, end, out); break;
        case 8: combine_fixed<8>(rows, w, begin, end, out); break;
        default: combine_any(rows, K, w, begin, end, out); break;
    }
}

// out[p] = sum_k w[k] rows[k][p] for p < P, in the same chunks as the Gram pass.
template <class T>
void combine_pass(const T* const* rows, index_t K, index_t P, const T* w, T* out) {
    const index_t chunks = (P + pass_chunk - 1) / pass_chunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (index_t c = 0; c < chunks; ++c)
        combine_columns(rows, K, w, c * pass_chunk, std::min(P, (c + 1) * pass_chunk), out);
}

}  // namespace gcl::surgery::detail
