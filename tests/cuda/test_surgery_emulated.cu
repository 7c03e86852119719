// The CUDA surgery kernels' per-thread code, run on the host in launch order: needs no GPU.
//
// Every kernel in gcl/surgery/cuda is a grid-stride loop (or one block per chunk or sample)
// around a __host__ __device__ item function: gram_thread_sums, gram_finish_thread_sum,
// combine_column, batched_thread_dot, batched_combine_item, pair_key, write_*_item. Here the same
// functions run for every thread and item, block_sum's fixed order is replayed, and the results
// go through the same host code as the kernels (gram_sweep_plan, gram_weights, filter_sizes,
// active_ranks), then get compared with the CPU kernels. This checks the index arithmetic of the
// kernels on this machine; the launches, shuffles, CUB sort and transfers are checked by the GPU
// tests (test_cuda_surgery), which need a device.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "../surgery/surgery_data.hpp"
#include "support/block_sum_replay.hpp"
#include "gcl/cuda.cuh"
#include "gcl/surgery/filter.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/mitigate_batched.hpp"
#include "gcl/surgery/reference/mitigate.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::surgery::FilterOptions;
using gcl::surgery::FilterResult;
using gcl::surgery::FilterRule;
using gcl::surgery::MitigateOptions;
using gcl::surgery::MitigateReport;
using gcl::surgery::Reduction;
namespace impl = gcl::surgery::cuda_impl;

namespace {

// gram_chunk_kernel<T, R> for every chunk and thread: partials[c * NP + q].
template <class T, int R>
std::vector<double> replay_gram_chunks(const impl::SweepRows<T>& rows, index_t P) {
    constexpr int NP = R * (R + 1) / 2;
    const index_t chunks = impl::gram_chunks(P);
    std::vector<double> partials(static_cast<std::size_t>(chunks * NP), std::numeric_limits<double>::quiet_NaN());
    std::vector<std::vector<double>> per_pair(NP, std::vector<double>(impl::gram_threads));
    for (index_t c = 0; c < chunks; ++c) {
        for (int t = 0; t < impl::gram_threads; ++t) {
            double acc[NP];
            impl::gram_thread_sums<T, R, impl::gram_threads>(rows, P, c, t, acc);
            for (int q = 0; q < NP; ++q) per_pair[q][t] = acc[q];
        }
        for (int q = 0; q < NP; ++q) partials[c * NP + q] = gcl_test::replay_block_sum(per_pair[q]);
    }
    return partials;
}

template <class T>
std::vector<double> replay_gram_chunks(int R, const impl::SweepRows<T>& rows, index_t P) {
    switch (R) {
        case 1: return replay_gram_chunks<T, 1>(rows, P);
        case 2: return replay_gram_chunks<T, 2>(rows, P);
        case 3: return replay_gram_chunks<T, 3>(rows, P);
        case 4: return replay_gram_chunks<T, 4>(rows, P);
        case 5: return replay_gram_chunks<T, 5>(rows, P);
        case 6: return replay_gram_chunks<T, 6>(rows, P);
        case 7: return replay_gram_chunks<T, 7>(rows, P);
        default: return replay_gram_chunks<T, 8>(rows, P);
    }
}

// gram_pass: the sweeps of gram_sweep_plan, each a chunk pass and a finish pass. Entries no
// sweep writes stay NaN.
template <class T>
Tensor<double> replay_gram_pass(const T* grads, index_t row_stride, index_t K, index_t P) {
    Tensor<double> gram(Shape{K, K}, std::numeric_limits<double>::quiet_NaN());
    for (const impl::GramSweep& sweep : impl::gram_sweep_plan(K)) {
        const int R = static_cast<int>(sweep.rows.size());
        impl::SweepRows<T> rows{};
        for (int r = 0; r < R; ++r) rows.row[r] = grads + sweep.rows[r] * row_stride;
        const std::vector<double> partials = replay_gram_chunks<T>(R, rows, P);
        const int np = sweep.pairs();
        for (int q = 0; q < np; ++q) {
            std::vector<double> per_thread(impl::gram_finish_threads);
            for (int t = 0; t < impl::gram_finish_threads; ++t)
                per_thread[t] = impl::gram_finish_thread_sum<impl::gram_finish_threads>(partials.data(),
                                                                                      impl::gram_chunks(P), np, q, t);
            const double total = gcl_test::replay_block_sum(per_thread);
            if (sweep.targets.entry[q] >= 0) {
                gram.data()[sweep.targets.entry[q]] = total;
                gram.data()[sweep.targets.mirror[q]] = total;
            }
        }
    }
    return gram;
}

// combine_pass: combine_column<T, K> for K <= 8, combine_column_any above.
template <class T>
Tensor<T> replay_combine(const T* grads, index_t row_stride, index_t K, index_t P, const std::vector<T>& w) {
    Tensor<T> out(Shape{P});
    const impl::CombineWeights<T> weights = impl::combine_weights(w.data(), std::min<index_t>(K, impl::combine_max_rows));
    for (index_t p = 0; p < P; ++p) switch (K) {
            case 1: out(p) = impl::combine_column<T, 1>(grads, row_stride, p, weights); break;
            case 2: out(p) = impl::combine_column<T, 2>(grads, row_stride, p, weights); break;
            case 3: out(p) = impl::combine_column<T, 3>(grads, row_stride, p, weights); break;
            case 4: out(p) = impl::combine_column<T, 4>(grads, row_stride, p, weights); break;
            case 5: out(p) = impl::combine_column<T, 5>(grads, row_stride, p, weights); break;
            case 6: out(p) = impl::combine_column<T, 6>(grads, row_stride, p, weights); break;
            case 7: out(p) = impl::combine_column<T, 7>(grads, row_stride, p, weights); break;
            case 8: out(p) = impl::combine_column<T, 8>(grads, row_stride, p, weights); break;
            default: out(p) = impl::combine_column_any(grads, row_stride, K, p, w.data()); break;
        }
    return out;
}

// Small integers: every product and sum below is exact in double, whatever the order.
template <class T>
Tensor<T> integer_rows(index_t K, index_t P, index_t pitch) {
    Tensor<T> g(Shape{K, pitch});
    for (index_t k = 0; k < K; ++k)
        for (index_t p = 0; p < pitch; ++p) g(k, p) = static_cast<T>((p * 31 + k * 17 + p / 1000) % 13 - 6);
    return g;
}

}  // namespace

TEST_CASE("pair_slot numbers the pairs of R rows in the kernels' loop order", "[cuda][surgery][emulated]") {
    for (int R = 1; R <= impl::gram_max_rows; ++R) {
        int expected = 0;
        for (int i = 0; i < R; ++i)
            for (int j = i; j < R; ++j) CHECK(impl::pair_slot(i, j, R) == expected++);
        CHECK(expected == R * (R + 1) / 2);
    }
}

TEST_CASE("gram_sweep_plan writes every entry of Q exactly once", "[cuda][surgery][emulated]") {
    for (index_t K = 1; K <= 40; ++K) {
        INFO("K = " << K);
        std::vector<int> writes(static_cast<std::size_t>(K * K), 0);
        for (const impl::GramSweep& sweep : impl::gram_sweep_plan(K)) {
            REQUIRE(!sweep.rows.empty());
            REQUIRE(static_cast<int>(sweep.rows.size()) <= impl::gram_max_rows);
            REQUIRE(std::is_sorted(sweep.rows.begin(), sweep.rows.end()));
            REQUIRE(std::set<index_t>(sweep.rows.begin(), sweep.rows.end()).size() == sweep.rows.size());
            const int R = static_cast<int>(sweep.rows.size());
            for (int i = 0; i < R; ++i)
                for (int j = i; j < R; ++j) {
                    const int q = impl::pair_slot(i, j, R);
                    if (sweep.targets.entry[q] < 0) continue;
                    CHECK(sweep.targets.entry[q] == sweep.rows[i] * K + sweep.rows[j]);
                    CHECK(sweep.targets.mirror[q] == sweep.rows[j] * K + sweep.rows[i]);
                    ++writes[sweep.targets.entry[q]];
                }
        }
        for (index_t i = 0; i < K; ++i)
            for (index_t j = 0; j < K; ++j) CHECK(writes[i * K + j] == (i <= j ? 1 : 0));
        CHECK(impl::gram_workspace(K, 100000) ==
              static_cast<std::size_t>(impl::gram_chunks(100000) * impl::gram_sweep_pairs(K) + K * K));
    }
}

TEST_CASE("grid_blocks covers the work with at least one block", "[cuda][surgery][emulated]") {
    CHECK(impl::grid_blocks(0, 256) == 1);
    CHECK(impl::grid_blocks(1, 256) == 1);
    CHECK(impl::grid_blocks(256, 256) == 1);
    CHECK(impl::grid_blocks(257, 256) == 2);
    CHECK(impl::grid_blocks(index_t{1} << 40, 256) == (1u << 16));
}

TEMPLATE_TEST_CASE("Emulated Gram pass: exact on integer data, every column counted once", "[cuda][surgery][emulated]",
                   float, double) {
    using T = TestType;
    for (index_t K : {1, 2, 3, 5, 8, 9, 13})
        for (index_t P : {1, 255, 256, 257, 8191, 8192, 8193, 3 * 8192 + 17, 100003}) {
            const index_t pitch = P + 5;  // padded rows: the row stride is not P
            const Tensor<T> g = integer_rows<T>(K, P, pitch);
            const Tensor<double> q = replay_gram_pass(g.data(), pitch, K, P);
            INFO("K = " << K << ", P = " << P);
            for (index_t i = 0; i < K; ++i)
                for (index_t j = 0; j < K; ++j) {
                    double exact = 0;
                    for (index_t p = 0; p < P; ++p) exact += static_cast<double>(g(i, p)) * static_cast<double>(g(j, p));
                    REQUIRE(q(i, j) == exact);
                }
        }
}

TEMPLATE_TEST_CASE("Emulated K x P mitigation matches the CPU kernel and the reference", "[cuda][surgery][emulated]",
                   float, double) {
    using T = TestType;
    const double rtol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
    index_t projected = 0;
    for (index_t K : {1, 2, 3, 4, 6, 8, 9, 12})
        for (index_t P : {1, 257, 8193, 100003})
            for (Reduction reduction : {Reduction::sum, Reduction::mean}) {
                const std::uint64_t seed = static_cast<std::uint64_t>(7 * K + P);
                const Tensor<T> g = gcl::testing::conflicting_gradients<T>(K, P, seed);
                const MitigateOptions options{.reduction = reduction, .seed = seed};
                Tensor<T> cpu(Shape{P}), ref(Shape{P});
                const MitigateReport rc = gcl::surgery::mitigate<T>(g.cview(), cpu.view(), options, 3);
                gcl::surgery::reference::mitigate<T>(g.cview(), ref.view(), options, 3);

                const Tensor<double> gram = replay_gram_pass(g.data(), P, K, P);
                MitigateReport r;
                r.weights = Tensor<double>(Shape{K});
                const gcl::surgery::GramWeightCounts counts =
                    gcl::surgery::gram_weights(gram.data(), K, options, 3, 0, r.weights.data());
                std::vector<T> w(static_cast<std::size_t>(K));
                for (index_t k = 0; k < K; ++k) w[k] = static_cast<T>(r.weights(k));
                const Tensor<T> out = replay_combine(g.data(), P, K, P, w);

                INFO("K = " << K << ", P = " << P);
                CHECK(counts.projections == rc.projections);
                CHECK(counts.conflicting_pairs == rc.conflicting_pairs);
                CHECK(gcl::testing::worst_violation(out, ref, g, r.weights, rtol, 1e-30) <= 1.0);
                CHECK(gcl::testing::worst_violation(out, cpu, g, rc.weights, 2 * rtol, 1e-30) <= 1.0);
                projected += counts.projections > 0;
            }
    CHECK(projected > 10);
}

TEMPLATE_TEST_CASE("Emulated batched mitigation matches the CPU kernel", "[cuda][surgery][emulated]", float, double) {
    using T = TestType;
    const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
    for (index_t K : {1, 3, 8, 11})
        for (index_t D : {1, 64, 129, 300})
            for (index_t N : {1, 9}) {
                // Label-major K x N x D, read as N x K x D.
                const Tensor<T> g = gcl::testing::label_major<T>(K, N, D, static_cast<std::uint64_t>(K + D + N));
                const gcl::ConstView<T> per_sample = g.cview().transpose(0, 1);
                const index_t sample_stride = per_sample.stride(0), row_stride = per_sample.stride(1);
                const MitigateOptions options{.reduction = K % 2 ? Reduction::sum : Reduction::mean, .seed = 3};
                Tensor<T> cpu(Shape{N, D});
                const MitigateReport rc = gcl::surgery::mitigate_batched<T>(per_sample, cpu.view(), options, 5);

                // batched_gram_kernel: one block per sample, block sums per pair.
                std::vector<double> gram(static_cast<std::size_t>(N * K * K));
                std::vector<double> per_thread(impl::batched_threads);
                for (index_t n = 0; n < N; ++n)
                    for (index_t i = 0; i < K; ++i)
                        for (index_t j = i; j < K; ++j) {
                            const T* sample = g.data() + n * sample_stride;
                            for (int t = 0; t < impl::batched_threads; ++t)
                                per_thread[t] = impl::batched_thread_dot<T, impl::batched_threads>(
                                    sample + i * row_stride, sample + j * row_stride, D, t);
                            const double total = gcl_test::replay_block_sum(per_thread);
                            gram[n * K * K + i * K + j] = total;
                            gram[n * K * K + j * K + i] = total;
                        }
                Tensor<double> weights(Shape{N, K});
                std::vector<T> w(static_cast<std::size_t>(N * K));
                index_t projections = 0;
                for (index_t n = 0; n < N; ++n) {
                    projections += gcl::surgery::gram_weights(gram.data() + n * K * K, K, options, 5,
                                                              static_cast<std::uint64_t>(n), weights.data() + n * K)
                                       .projections;
                    for (index_t k = 0; k < K; ++k) w[n * K + k] = static_cast<T>(weights(n, k));
                }
                // batched_combine_kernel into an out with padded rows.
                const index_t out_stride = D + 3;
                Tensor<T> out(Shape{N, out_stride});
                for (index_t e = 0; e < N * D; ++e)
                    impl::batched_combine_item(e, g.data(), K, D, sample_stride, row_stride, w.data(), out.data(),
                                               out_stride);

                INFO("K = " << K << ", D = " << D << ", N = " << N);
                CHECK(projections == rc.projections);
                CHECK(gcl::testing::worst_batched_violation(out, cpu, per_sample, weights, 2 * rtol, 1e-30) <= 1.0);
            }
}

TEST_CASE("Emulated batched Gram matrices are exact on integer data", "[cuda][surgery][emulated]") {
    const index_t K = 5, N = 3, D = 300;
    const Tensor<double> g = integer_rows<double>(N * K, D, D);  // sample n, row k: row n K + k
    std::vector<double> per_thread(impl::batched_threads);
    for (index_t n = 0; n < N; ++n)
        for (index_t i = 0; i < K; ++i)
            for (index_t j = i; j < K; ++j) {
                const double* sample = g.data() + n * K * D;
                for (int t = 0; t < impl::batched_threads; ++t)
                    per_thread[t] = impl::batched_thread_dot<double, impl::batched_threads>(sample + i * D, sample + j * D, D, t);
                double exact = 0;
                for (index_t d = 0; d < D; ++d) exact += g(n * K + i, d) * g(n * K + j, d);
                CHECK(gcl_test::replay_block_sum(per_thread) == exact);
            }
}

TEMPLATE_TEST_CASE("Emulated filter selects exactly what the CPU kernel selects", "[cuda][surgery][emulated]", float,
                   double) {
    using T = TestType;
    index_t cases = 0;
    for (index_t A : {1, 7, 64})
        for (index_t M : {1, 5, 200})
            for (int levels : {0, 3})
                for (bool weighted : {false, true}) {
                    const std::uint64_t seed = static_cast<std::uint64_t>(A * 1000 + M * 10 + levels + weighted);
                    // Magnitudes in padded rows, weights every other element: strides as the kernels see them.
                    const index_t pitch = M + 2;
                    Tensor<T> padded(Shape{A, pitch}), weight_pairs(Shape{A, 2});
                    gcl::Rng rng(seed);
                    gcl::fill_uniform<T>(padded.view(), rng);
                    gcl::fill_uniform<T>(weight_pairs.view(), rng);
                    if (levels > 0) {
                        for (index_t i = 0; i < padded.numel(); ++i)
                            padded.data()[i] = std::floor(padded.data()[i] * levels) / T(4);
                        for (index_t a = 0; a < A; ++a) weight_pairs(a, 1) = std::floor(weight_pairs(a, 1) * 2);
                    }
                    const gcl::ConstView<T> mag = padded.cview().narrow(1, 0, M);
                    const gcl::ConstView<T> w = weight_pairs.cview().select(1, 1);
                    for (const FilterOptions& o : gcl::testing::filter_option_sets(weighted)) {
                        const bool per_anchor = o.rule == FilterRule::top_k_per_anchor;
                        const impl::FilterSizes sizes = impl::filter_sizes(A, M, o);
                        const std::vector<std::uint8_t> taking_part =
                            o.anchor_ratio < 1 ? gcl::surgery::detail::active_anchors<T>(w, A, o.anchor_ratio)
                                               : std::vector<std::uint8_t>(static_cast<std::size_t>(A), 1);
                        const std::vector<index_t> rank = impl::active_ranks(taking_part);
                        std::vector<impl::PairKey<T>> keys(static_cast<std::size_t>(A * M));
                        for (index_t e = 0; e < A * M; ++e)
                            keys[e] = impl::pair_key(e, mag.data(), M, mag.stride(0), weighted ? w.data() : nullptr,
                                                     w.stride(0), rank.data(), per_anchor);
                        std::sort(keys.begin(), keys.end(), impl::RankedFirst<T>{});
                        FilterResult result{Tensor<std::uint8_t>(Shape{A, M}), Tensor<index_t>(Shape{sizes.kept, 2})};
                        if (per_anchor)
                            for (index_t t = 0; t < A * sizes.per_anchor; ++t)
                                impl::write_per_anchor_item(t, keys.data(), M, sizes.per_anchor, rank.data(),
                                                            result.mask.data(), result.indices.data());
                        else
                            for (index_t t = 0; t < sizes.kept; ++t)
                                impl::write_global_item(t, keys.data(), M, result.mask.data(), result.indices.data());

                        const FilterResult cpu =
                            gcl::surgery::filter_pairs<T>(mag, o, weighted ? w : gcl::ConstView<T>{});
                        INFO("A = " << A << ", M = " << M << ", levels " << levels << ", weighted " << weighted
                                    << ", rule " << int(o.rule) << ", k " << o.k << ", ratio " << o.ratio
                                    << ", anchor_ratio " << o.anchor_ratio);
                        gcl::testing::require_same_selection(result, cpu);
                        ++cases;
                    }
                }
    CHECK(cases == 3 * 3 * 2 * (7 + 9));
}

TEST_CASE("Emulated value check: finite and >= 0, signed zero included", "[cuda][surgery][emulated]") {
    CHECK(impl::acceptable_value(0.0f));
    CHECK(impl::acceptable_value(-0.0f));
    CHECK(impl::acceptable_value(3.5));
    CHECK_FALSE(impl::acceptable_value(-1e-30));
    CHECK_FALSE(impl::acceptable_value(std::numeric_limits<float>::quiet_NaN()));
    CHECK_FALSE(impl::acceptable_value(std::numeric_limits<double>::infinity()));
    CHECK_FALSE(impl::acceptable_value(-std::numeric_limits<float>::infinity()));
    // matrix_item walks padded rows in row-major item order.
    Tensor<float> padded(Shape{3, 7});
    for (index_t i = 0; i < padded.numel(); ++i) padded.data()[i] = static_cast<float>(i);
    for (index_t e = 0; e < 3 * 5; ++e) CHECK(impl::matrix_item(padded.data(), 5, 7, e) == padded(e / 5, e % 5));
}
