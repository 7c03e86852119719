#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "gcl/core/random.hpp"
#include "gcl/loss/pixel_contrast.hpp"
#include "gcl/surgery/filter.hpp"
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

PositivePairs pixel_pairs() {
    const Tensor<index_t> labels = loss_fixture<index_t>("pixel_labels");
    PositivePairs pairs(2);  // 4 maps: two views of two images
    pairs.add_labels(labels.cview().select(0, 0)).add_labels(labels.cview().select(0, 1));
    return pairs;
}

// Per-label gradient maps (K x N x C x H x W) from the per-pixel gradients of a result.
template <class T>
Tensor<T> gradient_maps(const ContrastResult<T>& r, gcl::ConstView<index_t> loc, const Shape& map) {
    const index_t K = r.grads.dim(0);
    Tensor<T> out(Shape{K, map[0], map[1], map[2], map[3]});
    for (index_t m = 0; m < K; ++m)
        gcl::loss::scatter_pixel_grads<T>(r.grads.cview().select(0, m), loc, out.view().select(0, m));
    return out;
}

}  // namespace

TEMPLATE_TEST_CASE("Pixel contrast matches PyTorch", "[loss][pixel]", float, double) {
    using T = TestType;
    const Tensor<T> f = gcl::testing::cast<T>(loss_fixture<double>("pixel_features"));
    const Tensor<index_t> loc = loss_fixture<index_t>("pixel_locations");
    const PositivePairs pairs = pixel_pairs();
    const ContrastResult<T> r = gcl::loss::pixel_contrast<T>(
        f.cview(), loc.cview(), pairs, {.temperature = 0.1, .normalize = true, .keep_pair_grads = true});
    const double rtol = std::is_same_v<T, float> ? 2e-4 : 1e-10, atol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
    const Tensor<double> losses = loss_fixture<double>("pixel_losses");
    const Tensor<double> grads = loss_fixture<double>("pixel_grads");
    const Tensor<double> pair = loss_fixture<double>("pixel_pair_grads");
    CHECK(worst_ratio(r.losses.data(), losses.data(), 2, rtol, atol) <= 1.0);
    const Tensor<T> maps = gradient_maps(r, loc.cview(), f.shape());
    REQUIRE(maps.shape() == grads.shape());
    CHECK(worst_ratio(maps.data(), grads.data(), grads.numel(), rtol, atol) <= 1.0);
    REQUIRE(r.pair_grads.shape() == pair.shape());
    CHECK(worst_ratio(r.pair_grads.data(), pair.data(), pair.numel(), rtol, atol) <= 1.0);
    CHECK(r.anchors_without_positives[0] == 0);  // the other view's pixel is always a positive
}

TEST_CASE("Pixel contrast gradients pass the finite-difference check", "[loss][pixel][gradcheck]") {
    Tensor<double> f(Shape{4, 3, 4, 4});
    gcl::Rng rng(8);
    gcl::fill_normal<double>(f.view(), rng);
    gcl::Rng sampler(1);
    const Tensor<index_t> loc = gcl::loss::sample_locations(4, 4, 5, sampler);
    PositivePairs pairs(2);
    const Tensor<index_t> same = Tensor<index_t>::from(Shape{2}, {3, 3});
    const Tensor<index_t> differ = Tensor<index_t>::from(Shape{2}, {1, 2});
    pairs.add_labels(same.cview()).add_labels(differ.cview());
    const ContrastOptions options{.temperature = 0.2, .normalize = true};
    const ContrastResult<double> r = gcl::loss::pixel_contrast<double>(f.cview(), loc.cview(), pairs, options);
    const Tensor<double> maps = gradient_maps(r, loc.cview(), f.shape());
    for (index_t m = 0; m < 2; ++m) {
        const auto objective = [&] {
            return gcl::loss::pixel_contrast<double>(f.cview(), loc.cview(), pairs, options).losses(m);
        };
        const auto result = gcl::testing::check_gradient(objective, f.view(), maps.cview().select(0, m),
                                                         {.step = 1e-6, .rtol = 1e-6, .atol = 1e-9});
        INFO(result.message);
        CHECK(result.passed);
    }
}

TEST_CASE("Sampled locations are distinct, seeded and in range", "[loss][pixel]") {
    gcl::Rng a(5), b(5), c(6);
    const Tensor<index_t> la = gcl::loss::sample_locations(16, 16, 40, a);
    const Tensor<index_t> lb = gcl::loss::sample_locations(16, 16, 40, b);
    const Tensor<index_t> lc = gcl::loss::sample_locations(16, 16, 40, c);
    std::set<index_t> seen;
    int differ = 0;
    for (index_t s = 0; s < 40; ++s) {
        CHECK(la(s) == lb(s));
        CHECK((la(s) >= 0 && la(s) < 256));
        if (s > 0) CHECK(la(s) > la(s - 1));
        seen.insert(la(s));
        differ += la(s) != lc(s);
    }
    CHECK(seen.size() == 40);
    CHECK(differ > 0);
    gcl::Rng d(1);
    CHECK_THROWS_WITH(gcl::loss::sample_locations(2, 2, 5, d), Catch::Contains("cannot sample 5"));
}

TEST_CASE("Pixel contrast with GradFilter: masked pair gradients and location weights", "[loss][pixel]") {
    const Tensor<double> f = loss_fixture<double>("pixel_features");
    const Tensor<index_t> loc = loss_fixture<index_t>("pixel_locations");
    const PositivePairs pairs = pixel_pairs();
    const ContrastResult<double> r = gcl::loss::pixel_contrast<double>(
        f.cview(), loc.cview(), pairs, {.normalize = true, .keep_pair_grads = true});
    const index_t A = r.embeddings.dim(0);
    const Tensor<double> mag = gcl::loss::pair_grad_magnitudes(r);
    REQUIRE(mag.shape() == Shape{A, A});
    CHECK(mag(0, 1) == Approx(std::abs(r.pair_grads(0, 0, 1) + r.pair_grads(1, 0, 1))));

    // Keeping every pair changes nothing; keeping some changes the gradient only through the kept pairs.
    Tensor<std::uint8_t> all(Shape{A, A}, std::uint8_t{1});
    const Tensor<double> same = gcl::loss::contrast_backward<double>(r, gcl::loss::masked_pair_grads(r, all.cview()).cview());
    CHECK(worst_ratio(same.data(), r.grads.data(), same.numel(), 1e-12, 1e-14) <= 1.0);

    const gcl::surgery::FilterResult kept = gcl::surgery::filter_pairs<double>(mag.cview(), {.k = 3});
    const Tensor<double> masked = gcl::loss::masked_pair_grads(r, kept.mask.cview());
    index_t nonzero = 0;
    for (index_t i = 0; i < masked.numel(); ++i) nonzero += masked.data()[i] != 0.0;
    CHECK(nonzero <= 2 * 3 * A);
    const Tensor<double> filtered = gcl::loss::contrast_backward<double>(r, masked.cview());
    CHECK(filtered.shape() == r.grads.shape());

    // Location weights: the norm over channels of a map gradient at each sampled location.
    Tensor<double> gmap(f.shape());
    gcl::loss::scatter_pixel_grads<double>(r.grad_sum.cview(), loc.cview(), gmap.view());
    const Tensor<double> w = gcl::loss::location_magnitudes<double>(gmap.cview(), loc.cview());
    REQUIRE(w.shape() == Shape{A});
    double expected = 0;
    for (index_t c = 0; c < r.grad_sum.dim(1); ++c) expected += r.grad_sum(5, c) * r.grad_sum(5, c);
    CHECK(w(5) == Approx(std::sqrt(expected)));
}

TEST_CASE("Pixel contrast raises gcl::Error on bad input", "[loss][pixel]") {
    const PositivePairs pairs = pixel_pairs();
    Tensor<double> f(Shape{4, 3, 2, 2}, 1.0);
    const Tensor<index_t> bad = Tensor<index_t>::from(Shape{2}, {0, 4});
    CHECK_THROWS_WITH(gcl::loss::pixel_contrast<double>(f.cview(), bad.cview(), pairs), Catch::Contains("location 1 = 4"));
    Tensor<double> three(Shape{3, 3, 2, 2}, 1.0);
    const Tensor<index_t> ok = Tensor<index_t>::from(Shape{2}, {0, 3});
    CHECK_THROWS_WITH(gcl::loss::pixel_contrast<double>(three.cview(), ok.cview(), pairs), Catch::Contains("describe 4"));
    Tensor<double> flat(Shape{4, 3});
    CHECK_THROWS_WITH(gcl::loss::pixel_contrast<double>(flat.cview(), ok.cview(), pairs), Catch::Contains("rank 4"));
}
