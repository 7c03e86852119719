#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "gcl/core/random.hpp"
#include "gcl/train/hausdorff.hpp"
#include "gcl/train/segmentation_metrics.hpp"

using gcl::Shape;
using gcl::Tensor;

TEST_CASE("Dice per class from confusion counts", "[train][metrics]") {
    // prediction / target over 8 pixels, 3 classes
    auto p = Tensor<std::int64_t>::from(Shape{2, 4}, {0, 1, 1, 2, 2, 2, 0, 1});
    auto t = Tensor<std::int64_t>::from(Shape{2, 4}, {0, 1, 2, 2, 2, 0, 0, 1});
    const auto counts = gcl::train::class_counts<std::int64_t>(p.cview(), t.cview(), 3);
    CHECK(counts[1].true_positive == 2);
    CHECK(counts[1].false_positive == 1);
    CHECK(counts[1].false_negative == 0);
    CHECK(counts[2].true_positive == 2);
    CHECK(counts[2].false_positive == 1);
    CHECK(counts[2].false_negative == 1);
    const auto d = gcl::train::dice_per_class<std::int64_t>(p.cview(), t.cview(), 3);
    CHECK(d[0] == Approx(2.0 * 2 / (4 + 0 + 1)));
    CHECK(d[1] == Approx(4.0 / 5.0));
    CHECK(d[2] == Approx(4.0 / 6.0));
    CHECK(gcl::train::mean_foreground_dice(d) == Approx((0.8 + 4.0 / 6.0) / 2));

    // A class absent from both maps takes the empty value.
    const auto d4 = gcl::train::dice_per_class<std::int64_t>(p.cview(), t.cview(), 4, -1.0);
    CHECK(d4[3] == -1.0);

    auto bad = Tensor<std::int64_t>::from(Shape{2, 4}, {0, 1, 1, 7, 2, 2, 0, 1});
    CHECK_THROWS_WITH(gcl::train::dice_per_class<std::int64_t>(bad.cview(), t.cview(), 3), Catch::Contains("label 7"));
    CHECK_THROWS_WITH(gcl::train::dice_per_class<std::int64_t>(p.cview(), Tensor<std::int64_t>(Shape{4, 2}).cview(), 3),
                      Catch::Contains("[2, 4]") && Catch::Contains("[4, 2]"));
}

namespace {
// Brute force: distance from each voxel to the nearest source voxel.
Tensor<double> brute_distance(const Tensor<std::uint8_t>& src, const std::vector<double>& spacing) {
    const Shape& s = src.shape();
    const bool three = s.rank() == 3;
    const gcl::index_t D = three ? s[0] : 1, H = three ? s[1] : s[0], W = three ? s[2] : s[1];
    const double sz = three ? spacing[0] : 1, sy = spacing[three ? 1 : 0], sx = spacing[three ? 2 : 1];
    Tensor<double> out(s);
    for (gcl::index_t i = 0; i < D * H * W; ++i) {
        double best = std::numeric_limits<double>::infinity();
        const gcl::index_t z = i / (H * W), y = (i / W) % H, x = i % W;
        for (gcl::index_t j = 0; j < D * H * W; ++j) {
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
    for (gcl::index_t i = 0; i < m.numel(); ++i) m.data()[i] = rng.uniform() < density;
    return m;
}
}  // namespace

TEST_CASE("distance_transform equals brute force (2D, 3D, anisotropic)", "[train][metrics]") {
    gcl::Rng rng(17);
    for (int trial = 0; trial < 12; ++trial) {
        const bool three = trial % 2 == 1;
        const Shape s = three ? Shape{3 + trial % 3, 7, 9} : Shape{11 + trial, 5 + trial};
        const std::vector<double> spacing = three ? std::vector<double>{2.5, 0.7, 1.3} : std::vector<double>{1.5, 0.6};
        const auto mask = random_mask(s, rng, trial < 6 ? 0.05 : 0.3);
        const auto fast = gcl::train::distance_transform<std::uint8_t>(mask.cview(), spacing);
        const auto slow = brute_distance(mask, spacing);
        for (gcl::index_t i = 0; i < mask.numel(); ++i) {
            if (std::isinf(slow.data()[i]))
                CHECK(std::isinf(fast.data()[i]));
            else
                CHECK(fast.data()[i] == Approx(slow.data()[i]).epsilon(1e-12).margin(1e-9));
        }
    }
    CHECK_THROWS_AS(gcl::train::distance_transform<std::uint8_t>(Tensor<std::uint8_t>(Shape{4}).cview(), {1.0}),
                    gcl::Error);
    CHECK_THROWS_AS(gcl::train::distance_transform<std::uint8_t>(Tensor<std::uint8_t>(Shape{4, 4}).cview(), {1.0, 0.0}),
                    gcl::Error);
}

TEST_CASE("HD95 and ASSD equal a brute-force computation", "[train][metrics]") {
    gcl::Rng rng(5);
    for (int trial = 0; trial < 8; ++trial) {
        const Shape s{16, 12};
        const std::vector<double> spacing{1.25, 0.8};
        Tensor<std::int64_t> a(s), b(s);
        // Two noisy discs with different centres, so distances vary.
        for (gcl::index_t y = 0; y < 16; ++y)
            for (gcl::index_t x = 0; x < 12; ++x) {
                const double ra = std::hypot(y - 7.0, x - 5.0), rb = std::hypot(y - 8.5 - trial * 0.3, x - 6.0);
                a(y, x) = (ra < 4.5 || rng.uniform() < 0.03) ? 2 : 0;
                b(y, x) = (rb < 4.0 + trial * 0.2) ? 2 : 1;
            }
        const auto r = gcl::train::surface_distance<std::int64_t>(a.cview(), b.cview(), 2, spacing);
        REQUIRE(r.has_value());

        Tensor<std::uint8_t> ma(s), mb(s);
        for (gcl::index_t i = 0; i < a.numel(); ++i) {
            ma.data()[i] = a.data()[i] == 2;
            mb.data()[i] = b.data()[i] == 2;
        }
        const auto sa = gcl::train::mask_surface<std::uint8_t>(ma.cview());
        const auto sb = gcl::train::mask_surface<std::uint8_t>(mb.cview());
        const auto da = brute_distance(sa, spacing), db = brute_distance(sb, spacing);
        std::vector<double> all;
        double ab = 0, ba = 0;
        int nab = 0, nba = 0;
        for (gcl::index_t i = 0; i < a.numel(); ++i) {
            if (sa.data()[i]) all.push_back(db.data()[i]), ab += db.data()[i], ++nab;
            if (sb.data()[i]) all.push_back(da.data()[i]), ba += da.data()[i], ++nba;
        }
        std::sort(all.begin(), all.end());
        const double pos = 0.95 * (all.size() - 1);
        const auto lo = static_cast<std::size_t>(pos);
        const double expected = all[lo] + (pos - lo) * (all[std::min(lo + 1, all.size() - 1)] - all[lo]);
        CHECK(r->hd95 == Approx(expected).epsilon(1e-12));
        CHECK(r->hausdorff == Approx(all.back()).epsilon(1e-12));
        CHECK(r->assd == Approx(0.5 * (ab / nab + ba / nba)).epsilon(1e-12));
        CHECK(r->hd95 <= r->hausdorff);
    }
}

TEST_CASE("surface distance of known shapes", "[train][metrics]") {
    // Two filled squares, one shifted by 3 pixels along x (spacing 2 along x): the shifted side
    // walls are 6 units apart; identical masks are 0 apart.
    Tensor<std::int64_t> a(Shape{20, 20}), b(Shape{20, 20});
    for (int y = 5; y < 15; ++y)
        for (int x = 5; x < 15; ++x) a(y, x) = 1, b(y, x + 3) = 1;
    const auto same = gcl::train::surface_distance<std::int64_t>(a.cview(), a.cview(), 1, {1.0, 1.0});
    REQUIRE(same.has_value());
    CHECK(same->hd95 == 0.0);
    CHECK(same->assd == 0.0);
    const auto shifted = gcl::train::surface_distance<std::int64_t>(a.cview(), b.cview(), 1, {1.0, 2.0});
    REQUIRE(shifted.has_value());
    CHECK(shifted->hausdorff == Approx(6.0));
    // An absent label has no surface distance.
    CHECK_FALSE(gcl::train::surface_distance<std::int64_t>(a.cview(), b.cview(), 3, {1.0, 1.0}).has_value());
    CHECK(gcl::train::percentile({1.0, 2.0, 3.0, 4.0}, 50) == Approx(2.5));
    CHECK_THROWS_AS(gcl::train::percentile({}, 50), gcl::Error);
}
