#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <iterator>

#include "gcl/report/overlay.hpp"
#include "temp_dir.hpp"

namespace gr = gcl::report;
using gcl::Shape;
using gcl::Tensor;

namespace {

std::array<std::uint8_t, 3> at(const Tensor<std::uint8_t>& rgb, gcl::index_t r, gcl::index_t c) {
    return {rgb(r, c, 0), rgb(r, c, 1), rgb(r, c, 2)};
}

}  // namespace

TEST_CASE("overlay_labels scales the image to grey and blends each class in its colour", "[report][overlay]") {
    Tensor<float> image(Shape{8, 10});
    for (gcl::index_t r = 0; r < 8; ++r)
        for (gcl::index_t c = 0; c < 10; ++c) image(r, c) = -50.0f + 10.0f * static_cast<float>(c);  // -50 .. 40
    Tensor<std::uint8_t> labels(Shape{8, 10});
    for (gcl::index_t r = 2; r < 7; ++r)
        for (gcl::index_t c = 2; c < 7; ++c) labels(r, c) = 3;  // LV block, interior 3..5
    const double alpha = 0.45;
    const auto rgb = gr::overlay_labels(image.cview(), labels.cview(), alpha);
    REQUIRE(rgb.shape() == Shape{8, 10, 3});
    CHECK(at(rgb, 0, 0) == std::array<std::uint8_t, 3>{0, 0, 0});  // minimum: black
    CHECK(at(rgb, 0, 9) == std::array<std::uint8_t, 3>{255, 255, 255});  // maximum: white
    const double grey = 40.0 / 90.0 * 255.0;  // column 4 of -50 .. 40
    CHECK(int(rgb(0, 4, 0)) == int(std::lround(grey)));
    for (int ch = 0; ch < 3; ++ch) {
        const double tinted = (1 - alpha) * grey + alpha * gcl::data::class_colours[3][static_cast<std::size_t>(ch)];
        CHECK(int(rgb(4, 4, ch)) == int(std::lround(tinted)));  // interior pixel
        const double edge = 0.1 * (20.0 / 90.0 * 255.0) + 0.9 * gcl::data::class_colours[3][static_cast<std::size_t>(ch)];
        CHECK(std::abs(int(rgb(2, 2, ch)) - int(std::lround(edge))) <= 1);  // border pixel, opacity 0.9
    }
    // alpha 0 leaves the interior grey.
    const auto plain = gr::overlay_labels(image.cview(), labels.cview(), 0.0);
    CHECK(at(plain, 4, 4) == at(plain, 0, 4));
    // A constant image is black, not a division by zero.
    const auto flat = gr::overlay_labels(Tensor<float>(Shape{8, 10}, 7.0f).cview(), labels.cview());
    CHECK(at(flat, 0, 0) == std::array<std::uint8_t, 3>{0, 0, 0});
}

TEST_CASE("overlay_comparison puts prediction and truth side by side", "[report][overlay]") {
    Tensor<float> image(Shape{6, 5}, 0.0f);
    image(0, 0) = 1.0f;
    Tensor<std::uint8_t> prediction(Shape{6, 5}), truth(Shape{6, 5});
    prediction(3, 1) = 1;
    truth(3, 3) = 2;
    const auto both = gr::overlay_comparison(image.cview(), prediction.cview(), truth.cview());
    REQUIRE(both.shape() == Shape{6, 5 + 4 + 5, 3});
    const auto left = gr::overlay_labels(image.cview(), prediction.cview());
    const auto right = gr::overlay_labels(image.cview(), truth.cview());
    for (gcl::index_t r = 0; r < 6; ++r)
        for (gcl::index_t c = 0; c < 5; ++c) {
            CHECK(at(both, r, c) == at(left, r, c));
            CHECK(at(both, r, c + 9) == at(right, r, c));
        }
}

TEST_CASE("bad overlay input is a gcl::Error; the PNG is the overlay's", "[report][overlay]") {
    Tensor<float> image(Shape{4, 4}, 1.0f);
    Tensor<std::uint8_t> labels(Shape{4, 4});
    CHECK_THROWS_WITH(gr::overlay_labels(image.cview(), Tensor<std::uint8_t>(Shape{4, 5}).cview()),
                      Catch::Contains("do not match"));
    CHECK_THROWS_WITH(gr::overlay_labels(image.cview(), labels.cview(), 1.5), Catch::Contains("alpha 1.5"));
    labels(1, 2) = 9;
    CHECK_THROWS_WITH(gr::overlay_labels(image.cview(), labels.cview()), Catch::Contains("label value 9"));
    labels(1, 2) = 0;
    image(2, 2) = std::nanf("");
    CHECK_THROWS_WITH(gr::overlay_labels(image.cview(), labels.cview()), Catch::Contains("(2, 2) is not finite"));
    image(2, 2) = 0.5f;
    gcl_test::TempDir dir("overlay");
    gr::write_overlay_png(dir / "o.png", image.cview(), labels.cview());
    std::ifstream in(dir / "o.png", std::ios::binary);
    const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(bytes == gcl::data::encode_png(gr::overlay_labels(image.cview(), labels.cview()).cview()));
}
