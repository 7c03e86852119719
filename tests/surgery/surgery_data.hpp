#pragma once
// Test inputs and host-side measures for the surgery kernels, shared by the CPU tests, the CUDA
// tests and the emulated CUDA tests: gradients that conflict, with seeded noise; magnitudes with
// ties; the filter options every selection test runs; tolerances measured against the size of
// the terms that were added.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/surgery/filter_options.hpp"

namespace gcl::testing {

// K x P gradients: noise plus a shared direction whose coefficient per row is drawn from
// [-2, 2], so a good share of the pairs conflict and PCGrad has work to do.
template <class T>
Tensor<T> conflicting_gradients(index_t K, index_t P, std::uint64_t seed) {
    Tensor<T> g(Shape{K, P});
    Rng rng(seed);
    fill_normal<T>(g.view(), rng);
    Tensor<T> base(Shape{P});
    fill_normal<T>(base.view(), rng);
    for (index_t k = 0; k < K; ++k) {
        const T a = static_cast<T>(rng.uniform(-2.0, 2.0));
        for (index_t p = 0; p < P; ++p) g(k, p) += a * base(p);
    }
    return g;
}

// Label-major K x N x D gradients, as the losses produce them (the kernels read them transposed).
template <class T>
Tensor<T> label_major(index_t K, index_t N, index_t D, std::uint64_t seed) {
    Tensor<T> g = conflicting_gradients<T>(K, N * D, seed);
    g.reshape(Shape{K, N, D});
    return g;
}

// A x M magnitudes with many exact ties (levels > 0: multiples of 1/4 below levels / 4) or
// continuous values (levels 0).
template <class T>
Tensor<T> magnitudes(index_t A, index_t M, std::uint64_t seed, int levels) {
    Tensor<T> m(Shape{A, M});
    Rng rng(seed);
    fill_uniform<T>(m.view(), rng);
    if (levels > 0)
        for (index_t i = 0; i < m.numel(); ++i) m.data()[i] = std::floor(m.data()[i] * levels) / T(4);
    return m;
}

// The filter options of the selection tests: 7 without anchor weights, 9 with them.
inline std::vector<surgery::FilterOptions> filter_option_sets(bool weighted) {
    using surgery::FilterRule;
    std::vector<surgery::FilterOptions> all;
    for (index_t k : {1, 3, 250}) all.push_back({.rule = FilterRule::top_k_per_anchor, .k = k});
    for (double r : {0.001, 0.1, 0.5, 1.0}) all.push_back({.rule = FilterRule::top_ratio_global, .ratio = r});
    if (weighted) {
        all.push_back({.rule = FilterRule::top_k_per_anchor, .k = 2, .anchor_ratio = 0.3});
        all.push_back({.rule = FilterRule::top_ratio_global, .ratio = 0.2, .anchor_ratio = 0.5});
    }
    return all;
}

// The same mask and the same index list, element by element.
inline void require_same_selection(const surgery::FilterResult& a, const surgery::FilterResult& b) {
    REQUIRE(a.mask.shape() == b.mask.shape());
    REQUIRE(a.indices.shape() == b.indices.shape());
    for (index_t i = 0; i < a.mask.numel(); ++i) REQUIRE(a.mask.data()[i] == b.mask.data()[i]);
    for (index_t i = 0; i < a.indices.numel(); ++i) REQUIRE(a.indices.data()[i] == b.indices.data()[i]);
}

template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.numel())) == 0;
}

// Q = G G^T of a K x P host matrix, each entry one sequential sum in double.
template <class T>
Tensor<double> host_gram(const Tensor<T>& g) {
    const index_t K = g.dim(0), P = g.dim(1);
    Tensor<double> q(Shape{K, K});
    for (index_t i = 0; i < K; ++i)
        for (index_t j = 0; j < K; ++j) {
            double s = 0;
            for (index_t p = 0; p < P; ++p) s += static_cast<double>(g(i, p)) * static_cast<double>(g(j, p));
            q(i, j) = s;
        }
    return q;
}

// Largest |fast - ref| / (rtol * sum_k |w_k g_kp| + atol) over the columns p of a K x P matrix:
// at most 1 when every output is within rtol of the size of the terms that were added (so
// cancellation does not make the bound meaningless).
template <class T>
double worst_violation(const Tensor<T>& fast, const Tensor<T>& ref, const Tensor<T>& g, const Tensor<double>& weights,
                       double rtol, double atol) {
    const index_t K = g.dim(0), P = g.dim(1);
    double worst = 0;
    for (index_t p = 0; p < P; ++p) {
        double scale = 0;
        for (index_t k = 0; k < K; ++k) scale += std::abs(weights(k) * static_cast<double>(g(k, p)));
        const double err = std::abs(static_cast<double>(fast(p)) - static_cast<double>(ref(p)));
        worst = std::max(worst, err / (rtol * scale + atol));
    }
    return worst;
}

// The same measure per sample of an N x K x D batch (weights N x K) against an N x D result.
template <class T>
double worst_batched_violation(const Tensor<T>& fast, const Tensor<T>& ref, const ConstView<T>& per_sample,
                               const Tensor<double>& weights, double rtol, double atol) {
    const index_t N = per_sample.dim(0), K = per_sample.dim(1), D = per_sample.dim(2);
    double worst = 0;
    for (index_t n = 0; n < N; ++n)
        for (index_t d = 0; d < D; ++d) {
            double scale = 0;
            for (index_t k = 0; k < K; ++k) scale += std::abs(weights(n, k) * static_cast<double>(per_sample(n, k, d)));
            const double err = std::abs(static_cast<double>(fast(n, d)) - static_cast<double>(ref(n, d)));
            worst = std::max(worst, err / (rtol * scale + atol));
        }
    return worst;
}

}  // namespace gcl::testing
