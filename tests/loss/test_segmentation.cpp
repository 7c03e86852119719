#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/loss/cross_entropy.hpp"
#include "gcl/loss/dice.hpp"
#include "gcl/testing/gradcheck.hpp"
#include "loss_fixtures.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::testing::loss_fixture;
using gcl::testing::worst_ratio;

namespace {
std::vector<double> as_vector(const Tensor<double>& t) { return {t.data(), t.data() + t.numel()}; }
}  // namespace

TEMPLATE_TEST_CASE("Cross-entropy and Dice match PyTorch", "[loss][segmentation]", float, double) {
    using T = TestType;
    const Tensor<T> logits = gcl::testing::cast<T>(loss_fixture<double>("seg_logits"));
    const Tensor<index_t> targets = loss_fixture<index_t>("seg_targets");
    const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12, atol = std::is_same_v<T, float> ? 1e-6 : 1e-14;

    const auto ce = gcl::loss::softmax_cross_entropy<T>(logits.cview(), targets.cview(),
                                                        {.class_weights = as_vector(loss_fixture<double>("seg_weights"))});
    CHECK(ce.loss == Approx(loss_fixture<double>("ce_loss")(0)).epsilon(rtol));
    const Tensor<double> ce_grad = loss_fixture<double>("ce_grad");
    CHECK(worst_ratio(ce.grad.data(), ce_grad.data(), ce_grad.numel(), rtol, atol) <= 1.0);
    CHECK(ce.counted == targets.numel() - 3);

    for (bool per_image : {false, true}) {
        const std::string tag = per_image ? "dice_image" : "dice_batch";
        const auto dice = gcl::loss::soft_dice<T>(
            logits.cview(), targets.cview(),
            {.class_weights = as_vector(loss_fixture<double>("dice_weights")), .per_image = per_image});
        CHECK(dice.loss == Approx(loss_fixture<double>(tag + "_loss")(0)).epsilon(rtol));
        const Tensor<double> g = loss_fixture<double>(tag + "_grad");
        CHECK(worst_ratio(dice.grad.data(), g.data(), g.numel(), rtol, atol) <= 1.0);
    }
}

TEST_CASE("Cross-entropy and Dice gradients pass the finite-difference check", "[loss][segmentation][gradcheck]") {
    Tensor<double> x(Shape{2, 3, 4, 3});
    gcl::Rng rng(4);
    gcl::fill_normal<double>(x.view(), rng, 0.0, 2.0);
    Tensor<index_t> t(Shape{2, 4, 3});
    for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<index_t>(rng.below(3));
    t(1, 2, 0) = 255;
    const gcl::loss::CrossEntropyOptions ce{.class_weights = {1.0, 0.3, 2.0}, .ignore_index = 255};
    const auto r = gcl::loss::softmax_cross_entropy<double>(x.cview(), t.cview(), ce);
    auto result = gcl::testing::check_gradient(
        [&] { return gcl::loss::softmax_cross_entropy<double>(x.cview(), t.cview(), ce).loss; }, x.view(), r.grad.cview());
    INFO(result.message);
    CHECK(result.passed);
    for (bool per_image : {false, true}) {
        const gcl::loss::DiceOptions d{.class_weights = {0.0, 1.0, 1.5}, .ignore_index = 255, .smooth = 1e-3,
                                       .per_image = per_image};
        const auto rd = gcl::loss::soft_dice<double>(x.cview(), t.cview(), d);
        result = gcl::testing::check_gradient(
            [&] { return gcl::loss::soft_dice<double>(x.cview(), t.cview(), d).loss; }, x.view(), rd.grad.cview());
        INFO(result.message);
        CHECK(result.passed);
    }
}

TEST_CASE("Segmentation losses: ignored pixels and degenerate batches", "[loss][segmentation]") {
    Tensor<double> x(Shape{1, 2, 3});
    gcl::Rng rng(2);
    gcl::fill_normal<double>(x.view(), rng);
    Tensor<index_t> t(Shape{1, 3}, index_t{-100});
    const auto ce = gcl::loss::softmax_cross_entropy<double>(x.cview(), t.cview());
    CHECK(ce.loss == 0.0);
    CHECK(ce.counted == 0);
    for (index_t i = 0; i < ce.grad.numel(); ++i) CHECK(ce.grad.data()[i] == 0.0);
    const auto dice = gcl::loss::soft_dice<double>(x.cview(), t.cview());
    CHECK(std::isfinite(dice.loss));
    for (index_t i = 0; i < dice.grad.numel(); ++i) CHECK(dice.grad.data()[i] == 0.0);

    // A perfect, confident prediction: cross-entropy near 0, Dice loss near 0.
    Tensor<double> sure(Shape{1, 2, 2});
    sure(0, 0, 0) = 50;
    sure(0, 1, 1) = 50;
    const Tensor<index_t> y = Tensor<index_t>::from(Shape{1, 2}, {0, 1});
    CHECK(gcl::loss::softmax_cross_entropy<double>(sure.cview(), y.cview()).loss < 1e-12);
    CHECK(gcl::loss::soft_dice<double>(sure.cview(), y.cview()).loss < 1e-9);
}

TEST_CASE("Segmentation losses raise gcl::Error on bad input", "[loss][segmentation]") {
    Tensor<double> x(Shape{2, 3, 4});
    Tensor<index_t> t(Shape{2, 4});
    t(1, 3) = 3;
    CHECK_THROWS_WITH(gcl::loss::softmax_cross_entropy<double>(x.cview(), t.cview()), Catch::Contains("target 3"));
    t(1, 3) = 0;
    Tensor<index_t> short_t(Shape{2, 3});
    CHECK_THROWS_WITH(gcl::loss::soft_dice<double>(x.cview(), short_t.cview()), Catch::Contains("spatial sizes differ"));
    CHECK_THROWS_WITH(gcl::loss::softmax_cross_entropy<double>(x.cview(), t.cview(), {.class_weights = {1.0, 2.0}}),
                      Catch::Contains("class_weights must hold 3"));
    CHECK_THROWS_WITH(gcl::loss::soft_dice<double>(x.cview(), t.cview(), {.class_weights = {0.0, 0.0, 0.0}}),
                      Catch::Contains("must not all be zero"));
    x(0, 1, 2) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(gcl::loss::soft_dice<double>(x.cview(), t.cview()), Catch::Contains("logit"));
    Tensor<double> empty(Shape{0, 3, 4});
    Tensor<index_t> empty_t(Shape{0, 4});
    CHECK_THROWS_WITH(gcl::loss::softmax_cross_entropy<double>(empty.cview(), empty_t.cview()),
                      Catch::Contains("empty batch"));
}

// The pieces a data-parallel job uses: a batch split into parts, each part's sums added, gives
// every part the whole batch's loss and its own rows of the whole batch's gradient.
TEST_CASE("Segmentation losses from partial sums equal the whole batch's", "[loss][segmentation]") {
    Tensor<double> x(Shape{5, 3, 4, 3});
    gcl::Rng rng(8);
    gcl::fill_normal<double>(x.view(), rng, 0.0, 2.0);
    Tensor<index_t> t(Shape{5, 4, 3});
    for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<index_t>(rng.below(3));
    t(3, 1, 2) = 255;
    const index_t per_image = 3 * 4 * 3, labels_per_image = 4 * 3;
    const std::vector<std::pair<index_t, index_t>> parts = {{0, 2}, {2, 2}, {4, 1}};  // first image, images
    const auto view = [&](index_t first, index_t n) {
        return std::make_pair(gcl::ConstView<double>(x.data() + first * per_image, Shape{n, 3, 4, 3}),
                              gcl::ConstView<index_t>(t.data() + first * labels_per_image, Shape{n, 4, 3}));
    };
    const auto same_rows = [&](const Tensor<double>& part, const Tensor<double>& whole, index_t first) {
        double worst = 0;
        for (index_t i = 0; i < part.numel(); ++i)
            worst = std::max(worst, std::abs(part.data()[i] - whole.data()[first * per_image + i]));
        return worst;
    };

    const gcl::loss::CrossEntropyOptions ce{.class_weights = {1.0, 0.3, 2.0}, .ignore_index = 255};
    const auto whole_ce = gcl::loss::softmax_cross_entropy<double>(x.cview(), t.cview(), ce);
    std::vector<gcl::loss::CrossEntropyPartial<double>> ce_parts;
    std::array<double, 2> ce_sums{};
    for (const auto& [first, n] : parts) {
        const auto [xv, tv] = view(first, n);
        ce_parts.push_back(gcl::loss::cross_entropy_sums<double>(xv, tv, ce));
        for (int i = 0; i < 2; ++i) ce_sums[i] += ce_parts.back().sums[i];
    }
    for (std::size_t p = 0; p < parts.size(); ++p) {
        ce_parts[p].sums = ce_sums;
        const auto r = gcl::loss::cross_entropy_from_sums<double>(ce_parts[p]);
        CHECK(r.loss == Approx(whole_ce.loss).epsilon(1e-14));
        CHECK(same_rows(r.grad, whole_ce.grad, parts[p].first) <= 1e-15);
    }

    for (bool per_image_dice : {false, true}) {
        INFO("per_image " << per_image_dice);
        const gcl::loss::DiceOptions d{.class_weights = {0.0, 1.0, 1.5}, .ignore_index = 255, .smooth = 1e-3,
                                       .per_image = per_image_dice};
        const auto whole = gcl::loss::soft_dice<double>(x.cview(), t.cview(), d);
        std::vector<gcl::loss::DicePartial<double>> dice_parts;
        std::vector<double> sums;
        for (const auto& [first, n] : parts) {
            const auto [xv, tv] = view(first, n);
            dice_parts.push_back(gcl::loss::dice_sums<double>(xv, tv, d, first, 5));
            sums.resize(dice_parts.back().sums.size(), 0.0);
            for (std::size_t i = 0; i < sums.size(); ++i) sums[i] += dice_parts.back().sums[i];
        }
        for (std::size_t p = 0; p < parts.size(); ++p) {
            dice_parts[p].sums = sums;
            const auto r = gcl::loss::dice_from_sums<double>(dice_parts[p], d);
            CHECK(r.loss == Approx(whole.loss).epsilon(1e-14));
            CHECK(r.grad.shape() == Shape{parts[p].second, 3, 4, 3});
            CHECK(same_rows(r.grad, whole.grad, parts[p].first) <= 1e-15);
        }
    }
    const auto [xv, tv] = view(4, 1);
    CHECK_THROWS_AS(gcl::loss::dice_sums<double>(xv, tv, {}, 4, 4), gcl::Error);  // images [4, 5) of 4
}
