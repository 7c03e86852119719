#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "gcl/core/random.hpp"
#include "gcl/loss/supcon.hpp"
#include "gcl/testing/gradcheck.hpp"
#include "loss_fixtures.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::loss::ContrastOptions;
using gcl::loss::ContrastResult;
using gcl::loss::PositivePairs;
using gcl::testing::loss_fixture;
using gcl::testing::worst_ratio;

namespace {

// The positive pairs of the four-label fixture: patient, position in 3 bins, |dposition| < 0.2, user mask.
PositivePairs fixture_pairs() {
    const Tensor<index_t> patient = loss_fixture<index_t>("supcon_patient");
    const Tensor<double> position = loss_fixture<double>("supcon_position");
    const Tensor<std::uint8_t> mask = loss_fixture<std::uint8_t>("supcon_user_mask");
    PositivePairs pairs(patient.dim(0));
    pairs.add_labels(patient.cview())
        .add_bins<double>(position.cview(), 3)
        .add_threshold<double>(position.cview(), 0.2)
        .add_mask(mask.cview());
    return pairs;
}

template <class T>
void check_against_fixture(const ContrastResult<T>& r, const std::string& name, double rtol, double atol) {
    const Tensor<double> losses = loss_fixture<double>(name + "_losses");
    const Tensor<double> grads = loss_fixture<double>(name + "_grads");
    const Tensor<double> pair = loss_fixture<double>(name + "_pair_grads");
    const Tensor<index_t> without = loss_fixture<index_t>(name + "_without_positives");
    REQUIRE(r.losses.shape() == losses.shape());
    REQUIRE(r.grads.shape() == grads.shape());
    REQUIRE(r.pair_grads.shape() == pair.shape());
    CHECK(worst_ratio(r.losses.data(), losses.data(), losses.numel(), rtol, atol) <= 1.0);
    CHECK(worst_ratio(r.grads.data(), grads.data(), grads.numel(), rtol, atol) <= 1.0);
    CHECK(worst_ratio(r.pair_grads.data(), pair.data(), pair.numel(), rtol, atol) <= 1.0);
    for (index_t m = 0; m < without.dim(0); ++m) CHECK(r.anchors_without_positives[m] == without(m));
    double total = 0;
    for (index_t m = 0; m < losses.dim(0); ++m) total += losses(m);
    CHECK(r.total == Approx(total).epsilon(rtol).margin(atol));
}

}  // namespace

TEST_CASE("SupCon matches PyTorch: four meta labels (labels, bins, threshold, asymmetric mask)", "[loss][supcon]") {
    const PositivePairs pairs = fixture_pairs();
    const Tensor<double> z = loss_fixture<double>("supcon_z");
    const ContrastOptions options{.temperature = 0.1, .normalize = true, .keep_pair_grads = true};
    const ContrastResult<double> r = gcl::loss::supcon<double>(z.cview(), pairs, options);
    check_against_fixture(r, "supcon", 1e-10, 1e-12);

    const Tensor<float> zf = gcl::testing::cast<float>(z);
    const ContrastResult<float> rf = gcl::loss::supcon<float>(zf.cview(), pairs, options);
    check_against_fixture(rf, "supcon", 2e-4, 2e-5);

    // The summed gradient is the sum of the per-label gradients.
    for (index_t i = 0; i < r.grad_sum.numel(); ++i) {
        double s = 0;
        for (index_t m = 0; m < 4; ++m) s += r.grads.data()[m * r.grad_sum.numel() + i];
        REQUIRE(r.grad_sum.data()[i] == Approx(s).margin(1e-14));
    }
}

TEST_CASE("SupCon matches PyTorch: anchors without positives contribute nothing", "[loss][supcon]") {
    const Tensor<double> z = loss_fixture<double>("single_z");
    const Tensor<index_t> labels = loss_fixture<index_t>("single_labels");
    const index_t n = z.dim(0);
    Tensor<index_t> image_of(Shape{n});
    for (index_t i = 0; i < n; ++i) image_of(i) = i;  // one view per image
    PositivePairs pairs(image_of.cview(), n);
    pairs.add_labels(labels.cview().select(0, 0)).add_labels(labels.cview().select(0, 1));
    const ContrastResult<double> r =
        gcl::loss::supcon<double>(z.cview(), pairs, {.temperature = 0.5, .keep_pair_grads = true});
    check_against_fixture(r, "single", 1e-10, 1e-12);
    CHECK(r.anchors_without_positives[0] == 2);
    CHECK(r.anchors_without_positives[1] == n);  // a label with no positive pair at all
    CHECK(r.losses(1) == 0.0);
    for (index_t i = 0; i < n * z.dim(1); ++i) REQUIRE(r.grads.data()[n * z.dim(1) + i] == 0.0);
}

TEST_CASE("SupCon with a K x N label matrix equals the PositivePairs route", "[loss][supcon]") {
    const Tensor<double> z = loss_fixture<double>("supcon_z");
    const Tensor<index_t> patient = loss_fixture<index_t>("supcon_patient");
    const index_t B = patient.dim(0);
    Tensor<index_t> labels(Shape{2, 2 * B});
    for (index_t i = 0; i < 2 * B; ++i) {
        labels(0, i) = patient(i % B);
        labels(1, i) = (i % B) / 2;
    }
    const ContrastResult<double> a = gcl::loss::supcon<double>(z.cview(), labels.cview(), {.normalize = true});
    PositivePairs pairs(B);
    pairs.add_labels(labels.cview().select(0, 0).narrow(0, 0, B)).add_labels(labels.cview().select(0, 1).narrow(0, 0, B));
    const ContrastResult<double> b = gcl::loss::supcon<double>(z.cview(), pairs, {.normalize = true});
    CHECK(a.losses(0) == b.losses(0));
    CHECK(a.losses(1) == b.losses(1));
    CHECK(worst_ratio(a.grads.data(), b.grads.data(), a.grads.numel(), 0.0, 1e-300) <= 1.0);
    labels(1, B) = 7;  // the two views of image 0 disagree
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(z.cview(), labels.cview()), Catch::Contains("two views of image 0"));
}

TEST_CASE("SupCon gradients pass the finite-difference check", "[loss][supcon][gradcheck]") {
    const index_t B = 5, D = 6;
    Tensor<double> z(Shape{2 * B, D});
    gcl::Rng rng(31);
    gcl::fill_normal<double>(z.view(), rng);
    const Tensor<index_t> a = Tensor<index_t>::from(Shape{B}, {0, 1, 0, 1, -1});
    const Tensor<double> pos = Tensor<double>::from(Shape{B}, {0.1, 0.15, 0.5, 0.55, 0.9});
    PositivePairs pairs(B);
    pairs.add_labels(a.cview()).add_threshold<double>(pos.cview(), 0.1);
    for (bool normalize : {true, false}) {
        const ContrastOptions options{.temperature = normalize ? 0.1 : 2.0, .normalize = normalize};
        const ContrastResult<double> r = gcl::loss::supcon<double>(z.cview(), pairs, options);
        for (index_t m = 0; m < 2; ++m) {
            const auto objective = [&] { return gcl::loss::supcon<double>(z.cview(), pairs, options).losses(m); };
            const auto result = gcl::testing::check_gradient(objective, z.view(), r.grads.cview().select(0, m),
                                                             {.step = 1e-6, .rtol = 1e-6, .atol = 1e-9});
            INFO(result.message);
            CHECK(result.passed);
        }
        const auto total = [&] { return gcl::loss::supcon<double>(z.cview(), pairs, options).total; };
        const auto result = gcl::testing::check_gradient(total, z.view(), r.grad_sum.cview(),
                                                         {.step = 1e-6, .rtol = 1e-6, .atol = 1e-9});
        INFO(result.message);
        CHECK(result.passed);
    }
}

TEST_CASE("contrast_backward of the unmodified pair gradients gives the loss gradients", "[loss][supcon]") {
    const PositivePairs pairs = fixture_pairs();
    const Tensor<double> z = loss_fixture<double>("supcon_z");
    const ContrastResult<double> r =
        gcl::loss::supcon<double>(z.cview(), pairs, {.normalize = true, .keep_pair_grads = true});
    const Tensor<double> g = gcl::loss::contrast_backward<double>(r, r.pair_grads.cview());
    CHECK(worst_ratio(g.data(), r.grads.data(), g.numel(), 1e-12, 1e-14) <= 1.0);
}

TEMPLATE_TEST_CASE("SupCon stays finite for large logits", "[loss][supcon]", float, double) {
    using T = TestType;
    Tensor<T> z(Shape{8, 4});
    gcl::Rng rng(3);
    gcl::fill_normal<T>(z.view(), rng, T(0), T(30));  // |s / tau| up to ~1e5 without normalisation
    PositivePairs pairs(4);
    const Tensor<index_t> l = Tensor<index_t>::from(Shape{4}, {0, 0, 1, 1});
    pairs.add_labels(l.cview());
    const ContrastResult<T> r = gcl::loss::supcon<T>(z.cview(), pairs, {.temperature = 0.01});
    CHECK(std::isfinite(r.total));
    for (index_t i = 0; i < r.grads.numel(); ++i) REQUIRE(std::isfinite(r.grads.data()[i]));
}

TEST_CASE("SupCon raises gcl::Error on bad input", "[loss][supcon]") {
    PositivePairs pairs(2);
    const Tensor<index_t> l = Tensor<index_t>::from(Shape{2}, {0, 1});
    Tensor<double> z(Shape{4, 3}, 1.0);
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(z.cview(), pairs), Catch::Contains("no meta label"));
    pairs.add_labels(l.cview());
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(z.cview(), pairs, {.temperature = 0}),
                      Catch::Contains("temperature must be positive"));
    Tensor<double> wrong(Shape{6, 3}, 1.0);
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(wrong.cview(), pairs), Catch::Contains("describe 4 embeddings"));
    z(2, 1) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(z.cview(), pairs), Catch::Contains("embedding 2"));
    z(2, 1) = 1.0;
    for (index_t d = 0; d < 3; ++d) z(3, d) = 0.0;
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(z.cview(), pairs, {.normalize = true}),
                      Catch::Contains("embedding 3 is zero"));
}
