// Cross-entropy and soft Dice on the GPU against the same losses on the CPU: loss values,
// gradients, counts, the split into sums for data parallelism, and a bad target named by
// position. Skipped (exit 77) without a GPU. Part of test_cuda_backend.
#include <catch2/catch.hpp>

#include "gcl/cuda.cuh"
#include "gcl/loss/cross_entropy.hpp"
#include "gcl/loss/dice.hpp"
#include "support/cuda_parity.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace loss = gcl::loss;

using gcl_test::check_close;
using gcl_test::tolerance;

TEMPLATE_TEST_CASE("cross-entropy and soft Dice on cuda equal the CPU", "[cuda][loss][segmentation]", float, double) {
    using T = TestType;
    gcl::Rng rng(9);
    Tensor<T> logits(Shape{3, 4, 9, 7});
    for (index_t i = 0; i < logits.numel(); ++i) logits.data()[i] = static_cast<T>(rng.uniform() * 6 - 3);
    Tensor<index_t> targets(Shape{3, 9, 7});
    for (index_t i = 0; i < targets.numel(); ++i) targets.data()[i] = i % 5 == 2 ? -100 : (i * 7) % 4;
    const auto logits_d = gcl::to_device(logits);
    const auto targets_d = gcl::to_device(targets);

    const loss::CrossEntropyOptions ce{.class_weights = {0.5, 1, 2, 1.5}};
    const auto ce_cpu = loss::softmax_cross_entropy<T>(logits.cview(), targets.cview(), ce);
    const auto ce_gpu = loss::softmax_cross_entropy<T, gcl::cuda>(logits_d.cview(), targets_d.cview(), ce);
    CHECK(ce_gpu.loss == Approx(ce_cpu.loss).epsilon(1e-12));
    CHECK(ce_gpu.counted == ce_cpu.counted);
    check_close(ce_cpu.grad, gcl::to_host(ce_gpu.grad), tolerance<T>());

    for (bool per_image : {false, true}) {
        INFO("per_image " << per_image);
        const loss::DiceOptions d{.class_weights = {0, 1, 1, 2}, .per_image = per_image};
        const auto dice_cpu = loss::soft_dice<T>(logits.cview(), targets.cview(), d);
        const auto dice_gpu = loss::soft_dice<T, gcl::cuda>(logits_d.cview(), targets_d.cview(), d);
        CHECK(dice_gpu.loss == Approx(dice_cpu.loss).epsilon(1e-12));
        CHECK(dice_gpu.counted == dice_cpu.counted);
        check_close(dice_cpu.grad, gcl::to_host(dice_gpu.grad), tolerance<T>());

        // Images 1 and 2 of the batch as a second process would see them: the same sums.
        const auto part_cpu = loss::dice_sums<T>(logits.cview().narrow(0, 1, 2), targets.cview().narrow(0, 1, 2), d, 1, 3);
        const auto part_gpu = loss::dice_sums<T, gcl::cuda>(logits_d.cview().narrow(0, 1, 2),
                                                            targets_d.cview().narrow(0, 1, 2), d, 1, 3);
        REQUIRE(part_gpu.sums.size() == part_cpu.sums.size());
        for (std::size_t k = 0; k < part_cpu.sums.size(); ++k) CHECK(part_gpu.sums[k] == Approx(part_cpu.sums[k]).epsilon(1e-12));
    }

    Tensor<index_t> bad = targets;
    bad.data()[17] = 4;
    const auto bad_d = gcl::to_device(bad);
    const auto bad_call = [&] { (void)loss::softmax_cross_entropy<T, gcl::cuda>(logits_d.cview(), bad_d.cview()); };
    CHECK_THROWS_WITH(bad_call(), Catch::Contains("target 4 at 17"));
}
