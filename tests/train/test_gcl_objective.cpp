// The GCL pre-training objective: its gradient against finite differences, its mitigation against
// the surgery kernels applied to separately computed per-label gradients, and its options.
#include <catch2/catch.hpp>

#include <cmath>

#include "gcl/surgery/reference/mitigate.hpp"
#include "gcl/testing/gradcheck.hpp"
#include "gcl/train/gcl_objective.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace tr = gcl::train;
namespace nn = gcl::nn;

namespace {

nn::PretrainModelOptions tiny_model() {
    return {.encoder = {.in_channels = 1, .depth = 1, .base_width = 4},
            .image_hidden = 8,
            .image_out = 6,
            .pixel_hidden = 8,
            .pixel_out = 6};
}

struct Setup {
    nn::ParameterArena<double> arena;
    nn::PretrainModel<double> model;
    Tensor<double> images{Shape{6, 1, 8, 8}};
    // Three images x two views under two contradicting labels: (0, 0, 1) and (0, 1, 0).
    Tensor<std::int64_t> meta = Tensor<std::int64_t>::from(Shape{2, 6}, {0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0});
    explicit Setup(std::uint64_t model_seed = 3) : model(arena, tiny_model(), model_seed) {
        gcl::Rng rng(5);
        gcl::fill_normal(images.view(), rng);
    }
};

tr::GclObjectiveOptions plain(tr::LabelSpace space) {
    return {.mitigation = tr::Mitigation::none,
            .label_space = space,
            .pixel_samples = 4,
            .filter = tr::PixelFilter::none,
            .seed = 11};
}

// Central differences of the objective's total loss against the gradient it leaves in the arena.
gcl::testing::GradCheckResult check_total_gradient(tr::GclObjective<double>& objective, Setup& s, index_t elements) {
    objective.gradient(s.images.cview(), s.meta.cview(), 7);
    const Tensor<double> analytic = Tensor<double>::copy_of(s.arena.flat_grads());
    const auto total = [&] { return objective.gradient(s.images.cview(), s.meta.cview(), 7).total; };
    gcl::testing::GradCheckOptions o;
    o.rtol = 1e-5;
    o.atol = 1e-7;
    o.max_elements = elements;
    return gcl::testing::check_gradient(total, s.arena.flat_values(), analytic.cview(), o);
}

}  // namespace

TEST_CASE("GclObjective without surgery is the gradient of the summed losses", "[train][gcl]") {
    for (tr::LabelSpace space : {tr::LabelSpace::shared, tr::LabelSpace::per_label}) {
        Setup s;
        tr::GclObjective<double> objective(s.model, s.arena, plain(space));
        const tr::GclStepReport r = objective.gradient(s.images.cview(), s.meta.cview(), 7);
        REQUIRE(r.image_losses.size() == 2);
        REQUIRE(r.pixel_losses.size() == 2);
        CHECK(r.total == Approx(r.image_losses[0] + r.image_losses[1] + r.pixel_losses[0] + r.pixel_losses[1]));
        const auto result = check_total_gradient(objective, s, 150);
        INFO(gcl::train::to_string(space) << ": " << result.message);
        CHECK(result.passed);
    }
    // A pixel weight scales the pixel losses' gradient too.
    Setup s;
    tr::GclObjectiveOptions o = plain(tr::LabelSpace::per_label);
    o.pixel_weight = 0.5;
    tr::GclObjective<double> weighted(s.model, s.arena, o);
    const tr::GclStepReport r = weighted.gradient(s.images.cview(), s.meta.cview(), 7);
    CHECK(r.total == Approx(r.image_losses[0] + r.image_losses[1] + 0.5 * (r.pixel_losses[0] + r.pixel_losses[1])));
    const auto result = check_total_gradient(weighted, s, 150);
    INFO("pixel_weight 0.5: " << result.message);
    CHECK(result.passed);
}

TEST_CASE("GclObjective at the parameter level mitigates the per-label parameter gradients", "[train][gcl]") {
    // In a shared space without the filter, label m's losses depend on label m alone, so running
    // the objective on one meta label at a time gives the rows G_m that the K backward passes form.
    // (At initialisation the shared other-view positive dominates both labels' gradients; with this
    // model seed they conflict.)
    Setup s(15);
    const index_t P = s.arena.size();
    Tensor<double> G(Shape{2, P});
    for (index_t m = 0; m < 2; ++m) {
        tr::GclObjective<double> single(s.model, s.arena, plain(tr::LabelSpace::shared));
        const Tensor<std::int64_t> row = Tensor<std::int64_t>::copy_of(s.meta.cview().narrow(0, m, 1));
        single.gradient(s.images.cview(), row.cview(), 7);
        std::copy(s.arena.flat_grads().data(), s.arena.flat_grads().data() + P, G.data() + m * P);
    }
    tr::GclObjectiveOptions o = plain(tr::LabelSpace::shared);
    o.mitigation = tr::Mitigation::parameters;
    o.mitigate.seed = 3;
    tr::GclObjective<double> objective(s.model, s.arena, o);
    const tr::GclStepReport r = objective.gradient(s.images.cview(), s.meta.cview(), 7);
    Tensor<double> expected(Shape{P});
    const auto ref = gcl::surgery::reference::mitigate<double>(G.cview(), expected.view(), o.mitigate, 7);
    CHECK(r.conflicting_pairs == ref.conflicting_pairs);
    CHECK(r.projections == ref.projections);
    for (index_t p = 0; p < P; ++p) CHECK(s.arena.flat_grads()(p) == Approx(expected(p)).margin(1e-10));

    // The contradicting labels do conflict over the parameters here, so a projection was applied.
    double dot = 0;
    for (index_t p = 0; p < P; ++p) dot += G(0, p) * G(1, p);
    INFO("G_0 . G_1 = " << dot);
    CHECK(dot < 0);
    CHECK(r.projections > 0);
}

TEST_CASE("GclObjective at the embedding level projects per sample in a shared space", "[train][gcl]") {
    Setup s;
    tr::GclObjectiveOptions o = plain(tr::LabelSpace::shared);
    o.mitigation = tr::Mitigation::embeddings;
    tr::GclObjective<double> objective(s.model, s.arena, o);
    const tr::GclStepReport r = objective.gradient(s.images.cview(), s.meta.cview(), 3);
    const Tensor<double> g = Tensor<double>::copy_of(s.arena.flat_grads());
    // Same step, same result; per-sample conflicts exist in this batch and were projected.
    objective.gradient(s.images.cview(), s.meta.cview(), 3);
    for (index_t p = 0; p < g.numel(); ++p) CHECK(s.arena.flat_grads()(p) == g(p));
    CHECK(r.conflicting_pairs > 0);
    CHECK(r.projections > 0);
    // One meta label: nothing to mitigate, the same gradient as the plain sum.
    const Tensor<std::int64_t> one = Tensor<std::int64_t>::copy_of(s.meta.cview().narrow(0, 0, 1));
    tr::GclObjective<double> none(s.model, s.arena, plain(tr::LabelSpace::shared));
    none.gradient(s.images.cview(), one.cview(), 3);
    const Tensor<double> plain_grad = Tensor<double>::copy_of(s.arena.flat_grads());
    const tr::GclStepReport r1 = objective.gradient(s.images.cview(), one.cview(), 3);
    CHECK(r1.projections == 0);
    for (index_t p = 0; p < g.numel(); ++p) CHECK(s.arena.flat_grads()(p) == Approx(plain_grad(p)).margin(1e-12));
}

TEST_CASE("GclObjective at the representation level mitigates dL/dF of separately computed per-label passes",
          "[train][gcl]") {
    // Reference: label m's embedding gradients through a whole backward pass each (head and encoder),
    // which gives dL_m/dF; the plain-loop mitigation per sample (image branch, vectors of C h w) and
    // per location (pixel branch, vectors of C); one encoder pass on their sum; the heads' parameter
    // gradients summed over the labels.
    for (tr::LabelSpace space : {tr::LabelSpace::per_label, tr::LabelSpace::shared}) {
        Setup s;
        tr::GclObjectiveOptions o = plain(space);
        o.mitigation = tr::Mitigation::representation;
        o.filter = tr::PixelFilter::anchors;
        o.mitigate.seed = 3;
        tr::GclObjective<double> objective(s.model, s.arena, o);
        const std::uint64_t step = 7;
        const auto eg = objective.embedding_gradients(s.images.cview(), s.meta.cview(), step);
        const index_t K = 2, P = s.arena.size();
        const gcl::Shape fs = s.model.feature_shape(s.images.shape());
        const index_t N = fs[0], C = fs[1], HW = fs[2] * fs[3], F = C * HW;
        Tensor<double> G(Shape{K, P}), by_sample(Shape{N, K, F}), by_location(Shape{N * HW, K, C});
        for (index_t m = 0; m < K; ++m) {
            s.arena.begin_backward(G.view(), m, gcl::WriteMode::overwrite);
            const auto g = s.model.backward(eg.image.cview().select(0, m), eg.pixel.cview().select(0, m));
            for (index_t n = 0; n < N; ++n)
                for (index_t c = 0; c < C; ++c)
                    for (index_t p = 0; p < HW; ++p) {
                        by_sample(n, m, c * HW + p) = g.features_from_image.data()[(n * C + c) * HW + p];
                        by_location(n * HW + p, m, c) = g.features_from_pixel.data()[(n * C + c) * HW + p];
                    }
        }
        s.arena.end_backward();
        Tensor<double> image_out(Shape{N, F}), pixel_out(Shape{N * HW, C});
        const auto ri = gcl::surgery::reference::mitigate_batched<double>(by_sample.cview(), image_out.view(), o.mitigate, step);
        const auto rp = gcl::surgery::reference::mitigate_batched<double>(by_location.cview(), pixel_out.view(), o.mitigate,
                                                                          gcl::mix64(step + 1));
        Tensor<double> dF(fs);
        for (index_t n = 0; n < N; ++n)
            for (index_t c = 0; c < C; ++c)
                for (index_t p = 0; p < HW; ++p)
                    dF.data()[(n * C + c) * HW + p] = image_out(n, c * HW + p) + pixel_out(n * HW + p, c);
        Tensor<double> expected(Shape{P});
        s.arena.begin_backward(expected.view(), gcl::WriteMode::overwrite);
        s.model.encoder_backward(dF.cview());
        s.arena.end_backward();
        for (const auto& info : s.arena.parameters())
            if (info.name.rfind("encoder.", 0) != 0)
                for (index_t p = info.offset; p < info.offset + info.numel(); ++p) expected(p) = G(0, p) + G(1, p);

        const tr::GclStepReport r = objective.gradient(s.images.cview(), s.meta.cview(), step);
        INFO(tr::to_string(space));
        CHECK(r.conflicting_pairs == ri.conflicting_pairs + rp.conflicting_pairs);
        CHECK(r.projections == ri.projections + rp.projections);
        // The labels meet at the encoder output even where their embedding parts are disjoint.
        CHECK(ri.conflicting_pairs > 0);
        CHECK(rp.conflicting_pairs > 0);
        REQUIRE(r.label_cosines.size() == 1);
        for (index_t p = 0; p < P; ++p) CHECK(s.arena.flat_grads()(p) == Approx(expected(p)).margin(1e-10));
    }
}

TEST_CASE("GclObjective at the representation level equals the plain sum when nothing conflicts", "[train][gcl]") {
    Setup s;
    const Tensor<std::int64_t> one = Tensor<std::int64_t>::copy_of(s.meta.cview().narrow(0, 0, 1));
    tr::GclObjective<double> none(s.model, s.arena, plain(tr::LabelSpace::per_label));
    none.gradient(s.images.cview(), one.cview(), 3);
    const Tensor<double> plain_grad = Tensor<double>::copy_of(s.arena.flat_grads());
    tr::GclObjectiveOptions o = plain(tr::LabelSpace::per_label);
    o.mitigation = tr::Mitigation::representation;
    tr::GclObjective<double> objective(s.model, s.arena, o);
    const tr::GclStepReport r = objective.gradient(s.images.cview(), one.cview(), 3);
    CHECK(r.projections == 0);
    CHECK(r.conflicting_pairs == 0);
    for (index_t p = 0; p < plain_grad.numel(); ++p)
        CHECK(s.arena.flat_grads()(p) == Approx(plain_grad(p)).margin(1e-12));
}

TEST_CASE("GclObjective's pixel filter keeps whole anchors", "[train][gcl]") {
    Setup s;
    tr::GclObjectiveOptions o = plain(tr::LabelSpace::shared);
    tr::GclObjective<double> unfiltered(s.model, s.arena, o);
    unfiltered.gradient(s.images.cview(), s.meta.cview(), 5);
    const Tensor<double> all = Tensor<double>::copy_of(s.arena.flat_grads());

    // Keeping every anchor is the unfiltered gradient.
    o.filter = tr::PixelFilter::anchors;
    o.anchor_ratio = 1.0;
    tr::GclObjective<double> every(s.model, s.arena, o);
    const tr::GclStepReport re = every.gradient(s.images.cview(), s.meta.cview(), 5);
    const index_t A = 6 * 4;
    CHECK(re.candidate_pairs == A * A);
    CHECK(re.kept_pairs == A * A);
    for (index_t p = 0; p < all.numel(); ++p) CHECK(s.arena.flat_grads()(p) == Approx(all(p)).margin(1e-12));

    // Keeping half of them keeps half of the pairs and changes the gradient, with and without guidance.
    for (bool guidance : {false, true}) {
        o.anchor_ratio = 0.5;
        o.image_guidance = guidance;
        tr::GclObjective<double> half(s.model, s.arena, o);
        const tr::GclStepReport rh = half.gradient(s.images.cview(), s.meta.cview(), 5);
        CHECK(rh.kept_pairs == A * A / 2);
        double diff = 0;
        for (index_t p = 0; p < all.numel(); ++p) diff += std::abs(s.arena.flat_grads()(p) - all(p));
        CHECK(diff > 1e-6);
        // The image losses and their gradient are untouched by the pixel filter.
        CHECK(rh.image_losses == re.image_losses);
    }

    // The pair rule keeps what its options say.
    o.filter = tr::PixelFilter::pairs;
    o.filter_options = {.rule = gcl::surgery::FilterRule::top_k_per_anchor, .k = 3};
    tr::GclObjective<double> pairs(s.model, s.arena, o);
    CHECK(pairs.gradient(s.images.cview(), s.meta.cview(), 5).kept_pairs == A * 3);
}

TEST_CASE("GclObjective gives each meta label its own image temperature", "[train][gcl]") {
    // Label m's image loss with image_temperatures {0.3, 0.8} is its loss with temperature t_m for
    // every label; the gradient is still the gradient of the summed losses.
    Setup s;
    const auto losses_at = [&](tr::GclObjectiveOptions o) {
        tr::GclObjective<double> objective(s.model, s.arena, o);
        return objective.gradient(s.images.cview(), s.meta.cview(), 7).image_losses;
    };
    tr::GclObjectiveOptions o = plain(tr::LabelSpace::per_label);
    o.temperature = 0.3;
    const std::vector<double> at_low = losses_at(o);
    o.temperature = 0.8;
    const std::vector<double> at_high = losses_at(o);
    o.image_temperatures = {0.3, 0.8};
    const std::vector<double> mixed = losses_at(o);
    REQUIRE(mixed.size() == 2);
    CHECK(mixed[0] == Approx(at_low[0]).margin(1e-12));
    CHECK(mixed[1] == Approx(at_high[1]).margin(1e-12));
    CHECK(at_low[0] != Approx(at_high[0]).margin(1e-6));

    tr::GclObjective<double> objective(s.model, s.arena, o);
    const auto result = check_total_gradient(objective, s, 100);
    INFO(result.message);
    CHECK(result.passed);
}

TEST_CASE("GclObjective rejects bad batches and options", "[train][gcl]") {
    Setup s;
    tr::GclObjective<double> objective(s.model, s.arena, plain(tr::LabelSpace::shared));
    Tensor<double> odd(Shape{5, 1, 8, 8});
    CHECK_THROWS_WITH(objective.gradient(odd.cview(), s.meta.cview(), 0), Catch::Contains("two views"));
    auto mismatched = s.meta;
    mismatched(1, 4) = 7;
    CHECK_THROWS_WITH(objective.gradient(s.images.cview(), mismatched.cview(), 0),
                      Catch::Contains("differs between the two views"));
    Tensor<std::int64_t> wrong(Shape{2, 4});
    CHECK_THROWS_WITH(objective.gradient(s.images.cview(), wrong.cview(), 0), Catch::Contains("[2, 4]"));
    Tensor<double> nan_images = s.images;
    nan_images(2, 0, 3, 3) = std::nan("");
    CHECK_THROWS_AS(objective.gradient(nan_images.cview(), s.meta.cview(), 0), gcl::Error);

    // Per-label spaces need the embedding width to be a multiple of K: 6 splits into 2 or 3, not 4.
    Tensor<std::int64_t> four(Shape{4, 6});
    tr::GclObjective<double> per_label(s.model, s.arena, plain(tr::LabelSpace::per_label));
    CHECK_THROWS_WITH(per_label.gradient(s.images.cview(), four.cview(), 0), Catch::Contains("multiple of the number"));
    CHECK_THROWS_AS(tr::GclObjective<double>(s.model, s.arena, {.temperature = 0}), gcl::Error);
    CHECK_THROWS_AS(tr::GclObjective<double>(s.model, s.arena, {.anchor_ratio = 0}), gcl::Error);
    CHECK_THROWS_WITH(tr::GclObjective<double>(s.model, s.arena, {.image_temperatures = {0.5, -1}}),
                      Catch::Contains("image temperature must be positive"));
    CHECK_THROWS_WITH(tr::GclObjective<double>(
                          s.model, s.arena, {.image_temperatures = {0.5, 0.5}, .label_space = tr::LabelSpace::shared}),
                      Catch::Contains("per_label"));
    tr::GclObjective<double> three(s.model, s.arena, {.image_temperatures = {0.5, 0.5, 0.5}});
    CHECK_THROWS_WITH(three.gradient(s.images.cview(), s.meta.cview(), 0), Catch::Contains("3 values for 2 meta labels"));
}
