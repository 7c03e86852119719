#include <catch2/catch.hpp>

#include "gcl/data/intensity.hpp"
#include "gcl/data/resample.hpp"

namespace gd = gcl::data;
using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;

TEST_CASE("warps sample bilinearly for images and by nearest neighbour for labels", "[data][resample]") {
    Tensor<float> img(Shape{4, 5});
    Tensor<std::uint8_t> lab(Shape{4, 5});
    for (index_t r = 0; r < 4; ++r)
        for (index_t c = 0; c < 5; ++c) {
            img(r, c) = static_cast<float>(10 * r + c);
            lab(r, c) = static_cast<std::uint8_t>((r + c) % 4);
        }
    // Identity.
    Tensor<float> out(Shape{4, 5});
    gd::warp_image(img.cview(), out.view(), gd::Warp2D{});
    for (index_t i = 0; i < 20; ++i) CHECK(out.data()[i] == img.data()[i]);
    // Half-pixel shift: bilinear averages, a linear ramp stays linear.
    gd::Warp2D shift;
    shift.t = {0.5, 0.5};
    gd::warp_image(img.cview(), out.view(), shift);
    CHECK(out(1, 1) == Approx(16.5));
    CHECK(out(3, 4) == Approx(34.0));  // clamped within half a pixel of the border
    // Far outside reads the fill value.
    shift.t = {10.0, 0.0};
    gd::warp_image(img.cview(), out.view(), shift, -1.0f);
    CHECK(out(0, 0) == -1.0f);
    // A 90 degree rotation moves labels exactly.
    Tensor<std::uint8_t> rot(Shape{5, 4});
    gd::Warp2D quarter;
    quarter.m = {0, 1, -1, 0};  // in_row = c, in_col = 4 - r: a (5, 4) output of a (4, 5) input
    quarter.t = {0, 4};
    gd::warp_label<std::uint8_t>(lab.cview(), rot.view(), quarter);
    for (index_t r = 0; r < 5; ++r)
        for (index_t c = 0; c < 4; ++c) CHECK(rot(r, c) == lab(c, 4 - r));
    CHECK_THROWS_AS(gd::warp_image(img.cview().flat(), out.view(), gd::Warp2D{}), gcl::Error);
}

TEST_CASE("resampling to another spacing keeps the field of view", "[data][resample]") {
    Tensor<float> ramp(Shape{10, 20});
    for (index_t r = 0; r < 10; ++r)
        for (index_t c = 0; c < 20; ++c) ramp(r, c) = static_cast<float>(c);
    const Tensor<float> half = gd::resample_image(ramp.cview(), {1.0, 1.0}, {2.0, 2.0});
    REQUIRE(half.shape() == Shape{5, 10});
    // Output pixel c covers input pixels 2c and 2c + 1: its centre is at 2c + 0.5.
    for (index_t c = 0; c < 10; ++c) CHECK(half(2, c) == Approx(2.0 * static_cast<double>(c) + 0.5));
    const Tensor<float> twice = gd::resample_image(ramp.cview(), {1.0, 1.0}, {0.5, 0.5});
    REQUIRE(twice.shape() == Shape{20, 40});
    CHECK(twice(0, 21) == Approx(10.25));
    // Anisotropic spacing: only the row axis changes here.
    CHECK(gd::resample_image(ramp.cview(), {2.0, 1.0}, {1.0, 1.0}).shape() == Shape{20, 20});

    Tensor<std::uint8_t> lab(Shape{10, 10});
    for (index_t r = 0; r < 10; ++r)
        for (index_t c = 0; c < 10; ++c) lab(r, c) = static_cast<std::uint8_t>(c < 5 ? 1 : 3);
    const Tensor<std::uint8_t> up = gd::resample_label<std::uint8_t>(lab.cview(), {1.0, 1.0}, {0.25, 0.25});
    REQUIRE(up.shape() == Shape{40, 40});
    for (index_t c = 0; c < 40; ++c) CHECK(up(7, c) == (c < 20 ? 1 : 3));
    CHECK_THROWS_AS(gd::resample_image(ramp.cview(), {0.0, 1.0}, {1.0, 1.0}), gcl::Error);
}

TEST_CASE("crop_or_pad centres, and padding then cropping restores the input", "[data][resample]") {
    Tensor<int> t(Shape{5, 6});
    for (index_t i = 0; i < 30; ++i) t.data()[i] = static_cast<int>(i + 1);
    const Tensor<int> padded = gd::crop_or_pad<int>(t.cview(), 9, 8, -7);
    CHECK(padded(0, 0) == -7);
    CHECK(padded(2, 1) == t(0, 0));
    CHECK(padded(6, 6) == t(4, 5));
    const Tensor<int> back = gd::crop_or_pad<int>(padded.cview(), 5, 6);
    for (index_t i = 0; i < 30; ++i) CHECK(back.data()[i] == t.data()[i]);
    const Tensor<int> mixed = gd::crop_or_pad<int>(t.cview(), 3, 10);
    CHECK(mixed(0, 2) == t(1, 0));
    CHECK(mixed(0, 0) == 0);
    CHECK_THROWS_AS(gd::crop_or_pad<int>(t.cview(), 0, 3), gcl::Error);
}

TEST_CASE("intensity normalisation methods", "[data][intensity]") {
    Tensor<float> t(Shape{101});
    for (index_t i = 0; i <= 100; ++i) t(i) = static_cast<float>(i * 2);  // 0..200
    CHECK(gd::percentile(std::vector<float>(t.data(), t.data() + 101), 50.0) == 100.0);
    CHECK(gd::percentile({1.0f, 2.0f}, 25.0) == Approx(1.25));
    Tensor<float> a = t;
    gd::normalize(a.view(), {gd::Normalization::min_max});
    CHECK(a(0) == 0.0f);
    CHECK(a(100) == 1.0f);
    a = t;
    gd::normalize(a.view());  // 1st and 99th percentiles (2 and 198) to 0 and 1, no clipping
    CHECK(a(1) == Approx(0.0).margin(1e-6));
    CHECK(a(99) == Approx(1.0));
    CHECK(a(0) < 0.0f);
    a = t;
    gd::normalize(a.view(), {gd::Normalization::z_score});
    double mean = 0, var = 0;
    for (index_t i = 0; i <= 100; ++i) mean += a(i) / 101.0;
    for (index_t i = 0; i <= 100; ++i) var += (a(i) - mean) * (a(i) - mean) / 101.0;
    CHECK(mean == Approx(0.0).margin(1e-6));
    CHECK(var == Approx(1.0));
    Tensor<float> flat(Shape{4}, 3.0f);
    gd::normalize(flat.view());
    CHECK(flat(2) == 0.0f);
    a = t;
    a(7) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(gd::normalize(a.view()), Catch::Contains("non-finite"));
    CHECK_THROWS_AS(gd::normalize(t.view(), {gd::Normalization::percentile, 60.0, 40.0}), gcl::Error);
}
