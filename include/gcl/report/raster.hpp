#pragma once
// Canvas: an RGB picture to draw on (rectangles, anti-aliased thick lines, text in the built-in
// font), the drawing layer under the charts. Everything drawn is clipped to the picture.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <utility>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/report/font.hpp"

namespace gcl::report {

using Colour = std::array<std::uint8_t, 3>;

inline constexpr Colour white{255, 255, 255};
inline constexpr Colour black{0, 0, 0};

class Canvas {
public:
    Canvas(index_t height, index_t width, Colour background) : pixels_(Shape{height, width, 3}) {
        check(height > 0 && width > 0, "report::Canvas", "a picture needs a positive size, got ", height, " x ", width);
        fill_rect(0, 0, width, height, background);
    }

    index_t height() const { return pixels_.dim(0); }
    index_t width() const { return pixels_.dim(1); }
    Colour at(index_t x, index_t y) const { return {pixels_(y, x, 0), pixels_(y, x, 1), pixels_(y, x, 2)}; }
    const Tensor<std::uint8_t>& pixels() const& { return pixels_; }
    Tensor<std::uint8_t> pixels() && { return std::move(pixels_); }

    // Mixes `colour` into pixel (x, y) with opacity alpha in [0, 1]; outside the picture: nothing.
    void blend(index_t x, index_t y, Colour colour, double alpha = 1.0) {
        if (x < 0 || y < 0 || x >= width() || y >= height() || alpha <= 0) return;
        alpha = std::min(alpha, 1.0);
        for (int ch = 0; ch < 3; ++ch) {
            std::uint8_t& p = pixels_(y, x, ch);
            p = static_cast<std::uint8_t>(std::lround((1 - alpha) * p + alpha * colour[static_cast<std::size_t>(ch)]));
        }
    }

    // Fills the pixels x0 <= x < x1, y0 <= y < y1.
    void fill_rect(index_t x0, index_t y0, index_t x1, index_t y1, Colour colour, double alpha = 1.0) {
        for (index_t y = std::max<index_t>(y0, 0); y < std::min(y1, height()); ++y)
            for (index_t x = std::max<index_t>(x0, 0); x < std::min(x1, width()); ++x) blend(x, y, colour, alpha);
    }
    // A one-pixel outline of the same rectangle.
    void stroke_rect(index_t x0, index_t y0, index_t x1, index_t y1, Colour colour) {
        fill_rect(x0, y0, x1, y0 + 1, colour);
        fill_rect(x0, y1 - 1, x1, y1, colour);
        fill_rect(x0, y0, x0 + 1, y1, colour);
        fill_rect(x1 - 1, y0, x1, y1, colour);
    }

    // A segment between pixel centres (x0, y0) and (x1, y1), `thickness` pixels wide; its edge is
    // anti-aliased over one pixel. A pixel's coverage is its distance to the segment.
    void line(double x0, double y0, double x1, double y1, Colour colour, double thickness = 1.0) {
        if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1)) return;
        const double half = thickness / 2;
        const double reach = half + 1;
        const auto lo_x = static_cast<index_t>(std::floor(std::min(x0, x1) - reach));
        const auto hi_x = static_cast<index_t>(std::ceil(std::max(x0, x1) + reach));
        const auto lo_y = static_cast<index_t>(std::floor(std::min(y0, y1) - reach));
        const auto hi_y = static_cast<index_t>(std::ceil(std::max(y0, y1) + reach));
        const double dx = x1 - x0, dy = y1 - y0, length2 = dx * dx + dy * dy;
        for (index_t y = std::max<index_t>(lo_y, 0); y <= std::min(hi_y, height() - 1); ++y)
            for (index_t x = std::max<index_t>(lo_x, 0); x <= std::min(hi_x, width() - 1); ++x) {
                const double t = length2 > 0 ? std::clamp(((x - x0) * dx + (y - y0) * dy) / length2, 0.0, 1.0) : 0.0;
                const double ex = x - (x0 + t * dx), ey = y - (y0 + t * dy);
                const double distance = std::sqrt(ex * ex + ey * ey);
                blend(x, y, colour, std::clamp(half + 0.5 - distance, 0.0, 1.0));
            }
    }

    // One line of text with its top-left corner at (x, y), each font pixel `scale` pixels wide.
    void text(index_t x, index_t y, std::string_view text, Colour colour, int scale = 1) {
        for (std::size_t i = 0; i < text.size(); ++i) {
            const index_t cx = x + static_cast<index_t>(i) * font::advance * scale;
            for (int r = 0; r < font::glyph_height; ++r)
                for (int c = 0; c < font::glyph_width; ++c)
                    if (font::ink(text[i], r, c))
                        fill_rect(cx + c * scale, y + r * scale, cx + (c + 1) * scale, y + (r + 1) * scale, colour);
        }
    }
    // Text turned a quarter left (read from bottom to top), its first character's bottom-left
    // corner of the turned box at (x, y_bottom).
    void text_upwards(index_t x, index_t y_bottom, std::string_view text, Colour colour) {
        for (std::size_t i = 0; i < text.size(); ++i) {
            const index_t cy = y_bottom - static_cast<index_t>(i) * font::advance;
            for (int r = 0; r < font::glyph_height; ++r)
                for (int c = 0; c < font::glyph_width; ++c)
                    if (font::ink(text[i], r, c)) blend(x + r, cy - c, colour);
        }
    }

private:
    Tensor<std::uint8_t> pixels_;
};

}  // namespace gcl::report
