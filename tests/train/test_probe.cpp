// The k-NN probe: exact votes on hand-made embeddings, chance from the reference labels, bad
// input; and the meta-label probe of a pre-training model on held-out phantom slices.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "gcl/data/phantom.hpp"
#include "gcl/metrics/knn_probe.hpp"
#include "gcl/train/pretrain_probe.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace mt = gcl::metrics;

TEST_CASE("knn_probe votes among the k most similar references", "[train][probe]") {
    // References on the unit circle: label 0 around angle 0, label 1 around angle pi/2, label 2 at pi.
    const auto ref = Tensor<double>::from(Shape{6, 2}, {1, 0, 0.9, 0.1, 0, 1, 0.1, 0.9, 0.2, 0.95, -1, 0});
    const auto ref_labels = Tensor<std::int64_t>::from(Shape{6}, {0, 0, 1, 1, 1, 2});
    // Scale does not matter (cosine); the last query is closest to label 2 but k = 3 outvotes it.
    const auto query = Tensor<double>::from(Shape{4, 2}, {5, 0.5, 0.05, 2, 3, 3.3, -1, 0.05});
    const auto query_labels = Tensor<std::int64_t>::from(Shape{4}, {0, 1, 0, 2});

    const auto k1 = mt::knn_probe<double>(ref.cview(), ref_labels.cview(), query.cview(), query_labels.cview(), {.k = 1});
    // k = 1: query 0 -> ref 1 (label 0), query 1 -> ref 3 (1), query 2 -> ref 4 (1, wrong), query 3 -> ref 5 (2).
    CHECK(k1.accuracy == Approx(3.0 / 4));
    CHECK(k1.queries == 4);
    CHECK(k1.classes == 3);
    // Most frequent reference label: 1, right for one query in four.
    CHECK(k1.chance == Approx(1.0 / 4));

    const auto k3 = mt::knn_probe<double>(ref.cview(), ref_labels.cview(), query.cview(), query_labels.cview(), {.k = 3});
    // k = 3: query 0 -> {0, 0, 1} right; query 1 -> {1, 1, 1} right; query 2 -> {1, 1, 0} wrong;
    // query 3 = (-1, 0.05) -> refs 5, 2, 3 = {2, 1, 1} wrong.
    CHECK(k3.accuracy == Approx(2.0 / 4));

    // Ties in count go to the label with the larger summed similarity.
    const auto tie_ref = Tensor<float>::from(Shape{2, 2}, {1, 0, 0, 1});
    const auto tie_labels = Tensor<std::int64_t>::from(Shape{2}, {7, 3});
    const auto tie_query = Tensor<float>::from(Shape{1, 2}, {0.2f, 1});
    const auto tie_truth = Tensor<std::int64_t>::from(Shape{1}, {3});
    CHECK(mt::knn_probe<float>(tie_ref.cview(), tie_labels.cview(), tie_query.cview(), tie_truth.cview(), {.k = 2})
              .accuracy == 1.0);
}

TEST_CASE("knn_probe rejects bad input", "[train][probe]") {
    const auto ref = Tensor<double>::from(Shape{2, 2}, {1, 0, 0, 1});
    const auto labels = Tensor<std::int64_t>::from(Shape{2}, {0, 1});
    const auto wrong_width = Tensor<double>::from(Shape{1, 3}, {1, 0, 0});
    const auto one = Tensor<std::int64_t>::from(Shape{1}, {0});
    CHECK_THROWS_WITH(mt::knn_probe<double>(ref.cview(), labels.cview(), wrong_width.cview(), one.cview()),
                      Catch::Contains("differ in width"));
    CHECK_THROWS_WITH(mt::knn_probe<double>(ref.cview(), one.cview(), ref.cview(), labels.cview()),
                      Catch::Contains("reference labels"));
    CHECK_THROWS_WITH(mt::knn_probe<double>(ref.cview(), labels.cview(), ref.cview(), labels.cview(), {.k = 3}),
                      Catch::Contains("k must be in [1, 2]"));
    auto nan = ref;
    nan(1, 0) = std::nan("");
    CHECK_THROWS_WITH(mt::knn_probe<double>(ref.cview(), labels.cview(), nan.cview(), labels.cview(), {.k = 1}),
                      Catch::Contains("query embedding 1"));
}

TEST_CASE("probe_meta_labels probes each meta label on held-out slices", "[train][probe]") {
    gcl::nn::ParameterArena<float> arena;
    gcl::nn::PretrainModel<float> model(
        arena, {.encoder = {.in_channels = 1, .depth = 1, .base_width = 4}, .image_hidden = 8, .image_out = 6,
                .pixel_hidden = 4, .pixel_out = 3},
        2);
    const auto slices = gcl::data::phantom_slices({.patients = 4, .slices = 6, .size = 16, .seed = 3, .profile = {}});
    const gcl::data::MetaSpec spec;  // patient, position, phase
    for (auto space : {gcl::train::LabelSpace::per_label, gcl::train::LabelSpace::shared}) {
        const auto r = gcl::train::probe_meta_labels<float>(model, slices, spec, space, {.k = 3});
        REQUIRE(r.labels == std::vector<std::string>{"patient", "position", "phase"});
        REQUIRE(r.accuracy.size() == 3);
        // Patient: 4 patients, 3 even slices each as references: chance is 1/4.
        CHECK(r.chance[0] == Approx(0.25));
        // Phase: ED and ES equally frequent in both halves.
        CHECK(r.chance[2] == Approx(0.5));
        for (double a : r.accuracy) CHECK((a >= 0 && a <= 1));
    }
    // The probe leaves the model's mode alone.
    CHECK(model.training());

    std::vector<gcl::data::Slice> two(slices.begin(), slices.begin() + 2);
    CHECK_THROWS_WITH(gcl::train::probe_meta_labels<float>(model, two, spec, gcl::train::LabelSpace::per_label),
                      Catch::Contains("at least two patients"));
    gcl::data::MetaSpec four;
    four.labels.push_back(gcl::data::MetaLabel::scanner);
    CHECK_THROWS_WITH(gcl::train::probe_meta_labels<float>(model, slices, four, gcl::train::LabelSpace::per_label),
                      Catch::Contains("multiple of the number of meta labels"));
}
