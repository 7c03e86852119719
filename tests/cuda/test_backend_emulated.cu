// The CUDA backend kernels' per-item code, run on the host in launch order: needs no GPU.
//
// Activation<cuda> and Bias<cuda> are grid-stride loops (or one block per channel) around
// __host__ __device__ rules in backend/detail/. Here the same rules run for every thread and
// item of the launch geometry the kernels use, block_sum's fixed order is replayed, and the
// results are compared with the CPU backend: the index arithmetic and the rules are checked on
// this machine; the launches themselves by test_cuda_backend on a GPU.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "gcl/backend/cpu/activation.hpp"
#include "gcl/backend/cpu/batch_norm.hpp"
#include "gcl/backend/cpu/bias.hpp"
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

// block_sum's order for one value per thread: a shuffle-down tree in each warp, then the warps.
double replay_block_sum(const std::vector<double>& per_thread) {
    double total = 0;
    const int threads = static_cast<int>(per_thread.size());
    for (int w = 0; w < threads / cd::warp_size; ++w) {
        double lane[cd::warp_size];
        for (int l = 0; l < cd::warp_size; ++l) lane[l] = per_thread[static_cast<std::size_t>(w * cd::warp_size + l)];
        for (int offset = cd::warp_size / 2; offset > 0; offset /= 2) {
            double next[cd::warp_size];
            for (int l = 0; l < cd::warp_size; ++l)
                next[l] = lane[l] + (l + offset < cd::warp_size ? lane[l + offset] : lane[l]);
            std::copy(next, next + cd::warp_size, lane);
        }
        total += lane[0];
    }
    return total;
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
            const double total = replay_block_sum(per_thread);
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
        return replay_block_sum(per_thread);
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
        const double sum_dy = replay_block_sum(s0), sum_dy_xhat = replay_block_sum(s1) * static_cast<double>(si(c));
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
