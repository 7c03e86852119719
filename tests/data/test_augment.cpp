#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <set>

#include "gcl/data/augment.hpp"
#include "gcl/data/slice.hpp"

namespace gd = gcl::data;
using gcl::index_t;
using gcl::Rng;
using gcl::Shape;
using gcl::Tensor;

namespace {

// A label map of blobs and an image whose value is the label, so a warp that treats them alike
// can be checked pixel by pixel.
struct Pair {
    Tensor<float> image;
    Tensor<std::uint8_t> label;
};

Pair blobs(index_t h, index_t w) {
    Pair p{Tensor<float>(Shape{h, w}), Tensor<std::uint8_t>(Shape{h, w})};
    for (index_t r = 0; r < h; ++r)
        for (index_t c = 0; c < w; ++c) {
            const double d1 = std::hypot(r - 0.4 * h, c - 0.35 * w), d2 = std::hypot(r - 0.6 * h, c - 0.7 * w);
            const std::uint8_t k = d1 < 0.15 * h ? 3 : d1 < 0.25 * h ? 2 : d2 < 0.2 * h ? 1 : 0;
            p.label(r, c) = k;
            p.image(r, c) = static_cast<float>(k);
        }
    return p;
}

gd::AugmentOptions geometric_only() {
    gd::AugmentOptions o;
    o.gamma_probability = o.contrast_probability = o.noise_probability = 0.0;
    return o;
}

}  // namespace

TEST_CASE("augmentation is seeded: same generator state, same result", "[data][augment]") {
    const Pair p = blobs(48, 40);
    gd::AugmentOptions o;
    o.height = o.width = 32;
    o.noise_probability = 1.0;
    Rng a(3), b(3), c(4);
    const auto x = gd::augment(p.image.cview(), p.label.cview(), o, a);
    const auto y = gd::augment(p.image.cview(), p.label.cview(), o, b);
    const auto z = gd::augment(p.image.cview(), p.label.cview(), o, c);
    CHECK(a.offset() == b.offset());
    CHECK(std::memcmp(x.image.data(), y.image.data(), sizeof(float) * 32 * 32) == 0);
    CHECK(std::memcmp(x.label.data(), y.label.data(), 32 * 32) == 0);
    CHECK(std::memcmp(x.image.data(), z.image.data(), sizeof(float) * 32 * 32) != 0);
    // Successive draws from one generator differ.
    const auto w = gd::augment(p.image.cview(), p.label.cview(), o, a);
    CHECK(std::memcmp(x.image.data(), w.image.data(), sizeof(float) * 32 * 32) != 0);
}

TEST_CASE("flips and integer crops move image and label together exactly", "[data][augment]") {
    const Pair p = blobs(30, 36);
    gd::AugmentOptions o = geometric_only();
    o.max_rotation = 0;
    o.min_scale = o.max_scale = 1.0;
    o.flip_horizontal = 1.0;
    o.flip_vertical = 1.0;
    Rng rng(9);
    const auto a = gd::augment(p.image.cview(), p.label.cview(), o, rng);
    for (index_t r = 0; r < 30; ++r)
        for (index_t c = 0; c < 36; ++c) {
            CHECK(a.label(r, c) == p.label(29 - r, 35 - c));
            CHECK(a.image(r, c) == p.image(29 - r, 35 - c));
        }
    // Random crops: the output is some window of the input.
    o.flip_horizontal = o.flip_vertical = 0.0;
    o.height = 20;
    o.width = 24;
    std::set<std::pair<index_t, index_t>> offsets;
    for (int t = 0; t < 40; ++t) {
        const gd::AugmentDraw d = gd::draw_augment(o, 30, 36, 20, 24, rng);
        CHECK(d.offset_r >= 0);
        CHECK(d.offset_r <= 10);
        CHECK(d.offset_c <= 12);
        offsets.insert({static_cast<index_t>(d.offset_r), static_cast<index_t>(d.offset_c)});
        Rng noise(1);
        const auto c = gd::apply_augment(d, p.image.cview(), p.label.cview(), 20, 24, 0.0f, noise);
        for (index_t r = 0; r < 20; ++r)
            for (index_t q = 0; q < 24; ++q)
                CHECK(c.label(r, q) == p.label(r + static_cast<index_t>(d.offset_r), q + static_cast<index_t>(d.offset_c)));
    }
    CHECK(offsets.size() > 20);
    // Padding: a smaller input lands somewhere inside the output, the rest is background.
    o.height = o.width = 50;
    const auto padded = gd::augment(p.image.cview(), p.label.cview(), o, rng);
    index_t nonzero = 0;
    for (index_t i = 0; i < padded.label.numel(); ++i) nonzero += padded.label.data()[i] != 0;
    index_t original = 0;
    for (index_t i = 0; i < p.label.numel(); ++i) original += p.label.data()[i] != 0;
    CHECK(nonzero == original);
}

TEST_CASE("rotation and scale warp labels by nearest neighbour, images bilinearly", "[data][augment]") {
    const Pair p = blobs(64, 64);
    gd::AugmentOptions o = geometric_only();
    o.max_rotation = 40;
    o.min_scale = 0.7;
    o.max_scale = 1.4;
    Rng rng(21);
    for (int t = 0; t < 10; ++t) {
        const auto a = gd::augment(p.image.cview(), p.label.cview(), o, rng);
        index_t agree = 0, fractional = 0;
        for (index_t i = 0; i < a.label.numel(); ++i) {
            CHECK(a.label.data()[i] < 4);  // never a blend of classes
            const float v = a.image.data()[i];
            agree += std::abs(v - static_cast<float>(a.label.data()[i])) < 0.5f;
            fractional += v != std::round(v);
        }
        CHECK(agree > a.label.numel() * 95 / 100);
        CHECK(fractional > 0);  // bilinear blends at the borders of the blobs
    }
    // Zooming in enlarges the anatomy.
    o.max_rotation = 0;
    o.min_scale = o.max_scale = 1.5;
    const auto zoomed = gd::augment(p.image.cview(), p.label.cview(), o, rng);
    index_t before = 0, after = 0;
    for (index_t i = 0; i < 64 * 64; ++i) before += p.label.data()[i] == 3, after += zoomed.label.data()[i] == 3;
    CHECK(static_cast<double>(after) / static_cast<double>(before) == Approx(2.25).epsilon(0.15));
}

TEST_CASE("intensity augmentation: gamma keeps the range, contrast keeps the mean, noise has its sigma",
          "[data][augment]") {
    Tensor<float> img(Shape{64, 64});
    for (index_t i = 0; i < img.numel(); ++i) img.data()[i] = static_cast<float>(i % 97) / 96.0f;
    gd::AugmentDraw d;
    d.gamma = true;
    d.gamma_value = 2.0;
    Rng rng(1);
    auto g = gd::apply_augment(d, img.cview(), {}, 64, 64, 0.0f, rng);
    CHECK(*std::min_element(g.image.data(), g.image.data() + 4096) == Approx(0.0f).margin(1e-6));
    CHECK(*std::max_element(g.image.data(), g.image.data() + 4096) == Approx(1.0f));
    CHECK(g.image.data()[48] == Approx(0.25f));  // (48 / 96)^2
    CHECK_FALSE(gd::has_elements(g.label));

    d = gd::AugmentDraw{};
    d.contrast = true;
    d.contrast_value = 1.6;
    auto c = gd::apply_augment(d, img.cview(), {}, 64, 64, 0.0f, rng);
    double m0 = 0, m1 = 0, v0 = 0, v1 = 0;
    for (index_t i = 0; i < 4096; ++i) m0 += img.data()[i] / 4096.0, m1 += c.image.data()[i] / 4096.0;
    for (index_t i = 0; i < 4096; ++i)
        v0 += std::pow(img.data()[i] - m0, 2) / 4096.0, v1 += std::pow(c.image.data()[i] - m1, 2) / 4096.0;
    CHECK(m1 == Approx(m0).epsilon(1e-5));
    CHECK(std::sqrt(v1 / v0) == Approx(1.6).epsilon(1e-4));

    d = gd::AugmentDraw{};
    d.noise = true;
    d.noise_sigma = 0.1;
    auto n = gd::apply_augment(d, img.cview(), {}, 64, 64, 0.0f, rng);
    double s = 0, s2 = 0;
    for (index_t i = 0; i < 4096; ++i) {
        const double e = n.image.data()[i] - img.data()[i];
        s += e / 4096.0;
        s2 += e * e / 4096.0;
    }
    CHECK(s == Approx(0.0).margin(0.01));
    CHECK(std::sqrt(s2 - s * s) == Approx(0.1).epsilon(0.05));
}

TEST_CASE("augmentation rejects invalid options and images", "[data][augment]") {
    const Pair p = blobs(16, 16);
    Rng rng(0);
    auto bad = [&](auto edit) {
        gd::AugmentOptions o;
        edit(o);
        CHECK_THROWS_AS(gd::augment(p.image.cview(), p.label.cview(), o, rng), gcl::Error);
    };
    bad([](gd::AugmentOptions& o) { o.flip_horizontal = 1.5; });
    bad([](gd::AugmentOptions& o) { o.min_scale = 0.0; });
    bad([](gd::AugmentOptions& o) { o.min_scale = 1.2, o.max_scale = 1.1; });
    bad([](gd::AugmentOptions& o) { o.min_gamma = -1.0; });
    bad([](gd::AugmentOptions& o) { o.max_rotation = 400; });
    bad([](gd::AugmentOptions& o) { o.max_noise = -0.1; });
    bad([](gd::AugmentOptions& o) { o.height = -4; });
    const Tensor<std::uint8_t> wrong(Shape{16, 15});
    CHECK_THROWS_AS(gd::augment(p.image.cview(), wrong.cview(), gd::AugmentOptions{}, rng), gcl::Error);
    CHECK_THROWS_AS(gd::augment(Tensor<float>(Shape{0, 4}).cview(), {}, gd::AugmentOptions{}, rng), gcl::Error);
}
