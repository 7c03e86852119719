#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "gcl/report/font.hpp"
#include "gcl/report/raster.hpp"

namespace font = gcl::report::font;
using gcl::report::Canvas;
using gcl::report::Colour;

TEST_CASE("every printable character has its own glyph", "[report][font]") {
    std::set<std::array<std::uint8_t, font::glyph_height>> seen;
    for (char c = font::first_char; c <= font::last_char; ++c) {
        const auto& g = font::glyph(c);
        seen.insert(g);
        int ink = 0;
        for (auto row : g) ink += __builtin_popcount(row);
        if (c == ' ')
            CHECK(ink == 0);
        else
            CHECK(ink > 0);
    }
    CHECK(seen.size() == static_cast<std::size_t>(font::glyph_count));
    // Outside printable ASCII draws as '?'.
    CHECK(font::glyph('\n') == font::glyph('?'));
    CHECK(font::glyph(static_cast<char>(0xC3)) == font::glyph('?'));
    // Descenders use the last row, capitals do not.
    CHECK(font::glyph('g')[font::glyph_height - 1] != 0);
    CHECK(font::glyph('E')[font::glyph_height - 1] == 0);
    CHECK(font::ink('L', 0, 0));
    CHECK(!font::ink('L', 0, 4));
    CHECK(font::ink('L', 6, 4));
    CHECK(font::text_width("") == 0);
    CHECK(font::text_width("ab") == 2 * font::advance - 1);
    CHECK(font::text_width("ab", 2) == 2 * (2 * font::advance - 1));
}

TEST_CASE("text is drawn pixel for pixel from the glyphs, scaled and turned", "[report][raster]") {
    const Colour red{200, 0, 0};
    Canvas canvas(20, 30, gcl::report::white);
    canvas.text(3, 2, "7A", red);
    for (int r = 0; r < font::glyph_height; ++r)
        for (int c = 0; c < font::glyph_width; ++c) {
            CHECK((canvas.at(3 + c, 2 + r) == red) == font::ink('7', r, c));
            CHECK((canvas.at(3 + font::advance + c, 2 + r) == red) == font::ink('A', r, c));
        }
    Canvas big(20, 20, gcl::report::white);
    big.text(0, 0, "1", red, 2);
    for (int r = 0; r < 2 * font::glyph_height; ++r)
        for (int c = 0; c < 2 * font::glyph_width; ++c) CHECK((big.at(c, r) == red) == font::ink('1', r / 2, c / 2));
    // Turned a quarter left: glyph row r becomes column x + r, glyph column c the row y_bottom - c.
    Canvas up(20, 20, gcl::report::white);
    up.text_upwards(4, 15, "F", red);
    for (int r = 0; r < font::glyph_height; ++r)
        for (int c = 0; c < font::glyph_width; ++c) CHECK((up.at(4 + r, 15 - c) == red) == font::ink('F', r, c));
    // Drawing off the picture is clipped, not an error.
    canvas.text(-4, -3, "Wg", red);
    canvas.text(28, 18, "x", red);
}

TEST_CASE("canvas lines cover their pixels and fade over one pixel at the edge", "[report][raster]") {
    const Colour blue{0, 0, 255};
    Canvas canvas(21, 21, gcl::report::white);
    canvas.line(2, 10, 18, 10, blue, 2);
    for (int x = 2; x <= 18; ++x) {
        CHECK(canvas.at(x, 10) == blue);
        CHECK(canvas.at(x, 9) == Colour{128, 128, 255});  // one pixel from the centre, half width 1: half covered
        CHECK(canvas.at(x, 11) == Colour{128, 128, 255});
        CHECK(canvas.at(x, 12) == gcl::report::white);
    }
    CHECK(canvas.at(0, 10) == gcl::report::white);
    Canvas diagonal(10, 10, gcl::report::white);
    diagonal.line(0, 0, 9, 9, blue, 1);
    for (int i = 0; i < 10; ++i) CHECK(diagonal.at(i, i) == blue);
    CHECK(diagonal.at(9, 0) == gcl::report::white);
    // Non-finite end points draw nothing.
    diagonal.line(0, 9, std::nan(""), 0, Colour{0, 255, 0}, 3);
    CHECK(diagonal.at(0, 9) == gcl::report::white);
    CHECK_THROWS_AS(Canvas(0, 5, gcl::report::white), gcl::Error);
}
