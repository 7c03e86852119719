#include <catch2/catch.hpp>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "gcl/data/montage.hpp"
#include "gcl/data/png.hpp"
#include "temp_dir.hpp"

namespace gd = gcl::data;
using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;

namespace {

std::uint32_t be32(const unsigned char* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

// Decodes what encode_png writes (one IDAT, filter 0) and checks every chunk's CRC.
Tensor<std::uint8_t> decode_png(const std::vector<unsigned char>& png) {
    REQUIRE(png.size() > 8);
    REQUIRE(std::memcmp(png.data(), "\x89PNG\r\n\x1a\n", 8) == 0);
    std::size_t pos = 8;
    std::uint32_t w = 0, h = 0;
    int colour = -1;
    std::vector<unsigned char> idat;
    bool ended = false;
    while (pos + 12 <= png.size()) {
        const std::uint32_t len = be32(&png[pos]);
        const std::string type(reinterpret_cast<const char*>(&png[pos + 4]), 4);
        const unsigned char* body = &png[pos + 8];
        CHECK(crc32(0L, &png[pos + 4], len + 4) == be32(body + len));
        if (type == "IHDR") {
            w = be32(body);
            h = be32(body + 4);
            CHECK(body[8] == 8);
            colour = body[9];
        } else if (type == "IDAT") {
            idat.insert(idat.end(), body, body + len);
        } else if (type == "IEND") {
            ended = true;
        }
        pos += 12 + len;
    }
    CHECK(ended);
    CHECK(pos == png.size());
    const std::size_t channels = colour == 2 ? 3 : 1;
    std::vector<unsigned char> raw(h * (w * channels + 1));
    uLongf raw_size = raw.size();
    REQUIRE(uncompress(raw.data(), &raw_size, idat.data(), idat.size()) == Z_OK);
    REQUIRE(raw_size == raw.size());
    Tensor<std::uint8_t> out(channels == 3 ? Shape{h, w, 3} : Shape{h, w});
    for (std::uint32_t r = 0; r < h; ++r) {
        CHECK(raw[r * (w * channels + 1)] == 0);
        std::memcpy(out.data() + r * w * channels, &raw[r * (w * channels + 1) + 1], w * channels);
    }
    return out;
}

}  // namespace

TEST_CASE("PNG encoding round-trips grey and RGB images", "[data][png]") {
    Tensor<std::uint8_t> grey(Shape{7, 5}), rgb(Shape{4, 6, 3});
    for (index_t i = 0; i < grey.numel(); ++i) grey.data()[i] = static_cast<std::uint8_t>(i * 7);
    for (index_t i = 0; i < rgb.numel(); ++i) rgb.data()[i] = static_cast<std::uint8_t>(255 - i);
    for (const Tensor<std::uint8_t>* t : {&grey, &rgb}) {
        const Tensor<std::uint8_t> back = decode_png(gd::encode_png(t->cview()));
        REQUIRE(back.shape() == t->shape());
        CHECK(std::memcmp(back.data(), t->data(), static_cast<std::size_t>(t->numel())) == 0);
    }
    gcl_test::TempDir dir("png");
    gd::write_png(dir / "g.png", grey.cview());
    std::ifstream in(dir / "g.png", std::ios::binary);
    const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(bytes == gd::encode_png(grey.cview()));
    CHECK_THROWS_AS(gd::encode_png(Tensor<std::uint8_t>(Shape{4, 4, 2}).cview()), gcl::Error);
    CHECK_THROWS_AS(gd::encode_png(Tensor<std::uint8_t>(Shape{0, 4}).cview()), gcl::Error);
}

TEST_CASE("overlays tint and outline classes; montages tile pictures", "[data][montage]") {
    Tensor<float> img(Shape{8, 8}, 0.5f);
    Tensor<std::uint8_t> lab(Shape{8, 8});
    for (index_t r = 2; r < 6; ++r)
        for (index_t c = 2; c < 6; ++c) lab(r, c) = gd::cls::lv;
    const Tensor<std::uint8_t> plain = gd::overlay(img.cview(), {});
    CHECK(plain(4, 4, 0) == 128);
    CHECK(plain(4, 4, 1) == 128);
    const Tensor<std::uint8_t> o = gd::overlay(img.cview(), lab.cview());
    CHECK(o(0, 0, 0) == 128);  // background untouched
    // Inside: 30% red over grey; on the border: 95% red.
    CHECK(o(3, 3, 0) == static_cast<int>(std::lround(0.7 * 127.5 + 0.3 * 255)));
    CHECK(o(3, 3, 1) == static_cast<int>(std::lround(0.7 * 127.5 + 0.3 * 50)));
    CHECK(o(2, 4, 0) == static_cast<int>(std::lround(0.05 * 127.5 + 0.95 * 255)));
    lab(0, 0) = 9;
    CHECK_THROWS_WITH(gd::overlay(img.cview(), lab.cview()), Catch::Contains("not a class"));

    const std::vector<Tensor<std::uint8_t>> tiles{plain, o, plain};
    const Tensor<std::uint8_t> m = gd::montage(tiles, 2, 1);
    REQUIRE(m.shape() == Shape{17, 17, 3});
    CHECK(m(8, 0, 0) == 0);              // gap row
    CHECK(m(3, 9 + 3, 0) == o(3, 3, 0));  // second tile
    CHECK(m(9 + 4, 4, 1) == 128);         // third tile, next row
    CHECK_THROWS_AS(gd::montage({}, 2), gcl::Error);
    CHECK_THROWS_AS(gd::montage({plain, Tensor<std::uint8_t>(Shape{4, 8, 3})}, 2), gcl::Error);
}
