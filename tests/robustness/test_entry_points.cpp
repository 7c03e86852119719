// Bad input at the public entry points of pre-training, fine-tuning, evaluation and resuming:
// empty batches, K = 0, labels without positives, non-finite images, labels out of range,
// mismatched shapes, checkpoints that are truncated or come from another model. Each is either
// handled (finite results) or a gcl::Error naming what and where, with nothing changed.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "gcl/data/phantom.hpp"
#include "gcl/loss/supcon.hpp"
#include "gcl/metrics/evaluate.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "gcl/train/checkpoint_state.hpp"
#include "gcl/train/gcl_pretrainer.hpp"
#include "../data/temp_dir.hpp"
#include "train_fixture.hpp"

using namespace robustness;
namespace tr = gcl::train;
namespace gd = gcl::data;

TEST_CASE("GclObjective: empty batches, K = 0, no positives, non-finite images", "[robustness][entry]") {
    Run run;
    const Batch good = make_batch(1, 0, false);
    Tensor<float> empty(Shape{0, 1, 8, 8});
    Tensor<std::int64_t> no_meta(Shape{2, 0});
    CHECK_THROWS_WITH(run.objective.gradient(empty.cview(), no_meta.cview(), 0), Catch::Contains("two views"));
    Tensor<std::int64_t> k0(Shape{0, 6});
    CHECK_THROWS_WITH(run.objective.gradient(good.images.cview(), k0.cview(), 0), Catch::Contains("K >= 1"));

    // A label with no positives in the batch, or unknown everywhere, is not an error: finite losses.
    for (std::uint64_t step : {1u, 2u}) {  // make_batch: step 1 all distinct, step 2 unknown label 1
        const Batch hostile = make_batch(1, step, true);
        const tr::GclStepReport r = run.objective.gradient(hostile.images.cview(), hostile.meta.cview(), step);
        CHECK(std::isfinite(r.total));
        for (double l : r.image_losses) CHECK(std::isfinite(l));
    }

    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        Tensor<float> images = good.images;
        images(4, 0, 2, 5) = bad;
        const std::vector<float> before = parameters(run.arena);
        CHECK_THROWS_AS(run.objective.gradient(images.cview(), good.meta.cview(), 0), gcl::Error);
        CHECK(parameters(run.arena) == before);
    }
}

TEST_CASE("contrast and mitigation with K = 0 or mismatched shapes", "[robustness][entry]") {
    Tensor<double> z(Shape{6, 4});
    for (index_t i = 0; i < z.numel(); ++i) z.data()[i] = 0.1 * static_cast<double>(i % 7) - 0.2;
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(z.cview(), Tensor<index_t>(Shape{0, 6}).cview()),
                      Catch::Contains("meta label"));
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(z.cview(), Tensor<index_t>(Shape{2, 4}).cview()),
                      Catch::Contains("[2, 4]") && Catch::Contains("[6, 4]"));
    Tensor<double> g(Shape{0, 5}), out(Shape{5});
    CHECK_THROWS_WITH(gcl::surgery::mitigate<double>(g.cview(), out.view()), Catch::Contains("non-empty"));
    Tensor<double> g2(Shape{2, 5}), out4(Shape{4});
    CHECK_THROWS_WITH(gcl::surgery::mitigate<double>(g2.cview(), out4.view()), Catch::Contains("out must have shape [5]"));
}

TEST_CASE("GclPretrainer: no slices", "[robustness][entry]") {
    gcl::nn::ParameterArena<float> arena;
    gcl::nn::PretrainModel<float> model(arena, tiny_model(), 3);
    const std::vector<gd::Slice> none;
    CHECK_THROWS_WITH(tr::GclPretrainer<float>(model, arena, none, {}), Catch::Contains("0 images"));
}

TEST_CASE("evaluation: a ground truth label out of range is named", "[robustness][entry]") {
    gd::PhantomOptions po;
    po.patients = 1;
    po.slices = 3;
    po.size = 16;
    std::vector<gd::Slice> slices = gd::phantom_slices(po);
    slices[1].label(4, 7) = 9;
    struct Background {
        bool training_ = false;
        Tensor<float> logits;
        gcl::ConstView<float> forward(gcl::ConstView<float> x) {
            logits = Tensor<float>(Shape{x.dim(0), 4, x.dim(2), x.dim(3)});
            return logits.cview();
        }
        void set_training(bool t) { training_ = t; }
        bool training() const { return training_; }
    } net;
    CHECK_THROWS_WITH(gcl::metrics::evaluate_segmentation<float>(net, slices, {.classes = 4}),
                      Catch::Contains("label 9") && Catch::Contains("target"));
}

TEST_CASE("resuming: a truncated checkpoint or one from another model changes nothing", "[robustness][entry]") {
    gcl_test::TempDir dir("resume_errors");
    Run run;
    run.step(make_batch(1, 0, false), 0);
    const auto path = dir / "state.gclc";
    tr::save_training_state(path, run.arena, run.sgd);

    Run other(5);
    const std::vector<float> before = parameters(other.arena);
    // Truncated at half its length.
    const auto size = std::filesystem::file_size(path);
    std::filesystem::copy_file(path, dir / "cut.gclc");
    std::filesystem::resize_file(dir / "cut.gclc", size / 2);
    CHECK_THROWS_WITH(tr::load_training_state(dir / "cut.gclc", other.arena, other.sgd),
                      Catch::Contains("cut.gclc") && Catch::Contains("truncated"));
    CHECK(parameters(other.arena) == before);
    // A checkpoint of a wider model.
    gcl::nn::ParameterArena<float> wide_arena;
    auto wide = tiny_model();
    wide.encoder.base_width = 8;
    gcl::nn::PretrainModel<float> wide_model(wide_arena, wide, 1);
    gcl::optim::SGD<float> wide_sgd({.learning_rate = 0.05, .momentum = 0.9});
    tr::save_training_state(dir / "wide.gclc", wide_arena, wide_sgd);
    CHECK_THROWS_WITH(tr::load_training_state(dir / "wide.gclc", other.arena, other.sgd),
                      Catch::Contains("wide.gclc") && Catch::Contains("shape"));
    CHECK(parameters(other.arena) == before);
    // The right one loads.
    tr::load_training_state(path, other.arena, other.sgd);
    CHECK(parameters(other.arena) == parameters(run.arena));
}
