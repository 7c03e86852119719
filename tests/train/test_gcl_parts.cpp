// The parts of GCL's objective, each on its own: pixel sampling, the pixel filter policy and the
// label spaces (no model: this file stays light to compile).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/loss/supcon.hpp"
#include "gcl/ops/normalize.hpp"
#include "gcl/testing/gradcheck.hpp"
#include "gcl/testing/projection.hpp"
#include "gcl/train/gradient_rows.hpp"
#include "gcl/train/label_space.hpp"
#include "gcl/train/pixel_filter_policy.hpp"
#include "gcl/train/pixel_sampling.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace tr = gcl::train;

// The contrasts run on the cpu (tests/cuda/test_gcl_parts_cuda.cu holds cuda to what it lacks).

namespace {
// Meta labels [K, 2B] of B images (both views share them): label k of image i is (i >> k) & 1.
Tensor<std::int64_t> binary_meta(index_t K, index_t B) {
    Tensor<std::int64_t> meta(Shape{K, 2 * B});
    for (index_t k = 0; k < K; ++k)
        for (index_t i = 0; i < B; ++i) meta(k, i) = meta(k, i + B) = (i >> k) & 1;
    return meta;
}
}  // namespace

TEST_CASE("PixelSampling draws distinct locations from the seed and the step", "[train][gcl][parts]") {
    const tr::PixelSampling sampling{.samples = 10, .seed = 7};
    const Tensor<index_t> a = sampling.locations(6, 5, 3);
    REQUIRE(a.numel() == 10);
    std::set<index_t> seen(a.data(), a.data() + a.numel());
    CHECK(seen.size() == 10);
    CHECK(*seen.begin() >= 0);
    CHECK(*seen.rbegin() < 30);
    const Tensor<index_t> again = sampling.locations(6, 5, 3);
    CHECK(std::vector<index_t>(a.data(), a.data() + 10) == std::vector<index_t>(again.data(), again.data() + 10));
    const Tensor<index_t> other_step = sampling.locations(6, 5, 4);
    const Tensor<index_t> other_seed = tr::PixelSampling{.samples = 10, .seed = 8}.locations(6, 5, 3);
    CHECK(std::vector<index_t>(a.data(), a.data() + 10) != std::vector<index_t>(other_step.data(), other_step.data() + 10));
    CHECK(std::vector<index_t>(a.data(), a.data() + 10) != std::vector<index_t>(other_seed.data(), other_seed.data() + 10));
    // A map smaller than S: every location once.
    const Tensor<index_t> all = sampling.locations(3, 3, 0);
    CHECK(all.numel() == 9);
}

TEST_CASE("DensePixelGradient scatters the sampled pixels and keeps its map", "[train][gcl][parts]") {
    const index_t N = 2, C = 3, h = 4, w = 4;
    Tensor<index_t> locations(Shape{2});
    locations(0) = 5;
    locations(1) = 14;
    Tensor<double> sampled(Shape{N * 2, C});
    for (index_t i = 0; i < sampled.numel(); ++i) sampled.data()[i] = static_cast<double>(i + 1);
    tr::DensePixelGradient<double> dense;
    gcl::ConstView<double> d = dense(sampled.cview(), locations.cview(), Shape{N, C, h, w});
    REQUIRE(d.shape() == Shape{N, C, h, w});
    double total = 0;
    for (index_t n = 0; n < N; ++n)
        for (index_t c = 0; c < C; ++c) {
            CHECK(d(n, c, 1, 1) == sampled(n * 2 + 0, c));  // location 5 = (1, 1)
            CHECK(d(n, c, 3, 2) == sampled(n * 2 + 1, c));  // location 14 = (3, 2)
            for (index_t p = 0; p < h * w; ++p) total += d(n, c, p / w, p % w);
        }
    double expected = 0;
    for (index_t i = 0; i < sampled.numel(); ++i) expected += sampled.data()[i];
    CHECK(total == expected);
    // A second call of the same shape zeroes the map again and allocates nothing.
    Tensor<double> zeros(Shape{N * 2, C});
    const std::uint64_t before = gcl::host_allocation_count();
    d = dense(zeros.cview(), locations.cview(), Shape{N, C, h, w});
    CHECK(gcl::host_allocation_count() == before);
    for (index_t i = 0; i < d.numel(); ++i) CHECK(d.data()[i] == 0);
}

TEST_CASE("PixelFilterPolicy keeps whole anchors, top pairs, or everything", "[train][gcl][parts]") {
    gcl::Rng rng(11);
    const index_t A = 12, C = 4;
    const Tensor<double> z = gcl::testing::random_tensor<double>(Shape{A, C}, rng);
    const Tensor<std::int64_t> labels = binary_meta(2, A / 2);
    const gcl::loss::ContrastResult<double> contrast =
        gcl::loss::supcon<double>(z.cview(), labels.cview(), {.temperature = 0.5, .normalize = true, .keep_pair_grads = true});
    const Tensor<double> no_guidance;

    SECTION("none: the contrast's own gradients") {
        tr::GclStepReport report;
        const tr::PixelFilterPolicy policy{.filter = tr::PixelFilter::none};
        CHECK_FALSE(policy.needs_pair_grads());
        const Tensor<double> g = policy.gradients(contrast, no_guidance, report);
        REQUIRE(g.shape() == contrast.grads.shape());
        for (index_t i = 0; i < g.numel(); ++i) CHECK(g.data()[i] == contrast.grads.data()[i]);
        CHECK(report.kept_pairs == 0);
    }
    SECTION("anchors: the top anchor_ratio of the anchors, each with all its pairs") {
        tr::GclStepReport report;
        const tr::PixelFilterPolicy policy{.filter = tr::PixelFilter::anchors, .anchor_ratio = 0.25};
        const Tensor<std::uint8_t> mask = policy.mask(contrast, no_guidance, report);
        CHECK(report.candidate_pairs == A * A);
        CHECK(report.kept_pairs == 3 * A);
        index_t kept_rows = 0;
        for (index_t i = 0; i < A; ++i) {
            index_t row = 0;
            for (index_t a = 0; a < A; ++a) row += mask(i, a);
            CHECK((row == 0 || row == A));
            kept_rows += row == A;
        }
        CHECK(kept_rows == 3);
        // The kept anchors are those with the largest summed pair-gradient magnitudes.
        const Tensor<double> magnitudes = gcl::loss::pair_grad_magnitudes(contrast);
        double smallest_kept = INFINITY, largest_dropped = 0;
        for (index_t i = 0; i < A; ++i) {
            double s = 0;
            for (index_t a = 0; a < A; ++a) s += magnitudes(i, a);
            if (mask(i, 0)) smallest_kept = std::min(smallest_kept, s);
            else largest_dropped = std::max(largest_dropped, s);
        }
        CHECK(smallest_kept >= largest_dropped);
        // Guidance that zeroes every anchor but the last keeps the last.
        Tensor<double> guidance(Shape{A});
        guidance(A - 1) = 1;
        tr::GclStepReport guided_report;
        const tr::PixelFilterPolicy one{.filter = tr::PixelFilter::anchors, .anchor_ratio = 1.0 / A};
        const Tensor<std::uint8_t> guided = one.mask(contrast, guidance, guided_report);
        CHECK(guided(A - 1, 0) == 1);
        CHECK(guided_report.kept_pairs == A);
    }
    SECTION("pairs: filter_options on the pair magnitudes") {
        tr::GclStepReport report;
        const tr::PixelFilterPolicy policy{
            .filter = tr::PixelFilter::pairs,
            .filter_options = {.rule = gcl::surgery::FilterRule::top_k_per_anchor, .k = 3}};
        const Tensor<std::uint8_t> mask = policy.mask(contrast, no_guidance, report);
        CHECK(report.kept_pairs == 3 * A);
        for (index_t i = 0; i < A; ++i) {
            index_t row = 0;
            for (index_t a = 0; a < A; ++a) row += mask(i, a);
            CHECK(row == 3);
        }
        const Tensor<double> g = policy.gradients(contrast, no_guidance, report);
        CHECK(g.shape() == contrast.grads.shape());
    }
}

TEST_CASE("LabelSpaces: per_label contrasts part m for label m, shared the whole embedding", "[train][gcl][parts]") {
    gcl::Rng rng(5);
    const index_t K = 2, B = 4, N = 2 * B, d = 3;
    Tensor<double> z = gcl::testing::random_tensor<double>(Shape{N, K * d}, rng);
    const Tensor<std::int64_t> meta = binary_meta(K, B);

    SECTION("per_label") {
        const tr::LabelSpaces spaces{.space = tr::LabelSpace::per_label, .temperature = 0.3};
        tr::GclStepReport report;
        const tr::PerLabelGradients<double> r = spaces.image_contrast<double>(z.cview(), meta.cview(), report);
        REQUIRE(r.grads.shape() == Shape{K, N, K * d});
        for (index_t m = 0; m < K; ++m) {
            // Label m's loss is SupCon on its own re-normalised part, and its gradient stays in that part.
            const Tensor<double> part = Tensor<double>::copy_of(z.cview().narrow(1, m * d, d));
            const Tensor<std::int64_t> row = Tensor<std::int64_t>::copy_of(meta.cview().narrow(0, m, 1));
            const auto alone = gcl::loss::supcon<double>(part.cview(), row.cview(), {.temperature = 0.3, .normalize = true});
            CHECK(r.losses[static_cast<std::size_t>(m)] == Approx(alone.losses(0)).epsilon(1e-12));
            for (index_t n = 0; n < N; ++n)
                for (index_t j = 0; j < K * d; ++j)
                    if (j / d != m) CHECK(r.grads(m, n, j) == 0);
        }
        CHECK(report.image_losses == r.losses);
        CHECK(report.total == Approx(r.losses[0] + r.losses[1]));
        // grad_sum is the gradient of the summed losses (in double).
        auto objective = [&] {
            tr::GclStepReport ignored;
            const auto again = spaces.image_contrast<double>(z.cview(), meta.cview(), ignored);
            return again.losses[0] + again.losses[1];
        };
        const auto check = gcl::testing::check_gradient(objective, z.view(), r.grad_sum.cview());
        CHECK(check.passed);
        INFO(check.message);
    }
    SECTION("shared") {
        const tr::LabelSpaces spaces{.space = tr::LabelSpace::shared, .temperature = 0.3};
        tr::GclStepReport report;
        const Tensor<double> unit = [&] {
            Tensor<double> u(z.shape());
            gcl::ops::l2_normalize_forward(z.cview(), u.view(), 1);
            return u;
        }();
        const tr::PerLabelGradients<double> r = spaces.image_contrast<double>(unit.cview(), meta.cview(), report);
        const auto whole = gcl::loss::supcon<double>(unit.cview(), meta.cview(), {.temperature = 0.3, .normalize = false});
        for (index_t m = 0; m < K; ++m) CHECK(r.losses[static_cast<std::size_t>(m)] == static_cast<double>(whole.losses(m)));
        for (index_t i = 0; i < r.grads.numel(); ++i) CHECK(r.grads.data()[i] == whole.grads.data()[i]);
    }
    SECTION("a width that K does not divide is refused, naming the width") {
        const tr::LabelSpaces spaces{.space = tr::LabelSpace::per_label};
        const Tensor<double> odd = gcl::testing::random_tensor<double>(Shape{N, 5}, rng);
        tr::GclStepReport report;
        CHECK_THROWS_WITH(spaces.image_contrast<double>(odd.cview(), meta.cview(), report),
                          Catch::Contains("image embedding width (5)") && Catch::Contains("meta labels (2)"));
    }
}

TEST_CASE("The encoder-output level's rows: per sample, per location, back to the map, their Gram matrix",
          "[train][gcl][parts]") {
    gcl::Rng rng(9);
    const index_t N = 3, K = 2, C = 4, h = 2, w = 3, HW = h * w, F = C * HW;
    Tensor<double> by_sample(Shape{N, K, F}), by_location(Shape{N * HW, K, C});
    std::vector<Tensor<double>> per_label;
    for (index_t m = 0; m < K; ++m) {
        per_label.push_back(gcl::testing::random_tensor<double>(Shape{N, C, h, w}, rng));
        tr::label_rows_by_sample<double, gcl::cpu>(per_label[m].cview(), m, by_sample.view());
        tr::label_rows_by_location<double, gcl::cpu>(per_label[m].cview(), m, by_location.view());
    }
    for (index_t m = 0; m < K; ++m)
        for (index_t n = 0; n < N; ++n)
            for (index_t c = 0; c < C; ++c)
                for (index_t p = 0; p < HW; ++p) {
                    CHECK(by_sample(n, m, c * HW + p) == per_label[m](n, c, p / w, p % w));
                    CHECK(by_location(n * HW + p, m, c) == per_label[m](n, c, p / w, p % w));
                }

    const Tensor<double> rows = gcl::testing::random_tensor<double>(Shape{N * HW, C}, rng);
    Tensor<double> map = gcl::testing::random_tensor<double>(Shape{N, C, h, w}, rng), scratch(Shape{N, C, h, w});
    const Tensor<double> before = map;
    tr::add_location_rows<double, gcl::cpu>(rows.cview(), map.view(), scratch.view());
    for (index_t n = 0; n < N; ++n)
        for (index_t c = 0; c < C; ++c)
            for (index_t p = 0; p < HW; ++p)
                CHECK(map(n, c, p / w, p % w) == before(n, c, p / w, p % w) + rows(n * HW + p, c));

    // Dot products of float rows in double (a float result would be 1e-7 away).
    const Tensor<float> g = gcl::testing::random_tensor<float>(Shape{3, 700}, rng);
    const std::vector<double> gram = tr::row_gram<float, gcl::cpu>(g.cview());
    REQUIRE(gram.size() == 9);
    for (index_t i = 0; i < 3; ++i)
        for (index_t j = 0; j < 3; ++j) {
            double q = 0;
            for (index_t e = 0; e < 700; ++e) q += static_cast<double>(g(i, e)) * static_cast<double>(g(j, e));
            CHECK(gram[static_cast<std::size_t>(i * 3 + j)] == Approx(q).epsilon(1e-13));
        }
}
