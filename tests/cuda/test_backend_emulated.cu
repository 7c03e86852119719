// The CUDA backend kernels' per-item code, run on the host in launch order: needs no GPU.
//
// Activation<cuda>, Bias<cuda>, Pooling<cuda>, Reduce<cuda>, Softmax<cuda>, Normalize<cuda> and
// Contrast<cuda> are grid-stride loops (or one block or warp per channel, plane or partial) around
// __host__ __device__ rules in backend/detail/. Here the same rules run for every thread and
// item of the launch geometry the kernels use, block_sum's fixed order is replayed, and the
// results are compared with the CPU backend: the index arithmetic and the rules are checked on
// this machine; the launches themselves by test_cuda_backend on a GPU.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <utility>
#include <vector>

#include "gcl/backend/cpu/activation.hpp"
#include "gcl/backend/cpu/batch_norm.hpp"
#include "gcl/backend/cpu/bias.hpp"
#include "gcl/backend/cpu/contrast.hpp"
#include "gcl/backend/cpu/normalize.hpp"
#include "gcl/backend/cpu/pooling.hpp"
#include "gcl/backend/cpu/random_fill.hpp"
#include "gcl/backend/cpu/reduce.hpp"
#include "gcl/backend/cpu/softmax.hpp"
#include "support/block_sum_replay.hpp"
#include "gcl/cuda.cuh"
#include "gcl/testing/projection.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace bd = gcl::backend::detail;
namespace cd = gcl::cuda_detail;

namespace {

// Every item index a grid-stride loop of `threads` per block visits, in (block, thread) order.
std::vector<index_t> grid_stride_items(index_t n, int threads) {
    const index_t blocks = cd::grid_blocks(n, threads);
    std::vector<index_t> items;
    for (index_t b = 0; b < blocks; ++b)
        for (index_t t = 0; t < threads; ++t)
            for (index_t i = b * threads + t; i < n; i += blocks * threads) items.push_back(i);
    return items;
}

// [outer, extent, inner] splits of the line-wise kernels: contiguous lines, strided lines, long
// lines, lines of one element.
struct LineSplit {
    index_t outer, extent, inner;
};
const LineSplit line_splits[] = {{3, 17, 1}, {2, 9, 13}, {1, 500, 4}, {6, 1, 5}};

// Bitwise equality, NaN equal to NaN of the same bits.
template <class T>
bool same_bits(T a, T b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// A block's replay of Reduce<cuda>'s sum_partials: thread t's share, then block_sum.
template <class Terms>
double replay_sum_partial(const Terms& terms, index_t n, index_t block, index_t blocks) {
    const index_t threads = gcl::backend::cuda_kernels::reduce_threads;
    std::vector<double> per_thread;
    for (index_t t = 0; t < threads; ++t) per_thread.push_back(terms(n, block * threads + t, blocks * threads));
    return gcl_test::replay_block_sum(per_thread);
}

// Reduce<cuda>::sum's two passes: the partials of the blocks, then one block over them.
template <class Terms>
double replay_total(const Terms& terms, index_t n) {
    const index_t blocks = gcl::backend::Reduce<gcl::cuda>::partial_blocks(n);
    std::vector<double> partial;
    for (index_t b = 0; b < blocks; ++b) partial.push_back(replay_sum_partial(terms, n, b, blocks));
    return replay_sum_partial(gcl::backend::cuda_kernels::SumTerms<double>{partial.data()}, blocks, 0, 1);
}

// A block's replay of best_partials: each thread's grid-stride choice, then the shared-memory tree.
template <class Rule>
index_t replay_best_partial(const Rule& rule, const index_t* candidates, index_t n, index_t block, index_t blocks) {
    const index_t threads = gcl::backend::cuda_kernels::reduce_threads;
    std::vector<index_t> shared(static_cast<std::size_t>(threads), -1);
    for (index_t t = 0; t < threads; ++t)
        for (index_t q = block * threads + t; q < n; q += blocks * threads) {
            const index_t c = candidates ? candidates[q] : q;
            if (rule.beats(c, shared[static_cast<std::size_t>(t)])) shared[static_cast<std::size_t>(t)] = c;
        }
    for (index_t offset = threads / 2; offset > 0; offset /= 2)
        for (index_t t = 0; t < offset; ++t)
            if (rule.beats(shared[static_cast<std::size_t>(t + offset)], shared[static_cast<std::size_t>(t)]))
                shared[static_cast<std::size_t>(t)] = shared[static_cast<std::size_t>(t + offset)];
    return shared[0];
}

}  // namespace

TEST_CASE("grid-stride launches visit every item exactly once", "[cuda][emulated]") {
    for (index_t n : {index_t{1}, index_t{255}, index_t{256}, index_t{257}, index_t{100000}, (index_t{1} << 16) * 256 + 5}) {
        const std::vector<index_t> items = grid_stride_items(n, cd::elementwise_threads);
        std::vector<char> seen(static_cast<std::size_t>(n), 0);
        for (index_t i : items) ++seen[static_cast<std::size_t>(i)];
        CHECK(static_cast<index_t>(items.size()) == n);
        CHECK(std::all_of(seen.begin(), seen.end(), [](char c) { return c == 1; }));
    }
}

TEMPLATE_TEST_CASE("Activation<cuda>'s rules, replayed, equal the CPU backend bit for bit", "[cuda][emulated]", float,
                   double) {
    using T = TestType;
    gcl::Rng rng(4);
    const index_t n = 1000;
    Tensor<T> x = gcl::testing::random_tensor<T>(Shape{n}, rng, T(-2), T(2));
    Tensor<T> dy = gcl::testing::random_tensor<T>(Shape{n}, rng);
    const T inf = std::numeric_limits<T>::infinity();
    const T special[] = {T(0), T(-0.0), inf, -inf, std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::denorm_min(),
                         -std::numeric_limits<T>::denorm_min()};
    for (std::size_t s = 0; s < std::size(special); ++s) x(static_cast<index_t>(s)) = special[s];
    const T slope = T(0.01);

    Tensor<T> cpu(Shape{n}), replay(Shape{n});
    const auto same = [&](const char* what) {
        INFO(what);
        for (index_t i = 0; i < n; ++i) {
            const T a = cpu(i), b = replay(i);
            CHECK(((a == b && std::signbit(a) == std::signbit(b)) || (a != a && b != b)));
        }
    };
    const std::vector<index_t> items = grid_stride_items(n, cd::elementwise_threads);

    gcl::backend::Activation<gcl::cpu>::relu_forward<T>(x.cview(), cpu.view());
    for (index_t i : items) replay(i) = bd::relu_item(x(i));
    same("relu_forward");
    CHECK(std::isnan(replay(4)));
    CHECK(replay(3) == T(0));  // -inf -> 0

    gcl::backend::Activation<gcl::cpu>::relu_backward<T>(dy.cview(), x.cview(), cpu.view());
    for (index_t i : items) replay(i) = bd::relu_backward_item(dy(i), x(i));
    same("relu_backward");

    gcl::backend::Activation<gcl::cpu>::leaky_relu_forward<T>(x.cview(), cpu.view(), slope);
    for (index_t i : items) replay(i) = bd::leaky_relu_item(x(i), slope);
    same("leaky_relu_forward");
    CHECK(replay(3) == -inf);

    gcl::backend::Activation<gcl::cpu>::leaky_relu_backward<T>(dy.cview(), x.cview(), cpu.view(), slope);
    for (index_t i : items) replay(i) = bd::leaky_relu_backward_item(dy(i), x(i), slope);
    same("leaky_relu_backward");
}

TEMPLATE_TEST_CASE("Bias<cuda>'s items, replayed, equal the CPU backend", "[cuda][emulated]", float, double) {
    using T = TestType;
    gcl::Rng rng(9);
    const index_t outer = 3, channels = 5, inner = 77, n = outer * channels * inner;
    const Tensor<T> bias = gcl::testing::random_tensor<T>(Shape{channels}, rng);
    const Tensor<T> y0 = gcl::testing::random_tensor<T>(Shape{n}, rng);

    Tensor<T> cpu = y0, replay = y0;
    gcl::backend::Bias<gcl::cpu>::add<T>(bias.cview(), cpu.view(), outer, channels, inner);
    for (index_t e : grid_stride_items(n, cd::elementwise_threads)) replay(e) += bias(bd::channel_of(e, channels, inner));
    for (index_t e = 0; e < n; ++e) CHECK(replay(e) == cpu(e));

    const Tensor<T> dy = gcl::testing::random_tensor<T>(Shape{n}, rng);
    for (bool accumulate : {false, true}) {
        Tensor<T> db_cpu = gcl::testing::random_tensor<T>(Shape{channels}, rng);
        Tensor<T> db_replay = db_cpu;
        gcl::backend::Bias<gcl::cpu>::backward<T>(dy.cview(), db_cpu.view(), outer, channels, inner, accumulate);
        const index_t threads = gcl::backend::cuda_kernels::bias_backward_threads;
        for (index_t c = 0; c < channels; ++c) {  // one block per channel
            std::vector<double> per_thread;
            for (index_t t = 0; t < threads; ++t)
                per_thread.push_back(bd::channel_thread_sum(dy.data(), outer, channels, inner, c, t, threads));
            const double total = gcl_test::replay_block_sum(per_thread);
            db_replay(c) = static_cast<T>(accumulate ? static_cast<double>(db_replay(c)) + total : total);
        }
        for (index_t c = 0; c < channels; ++c)
            CHECK(static_cast<double>(db_replay(c)) ==
                  Approx(static_cast<double>(db_cpu(c))).epsilon(std::is_same_v<T, float> ? 1e-6 : 1e-13));
    }
}

TEMPLATE_TEST_CASE("BatchNorm<cuda>'s items, replayed, equal the CPU backend", "[cuda][emulated]", float, double) {
    using T = TestType;
    const double rtol = std::is_same_v<T, float> ? 2e-6 : 1e-12;
    gcl::Rng rng(31);
    const index_t batch = 3, channels = 4, inner = 45, n = batch * channels * inner;
    const index_t threads = gcl::backend::cuda_kernels::channel_threads;
    const Tensor<T> x = gcl::testing::random_tensor<T>(Shape{n}, rng, T(-1), T(3));
    const Tensor<T> dy = gcl::testing::random_tensor<T>(Shape{n}, rng);
    const Tensor<T> gamma = gcl::testing::random_tensor<T>(Shape{channels}, rng, T(0.5), T(1.5));
    const Tensor<T> beta = gcl::testing::random_tensor<T>(Shape{channels}, rng);
    const double momentum = 0.1, eps = 1e-5;
    const auto close = [&](const Tensor<T>& expected, const std::vector<double>& got, const char* what) {
        INFO(what);
        for (index_t i = 0; i < expected.numel(); ++i)
            CHECK(got[static_cast<std::size_t>(i)] == Approx(static_cast<double>(expected.data()[i])).epsilon(rtol).margin(rtol));
    };
    // One block per channel: per-thread shares, added in block_sum's order.
    const auto channel_total = [&](index_t c, auto&& share) {
        std::vector<double> per_thread;
        for (index_t t = 0; t < threads; ++t) per_thread.push_back(share(c, t));
        return gcl_test::replay_block_sum(per_thread);
    };

    // Training forward.
    Tensor<T> y(Shape{n}), rm(Shape{channels}), rv(Shape{channels}), sm(Shape{channels}), si(Shape{channels});
    for (index_t c = 0; c < channels; ++c) rv(c) = T(1);
    gcl::backend::BatchNorm<gcl::cpu>::forward_train<T>(x.cview(), gamma.cview(), beta.cview(), y.view(), rm.view(),
                                                        rv.view(), sm.view(), si.view(), batch, channels, inner,
                                                        momentum, eps);
    std::vector<double> y_replay(static_cast<std::size_t>(n)), rm_replay, rv_replay, sm_replay, si_replay;
    std::vector<bd::BatchNormStatistics> stats;
    const double count = static_cast<double>(batch * inner);
    for (index_t c = 0; c < channels; ++c) {
        const double sum = channel_total(c, [&](index_t ch, index_t t) {
            return bd::channel_thread_sum(x.data(), batch, channels, inner, ch, t, threads);
        });
        const double square = channel_total(c, [&](index_t ch, index_t t) {
            return bd::channel_thread_square_sum(x.data(), sum / count, batch, channels, inner, ch, t, threads);
        });
        stats.push_back(bd::batch_norm_statistics(sum, square, count, static_cast<double>(gamma(c)),
                                                  static_cast<double>(beta(c)), eps));
        rm_replay.push_back(static_cast<double>(static_cast<T>(momentum * stats.back().mean)));
        rv_replay.push_back(static_cast<double>(static_cast<T>((1 - momentum) + momentum * stats.back().unbiased)));
        sm_replay.push_back(static_cast<double>(static_cast<T>(stats.back().mean)));
        si_replay.push_back(static_cast<double>(static_cast<T>(stats.back().invstd)));
    }
    for (index_t e : grid_stride_items(n, cd::elementwise_threads)) {
        const bd::BatchNormStatistics& s = stats[static_cast<std::size_t>(bd::channel_of(e, channels, inner))];
        y_replay[static_cast<std::size_t>(e)] = static_cast<double>(bd::batch_norm_affine_item(x(e), s.scale, s.shift));
    }
    close(y, y_replay, "y");
    close(rm, rm_replay, "running mean");
    close(rv, rv_replay, "running var");
    close(sm, sm_replay, "saved mean");
    close(si, si_replay, "saved invstd");

    // Training backward.
    Tensor<T> dx(Shape{n}), dgamma(Shape{channels}), dbeta(Shape{channels});
    gcl::backend::BatchNorm<gcl::cpu>::backward_train<T>(dy.cview(), x.cview(), gamma.cview(), sm.cview(), si.cview(),
                                                         dx.view(), dgamma.view(), dbeta.view(), batch, channels, inner,
                                                         false);
    std::vector<double> dx_replay(static_cast<std::size_t>(n)), dgamma_replay, dbeta_replay, mean_dy, mean_dy_xhat;
    for (index_t c = 0; c < channels; ++c) {
        std::vector<double> s0, s1;
        for (index_t t = 0; t < threads; ++t) {
            double two[2];
            bd::channel_thread_gradient_sums(dy.data(), x.data(), static_cast<double>(sm(c)), batch, channels, inner, c, t,
                                             threads, two);
            s0.push_back(two[0]);
            s1.push_back(two[1]);
        }
        const double sum_dy = gcl_test::replay_block_sum(s0), sum_dy_xhat = gcl_test::replay_block_sum(s1) * static_cast<double>(si(c));
        dbeta_replay.push_back(static_cast<double>(static_cast<T>(sum_dy)));
        dgamma_replay.push_back(static_cast<double>(static_cast<T>(sum_dy_xhat)));
        mean_dy.push_back(sum_dy / count);
        mean_dy_xhat.push_back(sum_dy_xhat / count);
    }
    for (index_t e : grid_stride_items(n, cd::elementwise_threads)) {
        const index_t c = bd::channel_of(e, channels, inner);
        const double invstd = static_cast<double>(si(c));
        dx_replay[static_cast<std::size_t>(e)] = static_cast<double>(bd::batch_norm_backward_item(
            dy(e), x(e), static_cast<double>(sm(c)), invstd, static_cast<double>(gamma(c)) * invstd,
            mean_dy[static_cast<std::size_t>(c)], mean_dy_xhat[static_cast<std::size_t>(c)]));
    }
    close(dx, dx_replay, "dx");
    close(dgamma, dgamma_replay, "dgamma");
    close(dbeta, dbeta_replay, "dbeta");
}

namespace {
struct PoolEmulationCase {
    Shape x;
    gcl::Pool2dParams params;
};
const PoolEmulationCase pool_emulation_cases[] = {
    {{2, 3, 8, 6}, {}},                                                       // the 2x2 fast path on the CPU
    {{1, 2, 7, 5}, {}},                                                       // odd sizes
    {{2, 2, 9, 8}, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}},  // padded
    {{1, 3, 11, 13}, {.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}}},  // every element in 9 windows
    {{2, 1, 6, 7}, {.kernel = {2, 3}, .stride = {1, 2}, .padding = {1, 1}}},
};
}  // namespace

TEMPLATE_TEST_CASE("Pooling<cuda>'s items, replayed, equal the CPU backend bit for bit", "[cuda][emulated]", float,
                   double) {
    using T = TestType;
    using CpuPool = gcl::backend::Pooling<gcl::cpu>;
    gcl::Rng rng(31);
    for (const auto& c : pool_emulation_cases) {
        INFO("x " << c.x << " kernel " << c.params.kernel[0] << "x" << c.params.kernel[1]);
        const gcl::Pool2dParams& p = c.params;
        Tensor<T> x = gcl::testing::random_tensor<T>(c.x, rng);
        for (index_t e = 0; e < x.numel(); ++e) x.data()[e] = std::round(x.data()[e] * T(2));  // many ties
        x.data()[5] = std::numeric_limits<T>::quiet_NaN();
        x.data()[x.numel() - 3] = std::numeric_limits<T>::infinity();
        const index_t h = c.x[2], w = c.x[3];
        const index_t oh = (h + 2 * p.padding[0] - p.kernel[0]) / p.stride[0] + 1;
        const index_t ow = (w + 2 * p.padding[1] - p.kernel[1]) / p.stride[1] + 1;
        const Shape ys{c.x[0], c.x[1], oh, ow};
        Tensor<T> y_cpu(ys), y_replay(ys);
        Tensor<index_t> idx_cpu(ys), idx_replay(ys);
        CpuPool::max_pool2d_forward<T>(x.cview(), y_cpu.view(), idx_cpu.view(), p);
        for (index_t e : grid_stride_items(y_cpu.numel(), cd::elementwise_threads)) {
            const index_t plane = e / (oh * ow), i = (e / ow) % oh, j = e % ow;
            T best;
            idx_replay.data()[e] = bd::max_pool_window(x.data() + plane * h * w, h, w, i * p.stride[0] - p.padding[0],
                                                       j * p.stride[1] - p.padding[1], p.kernel[0], p.kernel[1], best);
            y_replay.data()[e] = best;
        }
        for (index_t e = 0; e < y_cpu.numel(); ++e) {
            CHECK(same_bits(y_cpu.data()[e], y_replay.data()[e]));
            CHECK(idx_cpu.data()[e] == idx_replay.data()[e]);
        }

        // Backward: one warp per plane, chunks of 32 outputs in order, lanes in any order (each
        // lane writes only its group's element, so running them one after another is exact).
        const Tensor<T> dy = gcl::testing::random_tensor<T>(ys, rng);
        Tensor<T> dx_cpu(c.x), dx_replay(c.x);
        CpuPool::max_pool2d_backward<T>(dy.cview(), idx_cpu.cview(), dx_cpu.view());
        const index_t outputs = oh * ow, plane_size = h * w;
        for (index_t plane = 0; plane < c.x[0] * c.x[1]; ++plane) {
            T* out = dx_replay.data() + plane * plane_size;
            std::fill(out, out + plane_size, T(0));
            for (index_t chunk = 0; chunk < outputs; chunk += cd::warp_size) {
                const int count = static_cast<int>(std::min<index_t>(cd::warp_size, outputs - chunk));
                index_t targets[cd::warp_size];
                T values[cd::warp_size];
                for (int l = 0; l < count; ++l) {
                    targets[l] = idx_cpu.data()[plane * outputs + chunk + l];
                    values[l] = dy.data()[plane * outputs + chunk + l];
                }
                for (int l = cd::warp_size - 1; l >= 0; --l)  // reversed: the order must not matter
                    if (l < count) bd::max_pool_scatter_lane(targets, values, count, l, out);
            }
        }
        for (index_t e = 0; e < dx_cpu.numel(); ++e) CHECK(same_bits(dx_cpu.data()[e], dx_replay.data()[e]));
    }

    // Global average pooling: block_sum's order forward (within rounding), bitwise backward.
    const index_t planes = 7, size = 1000;
    const Tensor<T> x = gcl::testing::random_tensor<T>(Shape{planes, size}, rng);
    Tensor<T> y_cpu(Shape{planes});
    CpuPool::global_avg_pool_forward<T>(x.cview(), y_cpu.view(), planes, size);
    const index_t threads = gcl::backend::cuda_kernels::global_pool_threads;
    for (index_t plane = 0; plane < planes; ++plane) {
        std::vector<double> per_thread;
        for (index_t t = 0; t < threads; ++t) per_thread.push_back(bd::strided_sum(x.data() + plane * size, size, t, threads));
        const T y = static_cast<T>(gcl_test::replay_block_sum(per_thread) / static_cast<double>(size));
        CHECK(static_cast<double>(y) == Approx(static_cast<double>(y_cpu(plane))).epsilon(1e-12).margin(1e-12));
    }
    Tensor<T> dx_cpu(Shape{planes, size}), dx_replay(Shape{planes, size});
    CpuPool::global_avg_pool_backward<T>(y_cpu.cview(), dx_cpu.view(), planes, size);
    for (index_t e : grid_stride_items(planes * size, cd::elementwise_threads))
        dx_replay.data()[e] = bd::global_avg_pool_backward_item(y_cpu.data(), size, e);
    for (index_t e = 0; e < planes * size; ++e) CHECK(same_bits(dx_cpu.data()[e], dx_replay.data()[e]));
}

TEMPLATE_TEST_CASE("Reduce<cuda>'s totals and choices, replayed, match the CPU backend", "[cuda][emulated]", float,
                   double) {
    using T = TestType;
    using CpuReduce = gcl::backend::Reduce<gcl::cpu>;
    namespace ck = gcl::backend::cuda_kernels;
    gcl::Rng rng(32);
    for (index_t n : {index_t{1}, index_t{300}, index_t{70000}, index_t{300000}}) {  // 1 to 1024 partial blocks
        INFO("n " << n);
        Tensor<T> a = gcl::testing::random_tensor<T>(Shape{n}, rng);
        const Tensor<T> b = gcl::testing::random_tensor<T>(Shape{n}, rng);
        CHECK(replay_total(ck::SumTerms<T>{a.data()}, n) ==
              Approx(CpuReduce::sum<T>(a.cview())).epsilon(1e-12).margin(1e-12));
        CHECK(replay_total(ck::DotTerms<T>{a.data(), b.data()}, n) ==
              Approx(CpuReduce::dot<T>(a.cview(), b.cview())).epsilon(1e-12).margin(1e-12));

        // max: ties (the first), signed zeros (the first of equals), then NaNs (the first).
        const auto replay_max = [&] {
            const index_t blocks = gcl::backend::Reduce<gcl::cuda>::partial_blocks(n);
            const ck::MaxRule<T> rule{a.data()};
            std::vector<index_t> best;
            for (index_t blk = 0; blk < blocks; ++blk) best.push_back(replay_best_partial(rule, nullptr, n, blk, blocks));
            return a.data()[replay_best_partial(rule, best.data(), blocks, 0, 1)];
        };
        CHECK(same_bits(replay_max(), CpuReduce::max<T>(a.cview())));
        for (index_t e = 0; e < n; ++e) a.data()[e] = e % 3 == 0 ? T(-0.0) : T(-1);
        if (n > 2) a.data()[n - 1] = T(0);
        CHECK(same_bits(replay_max(), CpuReduce::max<T>(a.cview())));
        CHECK(std::signbit(replay_max()));
        const T nan_a = std::numeric_limits<T>::quiet_NaN(), nan_b = -std::numeric_limits<T>::quiet_NaN();
        a.data()[n / 2] = nan_b;
        a.data()[n - 1] = nan_a;
        CHECK(same_bits(replay_max(), CpuReduce::max<T>(a.cview())));

        // first_nonfinite: the smallest index of any atomicMin order.
        a.data()[n - 1] = -std::numeric_limits<T>::infinity();
        index_t first = n;
        for (index_t i : grid_stride_items(n, cd::elementwise_threads))
            if (!cd::finite_value(a.data()[i])) first = std::min(first, i);
        CHECK(first == CpuReduce::first_nonfinite<T>(a.cview()));
    }
}

TEMPLATE_TEST_CASE("Reduce<cuda>'s items along a dimension, replayed, equal the CPU backend bit for bit",
                   "[cuda][emulated]", float, double) {
    using T = TestType;
    using CpuReduce = gcl::backend::Reduce<gcl::cpu>;
    gcl::Rng rng(33);
    for (const LineSplit s : line_splits) {
        INFO("outer " << s.outer << " extent " << s.extent << " inner " << s.inner);
        const index_t n_in = s.outer * s.extent * s.inner, n_out = s.outer * s.inner;
        Tensor<T> x = gcl::testing::random_tensor<T>(Shape{n_in}, rng);
        for (index_t e = 0; e < n_in; ++e) x.data()[e] = std::round(x.data()[e] * T(3));  // ties
        x.data()[n_in / 2] = std::numeric_limits<T>::quiet_NaN();
        Tensor<T> cpu(Shape{n_out}), replay(Shape{n_out});
        CpuReduce::sum_dim<T>(x.cview(), cpu.view(), s.outer, s.extent, s.inner, 0.25);
        for (index_t e : grid_stride_items(n_out, cd::elementwise_threads))
            replay.data()[e] = bd::sum_dim_item(x.data(), s.extent, s.inner, e, 0.25);
        for (index_t e = 0; e < n_out; ++e) CHECK(same_bits(cpu.data()[e], replay.data()[e]));

        Tensor<index_t> idx_cpu(Shape{n_out}), idx_replay(Shape{n_out});
        CpuReduce::max_dim<T>(x.cview(), cpu.view(), idx_cpu.view(), s.outer, s.extent, s.inner);
        for (index_t e : grid_stride_items(n_out, cd::elementwise_threads))
            replay.data()[e] = bd::max_dim_item(x.data(), s.extent, s.inner, e, idx_replay.data()[e]);
        for (index_t e = 0; e < n_out; ++e) {
            CHECK(same_bits(cpu.data()[e], replay.data()[e]));
            CHECK(idx_cpu.data()[e] == idx_replay.data()[e]);
        }

        const Tensor<T> dy = gcl::testing::random_tensor<T>(Shape{n_out}, rng);
        Tensor<T> dx_cpu(Shape{n_in}), dx_replay(Shape{n_in});
        CpuReduce::broadcast_dim<T>(dy.cview(), dx_cpu.view(), s.outer, s.extent, s.inner, 1.0 / 3.0);
        for (index_t e : grid_stride_items(n_in, cd::elementwise_threads))
            dx_replay.data()[e] = bd::broadcast_dim_item(dy.data(), s.extent, s.inner, e, 1.0 / 3.0);
        for (index_t e = 0; e < n_in; ++e) CHECK(same_bits(dx_cpu.data()[e], dx_replay.data()[e]));

        CpuReduce::scatter_dim<T>(dy.cview(), idx_cpu.cview(), dx_cpu.view(), s.outer, s.extent, s.inner);
        for (index_t e : grid_stride_items(n_in, cd::elementwise_threads))
            dx_replay.data()[e] = bd::scatter_dim_item(dy.data(), idx_cpu.data(), s.extent, s.inner, e);
        for (index_t e = 0; e < n_in; ++e) CHECK(same_bits(dx_cpu.data()[e], dx_replay.data()[e]));
    }
}

namespace {
template <class T>
void check_same_bits(const Tensor<T>& expected, const Tensor<T>& got, const char* what) {
    INFO(what);
    REQUIRE(expected.numel() == got.numel());
    for (index_t e = 0; e < got.numel(); ++e) CHECK(same_bits(expected.data()[e], got.data()[e]));
}

// The smallest key a MinKeyItem launch over n items keeps: the minimum of the items' keys in any
// order (first_index.cuh), or no_key.
template <class KeyOf>
unsigned long long replay_smallest_key(index_t n, KeyOf key_of) {
    unsigned long long smallest = cd::no_key;
    for (index_t i : grid_stride_items(n, cd::elementwise_threads)) smallest = std::min(smallest, key_of(i));
    return smallest;
}
template <class Bad>
index_t replay_first_index_where(index_t n, Bad bad) {
    const unsigned long long k = replay_smallest_key(
        n, [&](index_t i) { return bad(i) ? static_cast<unsigned long long>(i) : cd::no_key; });
    return k == cd::no_key ? index_t{-1} : static_cast<index_t>(k);
}
}  // namespace

TEMPLATE_TEST_CASE("Softmax<cuda>'s line rules, replayed, equal the CPU backend bit for bit", "[cuda][emulated]", float,
                   double) {
    using T = TestType;
    using CpuSoftmax = gcl::backend::Softmax<gcl::cpu>;
    gcl::Rng rng(41);
    for (const LineSplit s : line_splits) {
        INFO("outer " << s.outer << " extent " << s.extent << " inner " << s.inner);
        const index_t n = s.outer * s.extent * s.inner, lines = s.outer * s.inner;
        Tensor<T> x = gcl::testing::random_tensor<T>(Shape{n}, rng, T(-30), T(30));
        x.data()[n / 3] = std::numeric_limits<T>::quiet_NaN();  // one NaN line
        x.data()[n - 1] = T(80);                                // exp(80) overflows float unless the max is subtracted
        const Tensor<T> dy = gcl::testing::random_tensor<T>(Shape{n}, rng);
        for (bool log : {false, true}) {
            INFO("log " << log);
            Tensor<T> y_cpu(Shape{n}), y_replay(Shape{n});
            CpuSoftmax::forward<T>(x.cview(), y_cpu.view(), s.outer, s.extent, s.inner, log);
            for (index_t line : grid_stride_items(lines, cd::elementwise_threads))
                bd::softmax_line(x.data(), y_replay.data(), bd::line_first(line, s.extent, s.inner), s.inner, s.extent,
                                 log);
            check_same_bits(y_cpu, y_replay, "forward");
            Tensor<T> in_place = x;  // y = x
            for (index_t line : grid_stride_items(lines, cd::elementwise_threads))
                bd::softmax_line(in_place.data(), in_place.data(), bd::line_first(line, s.extent, s.inner), s.inner,
                                 s.extent, log);
            check_same_bits(y_cpu, in_place, "forward in place");

            Tensor<T> dx_cpu(Shape{n}), dx_replay(Shape{n});
            CpuSoftmax::backward<T>(dy.cview(), y_cpu.cview(), dx_cpu.view(), s.outer, s.extent, s.inner, log);
            for (index_t line : grid_stride_items(lines, cd::elementwise_threads))
                bd::softmax_backward_line(dy.data(), y_cpu.data(), dx_replay.data(),
                                          bd::line_first(line, s.extent, s.inner), s.inner, s.extent, log);
            check_same_bits(dx_cpu, dx_replay, "backward");
        }
    }
}

TEMPLATE_TEST_CASE("Normalize<cuda>'s line rules, replayed, equal the CPU backend bit for bit", "[cuda][emulated]",
                   float, double) {
    using T = TestType;
    using CpuNormalize = gcl::backend::Normalize<gcl::cpu>;
    using Status = gcl::backend::StrictNormalizeStatus;
    gcl::Rng rng(42);
    const double eps = 1e-3;
    for (const LineSplit s : line_splits) {
        INFO("outer " << s.outer << " extent " << s.extent << " inner " << s.inner);
        const index_t n = s.outer * s.extent * s.inner, lines = s.outer * s.inner;
        Tensor<T> x = gcl::testing::random_tensor<T>(Shape{n}, rng, T(-2), T(2));
        const index_t first0 = bd::line_first(lines - 1, s.extent, s.inner);  // the last line: tiny, clamped by eps
        for (index_t k = 0; k < s.extent; ++k) x.data()[first0 + k * s.inner] *= T(1e-5);
        if constexpr (std::is_same_v<T, double>) {  // a line near 1e200 and one near 1e-160
            const index_t big = bd::line_first(0, s.extent, s.inner);
            for (index_t k = 0; k < s.extent; ++k) x.data()[big + k * s.inner] *= 1e200;
            if (lines > 2) {
                const index_t small = bd::line_first(1, s.extent, s.inner);
                for (index_t k = 0; k < s.extent; ++k) x.data()[small + k * s.inner] *= 1e-160;
            }
        }
        const Tensor<T> dy = gcl::testing::random_tensor<T>(Shape{n}, rng);
        const std::vector<index_t> line_items = grid_stride_items(lines, cd::elementwise_threads);

        Tensor<T> y_cpu(Shape{n}), y_replay(Shape{n});
        CpuNormalize::l2_forward<T>(x.cview(), y_cpu.view(), s.outer, s.extent, s.inner, eps);
        for (index_t line : line_items)
            bd::l2_normalize_line(x.data(), y_replay.data(), bd::line_first(line, s.extent, s.inner), s.inner, s.extent,
                                  eps);
        check_same_bits(y_cpu, y_replay, "eps forward");
        Tensor<T> dx_cpu(Shape{n}), dx_replay(Shape{n});
        CpuNormalize::l2_backward<T>(dy.cview(), x.cview(), dx_cpu.view(), s.outer, s.extent, s.inner, eps);
        for (index_t line : line_items)
            bd::l2_normalize_backward_line(dy.data(), x.data(), dx_replay.data(), bd::line_first(line, s.extent, s.inner),
                                           s.inner, s.extent, eps);
        check_same_bits(dx_cpu, dx_replay, "eps backward");

        // Strict mode: Normalize<cuda>::l2_forward_strict's two searches, then its backward.
        const auto strict_replay = [&](const Tensor<T>& in, Tensor<T>& y, Tensor<T>& norms) {
            const index_t bad = replay_first_index_where(n, [&](index_t i) { return !cd::finite_value(in.data()[i]); });
            if (bad >= 0) return bd::strict_non_finite_status(bad, s.extent, s.inner);
            const unsigned long long key = replay_smallest_key(lines, [&](index_t line) {
                const Status::Problem p =
                    bd::l2_normalize_strict_line(in.data(), y.data(), norms.data(), line, s.extent, s.inner);
                return p == Status::none ? cd::no_key : static_cast<unsigned long long>(line) * 4 + p;
            });
            if (key == cd::no_key) return Status{};
            return Status{static_cast<Status::Problem>(key % 4), static_cast<index_t>(key / 4), 0};
        };
        const auto same_status = [](const Status& a, const Status& b) {
            CHECK(a.problem == b.problem);
            CHECK(a.line == b.line);
            CHECK(a.position == b.position);
        };
        Tensor<T> norms_cpu(Shape{lines}), norms_replay(Shape{lines});
        const Status ok_cpu = CpuNormalize::l2_forward_strict<T>(x.cview(), y_cpu.view(), norms_cpu.view(), s.outer,
                                                                 s.extent, s.inner);
        const Status ok_replay = strict_replay(x, y_replay, norms_replay);
        CHECK(ok_cpu.problem == Status::none);
        same_status(ok_cpu, ok_replay);
        check_same_bits(y_cpu, y_replay, "strict forward");
        check_same_bits(norms_cpu, norms_replay, "strict norms");
        CpuNormalize::l2_backward_strict<T>(dy.cview(), y_cpu.cview(), norms_cpu.cview(), dx_cpu.view(), s.outer,
                                            s.extent, s.inner);
        for (index_t line : line_items)
            bd::l2_normalize_strict_backward_line(dy.data(), y_cpu.data(), norms_cpu.data(), dx_replay.data(), line,
                                                  s.extent, s.inner);
        check_same_bits(dx_cpu, dx_replay, "strict backward");

        if (lines < 3) continue;
        // The first line without a direction: an overflowing line after a zero one, reported
        // as the zero; then a non-finite value in a later line, reported first.
        Tensor<T> bad = x;
        const index_t zero_first = bd::line_first(lines - 2, s.extent, s.inner);
        for (index_t k = 0; k < s.extent; ++k) bad.data()[zero_first + k * s.inner] = T(0);
        const index_t huge = bd::line_first(lines - 1, s.extent, s.inner);
        for (index_t k = 0; k < s.extent; ++k) bad.data()[huge + k * s.inner] = std::numeric_limits<T>::max();
        Status st_cpu = CpuNormalize::l2_forward_strict<T>(bad.cview(), y_cpu.view(), norms_cpu.view(), s.outer,
                                                           s.extent, s.inner);
        CHECK(st_cpu.problem == Status::zero);
        CHECK(st_cpu.line == lines - 2);
        same_status(st_cpu, strict_replay(bad, y_replay, norms_replay));
        for (index_t k = 0; k < s.extent; ++k) bad.data()[zero_first + k * s.inner] = T(1);
        st_cpu = CpuNormalize::l2_forward_strict<T>(bad.cview(), y_cpu.view(), norms_cpu.view(), s.outer, s.extent,
                                                    s.inner);
        CHECK(st_cpu.problem == (s.extent > 1 ? Status::overflow : Status::none));
        same_status(st_cpu, strict_replay(bad, y_replay, norms_replay));
        bad.data()[n - 1] = std::numeric_limits<T>::infinity();
        bad.data()[n / 2] = std::numeric_limits<T>::quiet_NaN();
        st_cpu = CpuNormalize::l2_forward_strict<T>(bad.cview(), y_cpu.view(), norms_cpu.view(), s.outer, s.extent,
                                                    s.inner);
        CHECK(st_cpu.problem == Status::non_finite);
        same_status(st_cpu, strict_replay(bad, y_replay, norms_replay));
    }
}

TEMPLATE_TEST_CASE("Contrast<cuda>'s row and pair rules, replayed, equal the CPU backend bit for bit",
                   "[cuda][emulated]", float, double) {
    using T = TestType;
    using CpuContrast = gcl::backend::Contrast<gcl::cpu>;
    gcl::Rng rng(43);
    const index_t A = 13, K = 2, n = A * A;
    const double tau = 0.1;
    const std::vector<index_t> pairs = grid_stride_items(n, cd::elementwise_threads);
    const std::vector<index_t> anchors = grid_stride_items(A, cd::elementwise_threads);

    // The off-diagonal softmax of similarities in [-1, 1].
    const Tensor<T> sim = gcl::testing::random_tensor<T>(Shape{A, A}, rng);
    Tensor<T> prob_cpu = sim, prob_replay = sim, logits_cpu(Shape{A, A}), logits_replay(Shape{A, A});
    Tensor<double> log_norm_cpu(Shape{A}), log_norm_replay(Shape{A});
    CHECK(CpuContrast::off_diagonal_softmax<T>(prob_cpu.view(), logits_cpu.view(), log_norm_cpu.view(), tau) == -1);
    CHECK(replay_first_index_where(n, [&](index_t e) { return bd::similarity_overflows(sim.data()[e], tau); }) == -1);
    for (index_t i : anchors)
        log_norm_replay(i) = bd::contrast_softmax_row(prob_replay.data() + i * A, logits_replay.data() + i * A, i, A, tau);
    check_same_bits(prob_cpu, prob_replay, "softmax");
    check_same_bits(logits_cpu, logits_replay, "logits");
    check_same_bits(log_norm_cpu, log_norm_replay, "log_norm");
    for (index_t i = 0; i < A; ++i) CHECK(prob_cpu(i, i) == T(0));

    // Overflowing similarities: both name the first pair in memory order.
    Tensor<T> overflow = sim;
    overflow(7, 2) = std::numeric_limits<T>::infinity();
    overflow(3, 5) = std::numeric_limits<T>::max();  // finite, but s / tau is not
    Tensor<T> logits_unused(Shape{A, A});
    Tensor<double> log_norm_unused(Shape{A});
    Tensor<T> overflow_cpu = overflow;
    CHECK(CpuContrast::off_diagonal_softmax<T>(overflow_cpu.view(), logits_unused.view(), log_norm_unused.view(), tau) ==
          3 * A + 5);
    CHECK(replay_first_index_where(n, [&](index_t e) { return bd::similarity_overflows(overflow.data()[e], tau); }) ==
          3 * A + 5);

    // Positives as keys (anchors 0 and 12 have none under label 1) and as masks (asymmetric).
    Tensor<index_t> key_data(Shape{K, A});
    Tensor<std::uint8_t> mask_data(Shape{K, A, A});
    for (index_t i = 0; i < A; ++i) {
        key_data(0, i) = i % 3;
        key_data(1, i) = i == 0 || i == 12 ? 100 + i : i % 4;
        for (index_t a = 0; a < A; ++a) {
            mask_data(0, i, a) = (i + 2 * a) % 5 == 0;
            mask_data(1, i, a) = i != 4 && (i * a) % 7 == 1;  // anchor 4: no positives
        }
    }
    const Tensor<index_t> no_keys;
    const Tensor<std::uint8_t> no_masks;
    for (const bool by_keys : {true, false}) {
        INFO("by keys " << by_keys);
        const auto keys = by_keys ? key_data.cview() : no_keys.cview();
        const auto masks = by_keys ? no_masks.cview() : mask_data.cview();
        Tensor<T> losses_cpu(Shape{K}), losses_replay(Shape{K});
        Tensor<T> pair_grads_cpu(Shape{K, A, A}), pair_grads_replay(Shape{K, A, A});
        for (index_t m = 0; m < K; ++m) {
            INFO("label " << m);
            Tensor<index_t> n_pos_cpu(Shape{A}), n_pos_replay(Shape{A});
            Tensor<double> anchor_cpu(Shape{A}), anchor_replay(Shape{A});
            const gcl::backend::ContrastLabelLoss r_cpu =
                CpuContrast::label_loss<T>(logits_cpu.cview(), log_norm_cpu.cview(), keys, masks, m, n_pos_cpu.view(),
                                           anchor_cpu.view(), losses_cpu.view());
            const double scale = r_cpu.counted > 0 ? 1.0 / (tau * static_cast<double>(r_cpu.counted)) : 0.0;
            CpuContrast::pair_grads<T>(prob_cpu.cview(), keys, masks, m, n_pos_cpu.cview(), scale,
                                       pair_grads_cpu.view().select(0, m));
            bd::with_positives(keys.data(), masks.data(), by_keys, m, A, [&](auto positive) {
                for (index_t i : anchors)
                    anchor_replay(i) = bd::contrast_anchor_loss(logits_cpu.data() + i * A, log_norm_cpu(i), positive, i,
                                                                A, n_pos_replay(i));
                T* g = pair_grads_replay.data() + m * n;
                for (index_t e : pairs) g[e] = bd::pair_grad_item(prob_cpu.data(), n_pos_replay.data(), positive, A, scale, e);
            });
            const gcl::backend::ContrastLabelLoss r_replay =
                bd::contrast_label_total(n_pos_replay.data(), anchor_replay.data(), A);  // the one-thread kernel
            losses_replay(m) = bd::contrast_label_value<T>(r_replay);
            CHECK(r_replay.counted == r_cpu.counted);
            CHECK(same_bits(r_replay.mean, r_cpu.mean));
            for (index_t i = 0; i < A; ++i) CHECK(n_pos_replay(i) == n_pos_cpu(i));
            check_same_bits(anchor_cpu, anchor_replay, "anchor terms");
        }
        check_same_bits(losses_cpu, losses_replay, "losses");
        check_same_bits(pair_grads_cpu, pair_grads_replay, "pair gradients");

        // Magnitudes over all labels and over one, and the mask.
        for (const auto [first, last] : {std::pair<index_t, index_t>{0, K}, std::pair<index_t, index_t>{1, 2}}) {
            Tensor<T> mag_cpu(Shape{A, A}), mag_replay(Shape{A, A});
            CpuContrast::pair_grad_magnitudes<T>(pair_grads_cpu.cview(), first, last, mag_cpu.view());
            for (index_t e : pairs) mag_replay.data()[e] = bd::pair_grad_magnitude_item(pair_grads_cpu.data(), n, first, last, e);
            check_same_bits(mag_cpu, mag_replay, "magnitudes");
        }
        Tensor<std::uint8_t> keep(Shape{A, A});
        for (index_t e = 0; e < n; ++e) keep.data()[e] = e % 3 != 1;
        Tensor<T> masked_cpu = pair_grads_cpu, masked_replay = pair_grads_cpu;
        CpuContrast::mask_pair_grads<T>(keep.cview(), masked_cpu.view());
        for (index_t e : pairs) bd::mask_pair_grads_item(keep.data(), masked_replay.data(), n, K, e);
        check_same_bits(masked_cpu, masked_replay, "masked pair gradients");
    }
}

TEMPLATE_TEST_CASE("Contrast<cuda>'s pixel rules, replayed, equal the CPU backend bit for bit", "[cuda][emulated]",
                   float, double) {
    using T = TestType;
    using CpuContrast = gcl::backend::Contrast<gcl::cpu>;
    gcl::Rng rng(44);
    const index_t N = 3, C = 5, H = 4, W = 6, hw = H * W;
    const Tensor<T> features = gcl::testing::random_tensor<T>(Shape{N, C, H, W}, rng);
    Tensor<index_t> locations(Shape{4});
    const index_t picked[] = {17, 2, 17, 23};  // location 17 twice: its gradients add up in sample order
    std::copy(std::begin(picked), std::end(picked), locations.data());
    const index_t S = locations.numel();
    CHECK(CpuContrast::first_bad_location(locations.cview(), hw) == -1);
    CHECK(replay_first_index_where(S, [&](index_t s) { return bd::location_outside(locations(s), hw); }) == -1);

    Tensor<T> rows_cpu(Shape{N * S, C}), rows_replay(Shape{N * S, C});
    CpuContrast::gather_pixels<T>(features.cview(), locations.cview(), rows_cpu.view());
    for (index_t e : grid_stride_items(N * S * C, cd::elementwise_threads))
        rows_replay.data()[e] = features.data()[bd::sampled_pixel_index(locations.data(), S, C, hw, e)];
    check_same_bits(rows_cpu, rows_replay, "gather");
    CHECK(rows_cpu(S + 1, 3) == features(1, 3, 0, 2));  // pixel (n 1, s 1) = location 2, channel 3

    const Tensor<T> grads = gcl::testing::random_tensor<T>(Shape{N * S, C}, rng);
    const Tensor<T> start = gcl::testing::random_tensor<T>(features.shape(), rng);
    Tensor<T> map_cpu = start, map_replay = start;
    CpuContrast::scatter_pixel_grads<T>(grads.cview(), locations.cview(), map_cpu.view());
    for (index_t nc : grid_stride_items(N * C, cd::elementwise_threads))
        bd::scatter_pixel_plane(grads.data(), locations.data(), map_replay.data(), S, C, hw, nc);
    check_same_bits(map_cpu, map_replay, "scatter");
    CHECK(map_cpu(2, 1, 2, 5) == static_cast<T>(static_cast<T>(start(2, 1, 2, 5) + grads(2 * S, 1)) + grads(2 * S + 2, 1)));

    locations(3) = hw;
    locations(1) = -1;
    CHECK(CpuContrast::first_bad_location(locations.cview(), hw) == 1);
    CHECK(replay_first_index_where(S, [&](index_t s) { return bd::location_outside(locations(s), hw); }) == 1);
}

// RandomFill<cuda> runs the item rules of backend/detail/random_items.hpp, whose arithmetic on a
// device is uniform_at_pinned and normal_at_pinned (core/random.hpp). Replayed here for every
// item of the launch, they give RandomFill<cpu>'s numbers: uniform draws and masks bit for bit,
// float normals too, double normals within the C library's rounding of log and cos.
TEMPLATE_TEST_CASE("RandomFill<cuda>'s items, replayed, give the CPU fills' numbers", "[cuda][emulated]", float, double) {
    using T = TestType;
    using CpuFill = gcl::backend::RandomFill<gcl::cpu>;
    const gcl::backend::RandomDraws draws{4242, 17, 1000};
    const index_t n = 70001;
    const std::vector<index_t> items = grid_stride_items(n, cd::elementwise_threads);
    const auto counter = [&](index_t i) { return bd::counter_of(draws, i); };
    Tensor<T> cpu(Shape{n}), replay(Shape{n});

    CpuFill::uniform<T>(cpu.view(), draws, T(-2), T(0.5));
    for (index_t i : items)
        replay.data()[i] = gcl::uniform_at_pinned<T>(draws.seed, draws.stream, counter(i), T(-2), T(0.5));
    for (index_t i = 0; i < n; ++i) REQUIRE(same_bits(cpu.data()[i], replay.data()[i]));

    const double p = 0.35;
    const T keep = static_cast<T>(1.0 / (1.0 - p));
    CpuFill::dropout_mask<T>(cpu.view(), draws, p, keep);
    for (index_t i : items)
        replay.data()[i] = gcl::uniform_at_pinned<double>(draws.seed, draws.stream, counter(i), 0.0, 1.0) < p ? T(0) : keep;
    for (index_t i = 0; i < n; ++i) REQUIRE(same_bits(cpu.data()[i], replay.data()[i]));

    CpuFill::normal<T>(cpu.view(), draws, T(-1), T(0.75));
    for (index_t i : items)
        replay.data()[i] = gcl::normal_at_pinned<T>(draws.seed, draws.stream, counter(i), T(-1), T(0.75));
    index_t differing = 0;
    for (index_t i = 0; i < n; ++i) {
        if (same_bits(cpu.data()[i], replay.data()[i])) continue;
        ++differing;
        REQUIRE(std::is_same_v<T, double>);  // float normals are the CPU's bits
        REQUIRE(std::abs(cpu.data()[i] - replay.data()[i]) <= 8 * std::numeric_limits<T>::epsilon() *
                                                                  std::max(T(1), std::abs(cpu.data()[i])));
    }
    CHECK(differing * 200 <= n);
}
