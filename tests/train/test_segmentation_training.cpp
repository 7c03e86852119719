// Fine-tuning pieces: the segmentation objective's gradient and the seeded trainers (repeatable
// runs, a loss that goes down).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "gcl/data/phantom.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/testing/gradcheck.hpp"
#include "gcl/train/gcl_pretrainer.hpp"
#include "gcl/train/segmentation_trainer.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace tr = gcl::train;
namespace nn = gcl::nn;
namespace gd = gcl::data;

TEST_CASE("SegmentationObjective: cross-entropy + Dice and its gradient through a U-Net", "[train][segmentation]") {
    nn::ParameterArena<double> arena;
    nn::UNet<double> unet(arena, {.in_channels = 1, .classes = 3, .depth = 1, .base_width = 2}, 4);
    Tensor<double> x(Shape{2, 1, 4, 4});
    gcl::Rng rng(8);
    gcl::fill_normal(x.view(), rng);
    Tensor<std::int32_t> labels(Shape{2, 4, 4});
    for (index_t i = 0; i < labels.numel(); ++i) labels.data()[i] = static_cast<std::int32_t>(rng.below(3));

    tr::SegmentationObjective<double> objective({.cross_entropy_weight = 1.0, .dice_weight = 0.5});
    const tr::SegmentationStepReport r = objective.gradient(unet, arena, x.cview(), labels.cview());
    CHECK(r.loss == Approx(r.cross_entropy + 0.5 * r.dice_loss));
    CHECK(r.cross_entropy > 0);
    CHECK(r.dice_loss > 0);
    CHECK(r.dice_loss < 1);
    const Tensor<double> analytic = Tensor<double>::copy_of(arena.flat_grads());
    const auto loss = [&] { return objective.gradient(unet, arena, x.cview(), labels.cview()).loss; };
    gcl::testing::GradCheckOptions o;
    o.max_elements = 120;
    const auto result = gcl::testing::check_gradient(loss, arena.flat_values(), analytic.cview(), o);
    INFO(result.message);
    CHECK(result.passed);

    Tensor<std::int32_t> none;
    CHECK_THROWS_WITH(objective.gradient(unet, arena, x.cview(), none.cview()), Catch::Contains("no labels"));
    CHECK_THROWS_AS(tr::SegmentationObjective<double>({.cross_entropy_weight = 0, .dice_weight = 0}), gcl::Error);
}

TEST_CASE("GclPretrainer and SegmentationTrainer repeat exactly and learn", "[train][pretrainer]") {
    gd::PhantomOptions po;
    po.patients = 4;
    po.slices = 8;
    po.size = 32;
    po.seed = 6;
    const std::vector<gd::Slice> slices = gd::phantom_slices(po);
    const nn::UNetOptions unet_options{.in_channels = 1, .classes = 4, .depth = 2, .base_width = 4};

    tr::GclPretrainerOptions o;
    o.steps = 4;
    o.warmup_steps = 1;
    o.sampler.batch_size = 8;
    o.sampler.seed = 1;
    o.objective.pixel_samples = 4;
    const auto pretrain = [&] {
        nn::ParameterArena<float> arena;
        nn::PretrainModel<float> model(arena,
                                       {.encoder = unet_options.encoder(), .image_hidden = 8, .image_out = 6,
                                        .pixel_hidden = 8, .pixel_out = 6},
                                       9);
        tr::GclPretrainer<float> pretrainer(model, arena, slices, o);
        std::vector<double> losses;
        while (!pretrainer.done()) losses.push_back(pretrainer.step().total);
        CHECK_THROWS_AS(pretrainer.step(), gcl::Error);
        return std::make_pair(Tensor<float>::copy_of(arena.flat_values()), losses);
    };
    const auto [first, first_losses] = pretrain();
    const auto [second, second_losses] = pretrain();
    CHECK(first_losses == second_losses);
    REQUIRE(first.numel() == second.numel());
    CHECK(std::equal(first.data(), first.data() + first.numel(), second.data()));

    // Fine-tuning a small U-Net on the labelled slices lowers its loss.
    nn::ParameterArena<float> arena;
    nn::UNet<float> unet(arena, unet_options, 3);
    tr::SegmentationTrainerOptions so;
    so.steps = 40;
    so.warmup_steps = 2;
    so.batch_size = 4;
    so.adam.learning_rate = 3e-3;
    so.seed = 4;
    tr::SegmentationTrainer<float, nn::UNet<float>> trainer(unet, arena, slices, so);
    double early = 0, late = 0;
    while (!trainer.done()) {
        const double loss = trainer.step().loss;
        if (trainer.steps_done() <= 5) early += loss / 5;
        if (trainer.steps_done() > 35) late += loss / 5;
    }
    CHECK(late < 0.8 * early);
}

namespace {

// Parameters, buffers and losses of a run, compared bitwise.
struct RunState {
    Tensor<float> parameters, buffers;
    std::vector<double> losses;
    bool operator==(const RunState& o) const {
        const auto same = [](const Tensor<float>& a, const Tensor<float>& b) {
            return a.numel() == b.numel() && std::equal(a.data(), a.data() + a.numel(), b.data());
        };
        return same(parameters, o.parameters) && same(buffers, o.buffers) && losses == o.losses;
    }
};

template <class Arena>
RunState state_of(const Arena& arena, std::vector<double> losses) {
    return {Tensor<float>::copy_of(arena.flat_values()), Tensor<float>::copy_of(arena.flat_buffers()), std::move(losses)};
}

std::filesystem::path temp_checkpoint(const std::string& name) {
    return std::filesystem::temp_directory_path() / ("gcl_test_" + std::to_string(::getpid()) + "_" + name + ".gclckpt");
}

}  // namespace

TEST_CASE("GclPretrainer and SegmentationTrainer resume exactly from a checkpoint", "[train][checkpoint]") {
    const std::vector<gd::Slice> slices = gd::phantom_slices({.patients = 4, .slices = 8, .size = 16, .seed = 6, .profile = {}});
    const nn::UNetOptions unet_options{.in_channels = 1, .classes = 4, .depth = 2, .base_width = 4};

    SECTION("pre-training") {
        // Both optimizers: AdamW (the default) and SGD with momentum.
        const tr::PretrainOptimizer optimizer = GENERATE(tr::PretrainOptimizer::adamw, tr::PretrainOptimizer::sgd);
        INFO("optimizer " << tr::to_string(optimizer));
        tr::GclPretrainerOptions o;
        o.steps = 4;
        o.warmup_steps = 1;
        o.optimizer = optimizer;
        o.sgd.learning_rate = 0.05;
        o.sampler.batch_size = 6;
        o.sampler.seed = 1;
        o.objective.pixel_samples = 4;
        const std::filesystem::path path = temp_checkpoint(std::string("pretrain_") + tr::to_string(optimizer));
        // Runs `steps` steps, from the checkpoint when asked, and saves when asked.
        const auto run = [&](std::int64_t steps, bool resume, bool save, std::uint64_t init_seed = 9) {
            nn::ParameterArena<float> arena;
            nn::PretrainModel<float> model(arena,
                                           {.encoder = unet_options.encoder(), .image_hidden = 8, .image_out = 6,
                                            .pixel_hidden = 8, .pixel_out = 6},
                                           init_seed);
            tr::GclPretrainer<float> pretrainer(model, arena, slices, o);
            if (resume) pretrainer.resume(path);
            std::vector<double> losses;
            for (std::int64_t s = 0; s < steps; ++s) losses.push_back(pretrainer.step().total);
            if (save) pretrainer.save(path);
            return state_of(arena, losses);
        };
        const RunState whole = run(4, false, false);
        const RunState first = run(2, false, true);
        const RunState rest = run(2, true, false, /*init_seed=*/77);  // loading replaces the initialisation
        CHECK(rest.losses.size() == 2);
        std::vector<double> joined = first.losses;
        joined.insert(joined.end(), rest.losses.begin(), rest.losses.end());
        CHECK((RunState{rest.parameters, rest.buffers, joined} == whole));

        // Options that would make another run: a clear error, nothing loaded.
        o.sampler.batch_size = 8;
        nn::ParameterArena<float> arena;
        nn::PretrainModel<float> model(arena, {.encoder = unet_options.encoder(), .image_hidden = 8, .image_out = 6,
                                               .pixel_hidden = 8, .pixel_out = 6}, 9);
        tr::GclPretrainer<float> other(model, arena, slices, o);
        const Tensor<float> before = Tensor<float>::copy_of(arena.flat_values());
        CHECK_THROWS_WITH(other.resume(path), Catch::Contains("batch_size = 6, this trainer has 8"));
        CHECK(std::equal(before.data(), before.data() + before.numel(), arena.flat_values().data()));
        CHECK(other.steps_done() == 0);

        // The other optimizer cannot continue this one's state.
        o.sampler.batch_size = 6;
        o.optimizer = optimizer == tr::PretrainOptimizer::sgd ? tr::PretrainOptimizer::adamw : tr::PretrainOptimizer::sgd;
        tr::GclPretrainer<float> switched(model, arena, slices, o);
        CHECK_THROWS_WITH(switched.resume(path), Catch::Contains("was saved with optimizer = "));
        CHECK(std::equal(before.data(), before.data() + before.numel(), arena.flat_values().data()));
        std::filesystem::remove(path);
    }

    SECTION("fine-tuning") {
        tr::SegmentationTrainerOptions so;
        so.steps = 4;
        so.warmup_steps = 1;
        so.batch_size = 5;
        so.adam.learning_rate = 3e-3;
        so.seed = 4;
        const std::filesystem::path path = temp_checkpoint("finetune");
        const auto run = [&](std::int64_t steps, bool resume, bool save, std::uint64_t init_seed = 3) {
            nn::ParameterArena<float> arena;
            nn::UNet<float> unet(arena, unet_options, init_seed);
            tr::SegmentationTrainer<float, nn::UNet<float>> trainer(unet, arena, slices, so);
            if (resume) trainer.resume(path);
            std::vector<double> losses;
            for (std::int64_t s = 0; s < steps; ++s) losses.push_back(trainer.step().loss);
            if (save) trainer.save(path);
            CHECK(trainer.steps_done() == (resume ? 2 : 0) + steps);
            return state_of(arena, losses);
        };
        const RunState whole = run(4, false, false);
        const RunState first = run(2, false, true);
        const RunState rest = run(2, true, false, /*init_seed=*/77);
        std::vector<double> joined = first.losses;
        joined.insert(joined.end(), rest.losses.begin(), rest.losses.end());
        CHECK((RunState{rest.parameters, rest.buffers, joined} == whole));

        // A fine-tuning checkpoint is not a pre-training one, and a missing file says so.
        nn::ParameterArena<float> arena;
        nn::PretrainModel<float> model(arena, {.encoder = unet_options.encoder(), .image_hidden = 8, .image_out = 6,
                                               .pixel_hidden = 8, .pixel_out = 6}, 9);
        tr::GclPretrainer<float> pretrainer(model, arena, slices, tr::GclPretrainerOptions{});
        CHECK_THROWS_WITH(pretrainer.resume(path), Catch::Contains("state of a segmentation_trainer, not of a gcl_pretrainer"));
        std::filesystem::remove(path);
        CHECK_THROWS_WITH(pretrainer.resume(path), Catch::Contains("no such file"));
    }
}
