// evaluate_segmentation: per-volume scores equal the metrics computed on hand-stacked volumes,
// and the report's means follow the conventions it names.
#include <catch2/catch.hpp>

#include <cmath>

#include "gcl/data/phantom.hpp"
#include "gcl/metrics/evaluate.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace mt = gcl::metrics;
namespace gd = gcl::data;

namespace {
// A "network" that segments by intensity thresholds: enough to know exactly what it predicts.
struct ThresholdNet {
    bool training_ = true;
    Tensor<float> logits;
    gcl::ConstView<float> forward(gcl::ConstView<float> x) {
        const index_t N = x.dim(0), HW = x.dim(2) * x.dim(3);
        logits.resize(Shape{N, 4, x.dim(2), x.dim(3)});
        for (index_t n = 0; n < N; ++n)
            for (index_t p = 0; p < HW; ++p) {
                const float v = x.data()[n * HW + p];
                const int c = v < 0.3f ? 0 : v < 0.5f ? 2 : v < 0.8f ? 1 : 3;
                for (int k = 0; k < 4; ++k) logits.data()[(n * 4 + k) * HW + p] = k == c ? 1.0f : 0.0f;
            }
        return logits.cview();
    }
    void set_training(bool t) { training_ = t; }
    bool training() const { return training_; }
};
}  // namespace

TEST_CASE("evaluate_segmentation scores volumes like the metrics do", "[metrics][evaluate]") {
    gd::PhantomOptions po;
    po.patients = 2;
    po.slices = 6;
    po.size = 48;
    po.seed = 2;
    const std::vector<gd::Slice> slices = gd::phantom_slices(po);
    ThresholdNet net;
    const mt::EvaluationReport report = mt::evaluate_segmentation<float>(net, slices, {.classes = 4, .batch_size = 5});
    REQUIRE(report.volumes.size() == 4);  // 2 patients x 2 phases
    CHECK(net.training());                 // restored after evaluation
    for (const mt::VolumeScores& v : report.volumes) {
        CHECK(v.slices == 6);
        // Stack the volume by hand and score it directly.
        Tensor<std::uint8_t> pred(Shape{6, 48, 48}), truth(Shape{6, 48, 48});
        for (const gd::Slice& s : slices) {
            if (s.meta.patient != v.patient || static_cast<std::int32_t>(s.meta.phase) != v.phase) continue;
            Tensor<float> x(Shape{1, 1, 48, 48});
            std::copy(s.image.data(), s.image.data() + 48 * 48, x.data());
            const Tensor<std::uint8_t> c = mt::argmax_classes<float>(net.forward(x.cview()));
            std::copy(c.data(), c.data() + 48 * 48, pred.data() + s.meta.slice * 48 * 48);
            std::copy(s.label.data(), s.label.data() + 48 * 48, truth.data() + s.meta.slice * 48 * 48);
        }
        const std::vector<double> dice = mt::dice_per_class<std::uint8_t>(pred.cview(), truth.cview(), 4);
        for (int c = 0; c < 4; ++c) {
            CHECK(v.dice[static_cast<std::size_t>(c)] == Approx(dice[static_cast<std::size_t>(c)]));
            const auto hd = mt::surface_distance<std::uint8_t>(pred.cview(), truth.cview(), static_cast<std::uint8_t>(c),
                                                               {10.0, slices[0].spacing[0], slices[0].spacing[1]});
            REQUIRE(hd.has_value() == v.hd95[static_cast<std::size_t>(c)].has_value());
            REQUIRE(hd.has_value() == v.assd[static_cast<std::size_t>(c)].has_value());
            if (hd) CHECK(*v.hd95[static_cast<std::size_t>(c)] == Approx(hd->hd95_medpy));
            if (hd) CHECK(*v.assd[static_cast<std::size_t>(c)] == Approx(hd->assd_pooled));
        }
    }
    double mean1 = 0;
    for (const mt::VolumeScores& v : report.volumes) mean1 += v.dice[1] / 4;
    CHECK(report.mean_dice[1] == Approx(mean1));
    CHECK(report.mean_foreground_dice() == Approx((report.mean_dice[1] + report.mean_dice[2] + report.mean_dice[3]) / 3));

    std::vector<gd::Slice> unlabelled = slices;
    unlabelled[3].label = Tensor<std::uint8_t>();
    CHECK_THROWS_WITH(mt::evaluate_segmentation<float>(net, unlabelled, {}), Catch::Contains("no ground truth"));
    CHECK_THROWS_AS(mt::evaluate_segmentation<float>(net, {}, {}), gcl::Error);
}


TEST_CASE("evaluate_segmentation: a class absent from a whole volume, under each named convention", "[metrics][evaluate]") {
    gd::PhantomOptions po;
    po.patients = 2;
    po.slices = 4;
    po.size = 32;
    po.seed = 3;
    std::vector<gd::Slice> slices = gd::phantom_slices(po);
    // One volume (the first patient's first phase) shows only background, in the image and in the
    // ground truth: the threshold network predicts background there too.
    const std::int64_t empty_patient = slices[0].meta.patient;
    const auto empty_phase = slices[0].meta.phase;
    for (gd::Slice& s : slices)
        if (s.meta.patient == empty_patient && s.meta.phase == empty_phase) {
            std::fill(s.image.data(), s.image.data() + s.image.numel(), 0.0f);
            std::fill(s.label.data(), s.label.data() + s.label.numel(), std::uint8_t{0});
        }
    ThresholdNet net;
    const mt::EvaluationReport nnunet = mt::evaluate_segmentation<float>(net, slices, {.classes = 4});
    const mt::EvaluationReport old =
        mt::evaluate_segmentation<float>(net, slices, {.classes = 4, .dice = mt::DiceConvention::empty_is_one,
                                                       .hd95 = mt::Hd95Definition::monai,
                                                       .assd = mt::AssdDefinition::mean_of_directed});
    REQUIRE(nnunet.volumes.size() == 4);
    for (std::size_t c = 1; c < 4; ++c) {
        double others = 0, others_hd_medpy = 0;
        int defined = 0, with_hd = 0;
        for (const mt::VolumeScores& v : nnunet.volumes) {
            if (v.patient == empty_patient && v.phase == static_cast<std::int32_t>(empty_phase)) {
                CHECK(std::isnan(v.dice[c]));
                CHECK_FALSE(v.hd95[c].has_value());
                continue;
            }
            REQUIRE_FALSE(std::isnan(v.dice[c]));
            others += v.dice[c];
            ++defined;
            if (v.hd95[c]) others_hd_medpy += *v.hd95[c], ++with_hd;
        }
        CHECK(defined == 3);
        CHECK(nnunet.undefined_dice[c] == 1);
        CHECK(nnunet.mean_dice[c] == Approx(others / 3));
        CHECK(old.undefined_dice[c] == 0);
        CHECK(old.mean_dice[c] == Approx((others + 1.0) / 4));  // the empty volume counted as perfect
        CHECK(nnunet.undefined_hd95[c] == 4 - with_hd);
        REQUIRE(with_hd > 0);
        CHECK(nnunet.mean_hd95[c] == Approx(others_hd_medpy / with_hd));
        CHECK(old.mean_hd95[c] >= nnunet.mean_hd95[c] - 1e-12);  // MONAI's HD95 is never below MedPy's
    }
    CHECK(nnunet.conventions().find("Dice: nnunet") != std::string::npos);
    CHECK(nnunet.conventions().find("HD95: medpy") != std::string::npos);
    CHECK(nnunet.conventions().find("ASSD: pooled") != std::string::npos);
    CHECK(old.conventions().find("Dice: empty_is_one") != std::string::npos);
    CHECK(old.conventions().find("HD95: monai") != std::string::npos);
    CHECK(old.conventions().find("ASSD: mean_of_directed") != std::string::npos);
    CHECK_THROWS_WITH(mt::evaluate_segmentation<float>(net, slices, {.classes = 1}), Catch::Contains("2 classes"));
    CHECK_THROWS_WITH(mt::evaluate_segmentation<float>(net, slices, {.classes = 4, .slice_spacing = 0}),
                      Catch::Contains("slice_spacing"));
}
