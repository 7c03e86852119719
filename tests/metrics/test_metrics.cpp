// Dice conventions, the distance transform, and every HD95 / ASSD definition against brute force.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include "gcl/core/random.hpp"
#include "gcl/metrics/hausdorff.hpp"
#include "gcl/metrics/segmentation_metrics.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace mt = gcl::metrics;

TEST_CASE("Dice per class from confusion counts", "[metrics]") {
    // prediction / target over 8 pixels, 3 classes
    auto p = Tensor<std::int64_t>::from(Shape{2, 4}, {0, 1, 1, 2, 2, 2, 0, 1});
    auto t = Tensor<std::int64_t>::from(Shape{2, 4}, {0, 1, 2, 2, 2, 0, 0, 1});
    const auto counts = mt::class_counts<std::int64_t>(p.cview(), t.cview(), 3);
    CHECK(counts[1].true_positive == 2);
    CHECK(counts[1].false_positive == 1);
    CHECK(counts[1].false_negative == 0);
    CHECK(counts[2].true_positive == 2);
    CHECK(counts[2].false_positive == 1);
    CHECK(counts[2].false_negative == 1);
    const auto d = mt::dice_per_class<std::int64_t>(p.cview(), t.cview(), 3);
    CHECK(d[0] == Approx(2.0 * 2 / (4 + 0 + 1)));
    CHECK(d[1] == Approx(4.0 / 5.0));
    CHECK(d[2] == Approx(4.0 / 6.0));
    CHECK(mt::mean_foreground_dice(d) == Approx((0.8 + 4.0 / 6.0) / 2));

    auto bad = Tensor<std::int64_t>::from(Shape{2, 4}, {0, 1, 1, 7, 2, 2, 0, 1});
    CHECK_THROWS_WITH(mt::dice_per_class<std::int64_t>(bad.cview(), t.cview(), 3),
                      Catch::Contains("label 7") && Catch::Contains("element 3") && Catch::Contains("prediction"));
    CHECK_THROWS_WITH(mt::dice_per_class<std::int64_t>(p.cview(), bad.cview(), 3), Catch::Contains("target"));
    auto negative = Tensor<std::int64_t>::from(Shape{2, 4}, {0, 1, -1, 2, 2, 2, 0, 1});
    CHECK_THROWS_WITH(mt::dice_per_class<std::int64_t>(negative.cview(), t.cview(), 3), Catch::Contains("label -1"));
    CHECK_THROWS_WITH(mt::dice_per_class<std::int64_t>(p.cview(), Tensor<std::int64_t>(Shape{4, 2}).cview(), 3),
                      Catch::Contains("[2, 4]") && Catch::Contains("[4, 2]"));
    CHECK_THROWS_WITH(mt::dice_per_class<std::int64_t>(p.cview(), t.cview(), 0), Catch::Contains("num_classes"));
}

TEST_CASE("Dice of a class absent from both maps follows the named convention", "[metrics]") {
    auto p = Tensor<std::int64_t>::from(Shape{4}, {0, 1, 1, 0});
    auto t = Tensor<std::int64_t>::from(Shape{4}, {0, 1, 0, 0});
    const auto nnunet = mt::dice_per_class<std::int64_t>(p.cview(), t.cview(), 4);  // the default
    CHECK(std::isnan(nnunet[2]));
    CHECK(std::isnan(nnunet[3]));
    CHECK(nnunet[1] == Approx(2.0 / 3.0));
    // The mean leaves the undefined classes out instead of counting them as perfect.
    CHECK(mt::mean_foreground_dice(nnunet) == Approx(2.0 / 3.0));
    const auto old = mt::dice_per_class<std::int64_t>(p.cview(), t.cview(), 4, mt::DiceConvention::empty_is_one);
    CHECK(old[2] == 1.0);
    CHECK(old[3] == 1.0);
    CHECK(mt::mean_foreground_dice(old) == Approx((2.0 / 3.0 + 2.0) / 3.0));
    // No foreground class with a Dice at all: the mean is undefined, not 0 and not 1.
    CHECK(std::isnan(mt::mean_foreground_dice({0.9, std::nan(""), std::nan("")})));
    CHECK(mt::name(mt::DiceConvention::nnunet) == "nnunet");
    CHECK(mt::name(mt::DiceConvention::empty_is_one) == "empty_is_one");
    // A class present in one map only is a real zero under both conventions.
    CHECK(mt::dice({.true_positive = 0, .false_positive = 3, .false_negative = 0}) == 0.0);
    CHECK(mt::dice({.true_positive = 0, .false_positive = 0, .false_negative = 2}, mt::DiceConvention::empty_is_one) ==
          0.0);
}

namespace {
// Brute force: distance from each voxel to the nearest source voxel.
Tensor<double> brute_distance(const Tensor<std::uint8_t>& src, const std::vector<double>& spacing) {
    const Shape& s = src.shape();
    const bool three = s.rank() == 3;
    const index_t D = three ? s[0] : 1, H = three ? s[1] : s[0], W = three ? s[2] : s[1];
    const double sz = three ? spacing[0] : 1, sy = spacing[three ? 1 : 0], sx = spacing[three ? 2 : 1];
    Tensor<double> out(s);
    for (index_t i = 0; i < D * H * W; ++i) {
        double best = std::numeric_limits<double>::infinity();
        const index_t z = i / (H * W), y = (i / W) % H, x = i % W;
        for (index_t j = 0; j < D * H * W; ++j) {
            if (!src.data()[j]) continue;
            const double dz = (z - j / (H * W)) * sz, dy = (y - (j / W) % H) * sy, dx = (x - j % W) * sx;
            best = std::min(best, std::sqrt(dz * dz + dy * dy + dx * dx));
        }
        out.data()[i] = best;
    }
    return out;
}

Tensor<std::uint8_t> random_mask(const Shape& s, gcl::Rng& rng, double density) {
    Tensor<std::uint8_t> m(s);
    for (index_t i = 0; i < m.numel(); ++i) m.data()[i] = rng.uniform() < density;
    return m;
}

// Surface points of a 2D mask, found the way scipy's binary_erosion (cross structure, border 0)
// does it: a mask pixel whose 4-neighbourhood leaves the mask or the image.
std::vector<std::array<double, 2>> brute_surface(const Tensor<std::int64_t>& labels, std::int64_t label,
                                                 const std::vector<double>& spacing) {
    const index_t H = labels.dim(0), W = labels.dim(1);
    const auto in = [&](index_t y, index_t x) { return y >= 0 && y < H && x >= 0 && x < W && labels(y, x) == label; };
    std::vector<std::array<double, 2>> points;
    for (index_t y = 0; y < H; ++y)
        for (index_t x = 0; x < W; ++x)
            if (in(y, x) && (!in(y - 1, x) || !in(y + 1, x) || !in(y, x - 1) || !in(y, x + 1)))
                points.push_back({static_cast<double>(y) * spacing[0], static_cast<double>(x) * spacing[1]});
    return points;
}

// Directed distances: for each point of `from`, the distance to the nearest point of `to`.
std::vector<double> directed(const std::vector<std::array<double, 2>>& from, const std::vector<std::array<double, 2>>& to) {
    std::vector<double> out;
    for (const auto& p : from) {
        double best = std::numeric_limits<double>::infinity();
        for (const auto& q : to) best = std::min(best, std::hypot(p[0] - q[0], p[1] - q[1]));
        out.push_back(best);
    }
    return out;
}

// numpy.percentile(values, q) with its default linear interpolation.
double numpy_percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(pos);
    return v[lo] + (pos - static_cast<double>(lo)) * (v[std::min(lo + 1, v.size() - 1)] - v[lo]);
}

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
}
}  // namespace

TEST_CASE("distance_transform equals brute force (2D, 3D, anisotropic)", "[metrics]") {
    gcl::Rng rng(17);
    for (int trial = 0; trial < 12; ++trial) {
        const bool three = trial % 2 == 1;
        const Shape s = three ? Shape{3 + trial % 3, 7, 9} : Shape{11 + trial, 5 + trial};
        const std::vector<double> spacing = three ? std::vector<double>{2.5, 0.7, 1.3} : std::vector<double>{1.5, 0.6};
        const auto mask = random_mask(s, rng, trial < 6 ? 0.05 : 0.3);
        const auto fast = mt::distance_transform<std::uint8_t>(mask.cview(), spacing);
        const auto slow = brute_distance(mask, spacing);
        for (index_t i = 0; i < mask.numel(); ++i) {
            if (std::isinf(slow.data()[i]))
                CHECK(std::isinf(fast.data()[i]));
            else
                CHECK(fast.data()[i] == Approx(slow.data()[i]).epsilon(1e-12).margin(1e-9));
        }
    }
    CHECK_THROWS_AS(mt::distance_transform<std::uint8_t>(Tensor<std::uint8_t>(Shape{4}).cview(), {1.0}), gcl::Error);
    CHECK_THROWS_AS(mt::distance_transform<std::uint8_t>(Tensor<std::uint8_t>(Shape{4, 4}).cview(), {1.0, 0.0}),
                    gcl::Error);
}

TEST_CASE("every HD95 and ASSD definition equals its brute-force definition", "[metrics]") {
    gcl::Rng rng(5);
    double largest_hd95_gap = 0, largest_assd_gap = 0;
    for (int trial = 0; trial < 10; ++trial) {
        const Shape s{16, 12};
        const std::vector<double> spacing{1.25, 0.8};
        Tensor<std::int64_t> a(s), b(s);
        // Two noisy discs with different centres and sizes; stray pixels make the directions differ.
        for (index_t y = 0; y < 16; ++y)
            for (index_t x = 0; x < 12; ++x) {
                const double ra = std::hypot(y - 7.0, x - 5.0), rb = std::hypot(y - 8.5 - trial * 0.3, x - 6.0);
                a(y, x) = (ra < 4.5 - 0.2 * trial || rng.uniform() < 0.04) ? 2 : 0;
                b(y, x) = (rb < 3.0 + trial * 0.2) ? 2 : 1;
            }
        const auto r = mt::surface_distance<std::int64_t>(a.cview(), b.cview(), 2, spacing);
        REQUIRE(r.has_value());

        const auto sa = brute_surface(a, 2, spacing), sb = brute_surface(b, 2, spacing);
        const std::vector<double> ab = directed(sa, sb), ba = directed(sb, sa);
        std::vector<double> pooled = ab;
        pooled.insert(pooled.end(), ba.begin(), ba.end());
        // medpy.metric.binary.hd95: numpy.percentile(numpy.hstack((hd1, hd2)), 95)
        CHECK(r->hd95_medpy == Approx(numpy_percentile(pooled, 95)).epsilon(1e-12));
        CHECK(r->hd95(mt::Hd95Definition::medpy) == r->hd95_medpy);
        // MONAI compute_hausdorff_distance(percentile=95, directed=False): max of the directed ones
        CHECK(r->hd95_monai == Approx(std::max(numpy_percentile(ab, 95), numpy_percentile(ba, 95))).epsilon(1e-12));
        CHECK(r->hd95(mt::Hd95Definition::monai) == r->hd95_monai);
        // MedPy 0.5 assd / MONAI symmetric ASD: the mean of all distances pooled
        CHECK(r->assd_pooled == Approx(mean(pooled)).epsilon(1e-12));
        CHECK(r->assd(mt::AssdDefinition::pooled) == r->assd_pooled);
        // MedPy 0.4 assd: the mean of the two directed means
        CHECK(r->assd_mean_of_directed == Approx(0.5 * (mean(ab) + mean(ba))).epsilon(1e-12));
        CHECK(r->assd(mt::AssdDefinition::mean_of_directed) == r->assd_mean_of_directed);
        CHECK(r->hausdorff == Approx(*std::max_element(pooled.begin(), pooled.end())).epsilon(1e-12));
        CHECK(r->hd95_medpy <= r->hd95_monai + 1e-12);  // the pooled percentile never exceeds the larger directed one
        CHECK(r->hd95_monai <= r->hausdorff + 1e-12);
        largest_hd95_gap = std::max(largest_hd95_gap, r->hd95_monai / r->hd95_medpy - 1);
        largest_assd_gap = std::max(largest_assd_gap, std::abs(r->assd_pooled / r->assd_mean_of_directed - 1));
    }
    // The definitions are not interchangeable on these masks.
    CHECK(largest_hd95_gap > 0.05);
    CHECK(largest_assd_gap > 0.05);
}

TEST_CASE("surface distance of known shapes", "[metrics]") {
    // Two filled squares, one shifted by 3 pixels along x (spacing 2 along x): the shifted side
    // walls are 6 units apart; identical masks are 0 apart.
    Tensor<std::int64_t> a(Shape{20, 20}), b(Shape{20, 20});
    for (int y = 5; y < 15; ++y)
        for (int x = 5; x < 15; ++x) a(y, x) = 1, b(y, x + 3) = 1;
    const auto same = mt::surface_distance<std::int64_t>(a.cview(), a.cview(), 1, {1.0, 1.0});
    REQUIRE(same.has_value());
    CHECK(same->hd95() == 0.0);
    CHECK(same->hd95(mt::Hd95Definition::monai) == 0.0);
    CHECK(same->assd() == 0.0);
    const auto shifted = mt::surface_distance<std::int64_t>(a.cview(), b.cview(), 1, {1.0, 2.0});
    REQUIRE(shifted.has_value());
    CHECK(shifted->hausdorff == Approx(6.0));
    // An absent label has no surface distance.
    CHECK_FALSE(mt::surface_distance<std::int64_t>(a.cview(), b.cview(), 3, {1.0, 1.0}).has_value());
    CHECK(mt::percentile({1.0, 2.0, 3.0, 4.0}, 50) == Approx(2.5));
    CHECK_THROWS_AS(mt::percentile({}, 50), gcl::Error);
    CHECK_THROWS_WITH(mt::surface_distance<std::int64_t>(a.cview(), Tensor<std::int64_t>(Shape{20, 19}).cview(), 1,
                                                         {1.0, 1.0}),
                      Catch::Contains("surface_distance") && Catch::Contains("[20, 19]"));
}
