// Segmentation<cuda>'s per-pixel rules and its Dice block sums, run on the host in the kernels'
// launch geometry and compared with Segmentation<cpu>: needs no GPU. The per-pixel gradients
// must equal the CPU's bit for bit; the sums, taken in block_sum's order, agree within rounding.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "support/block_sum_replay.hpp"
#include "gcl/backend/cuda/segmentation.cuh"
#include "gcl/core/random.hpp"
#include "gcl/loss/segmentation_input.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace bd = gcl::backend::detail;
namespace ck = gcl::backend::cuda_kernels;
using CpuPasses = gcl::backend::Segmentation<gcl::cpu>;

// The CUDA passes compile for both element types (they run in test_cuda_backend [segmentation] on a GPU).
template gcl::backend::CrossEntropySums gcl::backend::Segmentation<gcl::cuda>::cross_entropy<float>(
    gcl::ConstView<double, gcl::cuda>, gcl::ConstView<index_t, gcl::cuda>, const double*, index_t,
    gcl::TensorView<float, gcl::cuda>);
template gcl::backend::CrossEntropySums gcl::backend::Segmentation<gcl::cuda>::cross_entropy<double>(
    gcl::ConstView<double, gcl::cuda>, gcl::ConstView<index_t, gcl::cuda>, const double*, index_t,
    gcl::TensorView<double, gcl::cuda>);
template void gcl::backend::Segmentation<gcl::cuda>::divide<float>(gcl::TensorView<float, gcl::cuda>, double);
template void gcl::backend::Segmentation<gcl::cuda>::dice_grad<float>(
    gcl::ConstView<double, gcl::cuda>, gcl::ConstView<index_t, gcl::cuda>, index_t, bool, index_t, const double*,
    double, const double*, const double*, gcl::TensorView<float, gcl::cuda>);
template void gcl::backend::Segmentation<gcl::cuda>::dice_grad<double>(
    gcl::ConstView<double, gcl::cuda>, gcl::ConstView<index_t, gcl::cuda>, index_t, bool, index_t, const double*,
    double, const double*, const double*, gcl::TensorView<double, gcl::cuda>);

namespace {

constexpr index_t N = 3, C = 4, S = 37, ignore = -100;

struct Batch {
    Tensor<double> prob{Shape{N, C, S}};
    Tensor<index_t> targets{Shape{N, S}};
};

Batch random_batch(std::uint64_t seed) {
    gcl::Rng rng(seed);
    Tensor<double> logits(Shape{N, C, S});
    for (index_t i = 0; i < logits.numel(); ++i) logits.data()[i] = rng.uniform() * 8 - 4;
    Batch b;
    b.prob = gcl::loss::detail::class_probabilities<double, gcl::cpu>(logits.cview());
    for (index_t i = 0; i < b.targets.numel(); ++i)
        b.targets.data()[i] = i % 7 == 3 ? ignore : static_cast<index_t>(rng.uniform() * C) % C;
    return b;
}

template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), sizeof(T) * a.numel()) == 0;
}

}  // namespace

TEMPLATE_TEST_CASE("Segmentation<cuda> emulated: the cross-entropy pixel rule gives the CPU's gradient bit for bit",
                   "[cuda][emulated][segmentation]", float, double) {
    using T = TestType;
    const Batch b = random_batch(3);
    const std::vector<double> weights = {0.5, 1.0, 2.0, 0.0};
    Tensor<T> cpu_grad(Shape{N, C, S}), kernel_grad(Shape{N, C, S});
    const gcl::backend::CrossEntropySums cpu =
        CpuPasses::cross_entropy(b.prob.cview(), b.targets.cview(), weights.data(), ignore, cpu_grad.view());

    // cross_entropy_pixels: one thread per pixel; its per-pixel terms, then their sums.
    double loss = 0, weight = 0, count = 0;
    for (index_t q = 0; q < N * S; ++q) {
        const index_t y = b.targets.data()[q];
        if (y == ignore) continue;
        const double w = weights[static_cast<std::size_t>(y)];
        loss += -bd::cross_entropy_pixel(b.prob.data(), C, S, q / S, q % S, y, w, kernel_grad.data());
        weight += w;
        count += 1;
    }
    CHECK(same_bits(kernel_grad, cpu_grad));
    CHECK(cpu.counted == static_cast<index_t>(count));
    CHECK(loss == Approx(cpu.weighted_loss).epsilon(1e-13));
    CHECK(weight == Approx(cpu.weight).epsilon(1e-13));
    CHECK(cpu.counted < N * S);  // the batch has ignored pixels
}

TEMPLATE_TEST_CASE("Segmentation<cuda> emulated: Dice block sums and the pixel gradient", "[cuda][emulated][segmentation]",
                   float, double) {
    using T = TestType;
    const Batch b = random_batch(4);
    const std::vector<double> weights = {0.0, 1.0, 1.0, 2.0};
    for (bool per_image : {false, true}) {
        INFO("per_image " << per_image);
        const index_t first_image = per_image ? 2 : 0, groups = per_image ? first_image + N : 1;
        std::vector<double> cpu_sums(static_cast<std::size_t>(3 * groups * C), 0.0);
        const index_t counted = CpuPasses::dice_sums(b.prob.cview(), b.targets.cview(), ignore, per_image,
                                                     first_image, groups, cpu_sums.data());

        // dice_sums: block (group, c) of dice_threads threads, each striding over the group's pixels.
        const index_t local_groups = per_image ? N : 1;
        index_t kernel_counted = 0;
        for (index_t l = 0; l < local_groups; ++l)
            for (index_t c = 0; c < C; ++c) {
                const index_t first = per_image ? l * S : 0, last = per_image ? first + S : N * S;
                std::vector<std::vector<double>> per_thread(4, std::vector<double>(ck::dice_threads, 0.0));
                for (index_t t = 0; t < ck::dice_threads; ++t)
                    for (index_t q = first + t; q < last; q += ck::dice_threads) {
                        const index_t y = b.targets.data()[q];
                        if (y == ignore) continue;
                        const double p = b.prob.data()[((q / S) * C + c) * S + q % S];
                        per_thread[0][static_cast<std::size_t>(t)] += p;
                        if (y == c) {
                            per_thread[1][static_cast<std::size_t>(t)] += p;
                            per_thread[2][static_cast<std::size_t>(t)] += 1;
                        }
                        per_thread[3][static_cast<std::size_t>(t)] += 1;
                    }
                const index_t g = per_image ? first_image + l : 0;
                const auto at = [&](int which) { return cpu_sums[static_cast<std::size_t>((which * groups + g) * C + c)]; };
                CHECK(gcl_test::replay_block_sum(per_thread[0]) == Approx(at(1)).epsilon(1e-13));  // sum of p
                CHECK(gcl_test::replay_block_sum(per_thread[1]) == Approx(at(0)).epsilon(1e-13));  // intersection
                CHECK(gcl_test::replay_block_sum(per_thread[2]) == at(2));                          // count of t
                if (c == 0) kernel_counted += static_cast<index_t>(gcl_test::replay_block_sum(per_thread[3]));
            }
        CHECK(kernel_counted == counted);

        // dice_grad: one thread per pixel against the CPU pass, with arbitrary derivatives.
        std::vector<double> pos(static_cast<std::size_t>(groups * C)), neg(pos.size());
        for (std::size_t k = 0; k < pos.size(); ++k) {
            pos[k] = 0.1 + 0.05 * static_cast<double>(k);
            neg[k] = -0.2 + 0.03 * static_cast<double>(k);
        }
        const double norm = 4.0 * static_cast<double>(groups);
        Tensor<T> cpu_grad(Shape{N, C, S}), kernel_grad(Shape{N, C, S});
        CpuPasses::dice_grad(b.prob.cview(), b.targets.cview(), ignore, per_image, first_image, weights.data(), norm,
                             pos.data(), neg.data(), cpu_grad.view());
        for (index_t q = 0; q < N * S; ++q) {
            const index_t y = b.targets.data()[q];
            if (y == ignore) continue;
            const index_t n = q / S, g = per_image ? first_image + n : 0;
            bd::dice_pixel_grad(b.prob.data(), C, S, n, q % S, y, weights.data(), norm, pos.data() + g * C,
                                neg.data() + g * C, kernel_grad.data());
        }
        CHECK(same_bits(kernel_grad, cpu_grad));
    }
}

TEST_CASE("Segmentation<cuda> emulated: the target rule", "[cuda][emulated][segmentation]") {
    CHECK(bd::valid_target(0, 3, -100));
    CHECK(bd::valid_target(2, 3, -100));
    CHECK(bd::valid_target(-100, 3, -100));
    CHECK_FALSE(bd::valid_target(3, 3, -100));
    CHECK_FALSE(bd::valid_target(-1, 3, -100));
    const Tensor<index_t> targets = Tensor<index_t>::from(Shape{5}, {0, 1, 5, -2, 2});
    const gcl::backend::BadTarget bad = CpuPasses::first_bad_target(targets.cview(), 3, -100);
    CHECK(bad.position == 2);
    CHECK(bad.value == 5);
}
