#pragma once
// Line charts as PNG pictures (loss curves, Dice against labelled patients, ...), drawn with the
// built-in font: title, axis labels, round-number ticks with a light grid, a legend placed in
// the emptiest corner, optional error bars, a linear or logarithmic y axis.
//
// Points whose x or y is not finite (and, on a log axis, whose y is not positive) are left out
// and break the line there, so a curve with a missing value still draws.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/png.hpp"
#include "gcl/report/font.hpp"
#include "gcl/report/raster.hpp"

namespace gcl::report {

struct Series {
    std::string label;
    std::vector<double> x, y;
    std::vector<double> y_error;  // empty: no error bars; else one half-height per point
};

struct ChartOptions {
    std::string title, x_label, y_label;
    int width = 800;
    int height = 480;
    bool log_y = false;
};

// The colour of the i-th series (a ten-colour cycle that stays apart for colour-blind readers).
inline Colour series_colour(std::size_t i) {
    static constexpr std::array<Colour, 10> palette{{{31, 119, 180},
                                                      {255, 127, 14},
                                                      {44, 160, 44},
                                                      {214, 39, 40},
                                                      {148, 103, 189},
                                                      {140, 86, 75},
                                                      {227, 119, 194},
                                                      {127, 127, 127},
                                                      {188, 189, 34},
                                                      {23, 190, 207}}};
    return palette[i % palette.size()];
}

namespace detail {

inline constexpr Colour ink_colour{40, 40, 40};
inline constexpr Colour grid_colour{228, 228, 228};
inline constexpr int tick_length = 5;
inline constexpr int line_thickness = 2;

// Formats a tick value with as many decimals as the tick spacing needs.
inline std::string format_tick(double value, double step) {
    if (std::abs(value) < step * 1e-9) value = 0;
    char buffer[64];
    const double magnitude = std::max(std::abs(value), step);
    if (magnitude >= 1e6 || step < 1e-4) {
        std::snprintf(buffer, sizeof buffer, "%.3g", value);
    } else {
        const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
        std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
    }
    return buffer;
}

// A round spacing (1, 2 or 5 times a power of ten) giving about `target` intervals over `range`.
inline double nice_step(double range, int target) {
    const double raw = range / std::max(target, 1);
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / magnitude;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude;
}

struct Tick {
    double value;
    std::string label;
};

// One axis: the shown interval, in data units (log10 units on a log axis), and its ticks.
struct Axis {
    double lo = 0, hi = 1;
    bool log = false;
    std::vector<Tick> ticks;

    double unit(double v) const { return ((log ? std::log10(v) : v) - lo) / (hi - lo); }  // 0 at lo, 1 at hi
};

inline Axis linear_axis(double lo, double hi, int target_intervals) {
    if (!(lo <= hi)) lo = 0, hi = 1;  // nothing to show
    if (hi - lo <= std::abs(hi) * 1e-12) {
        const double pad = lo == 0 ? 0.5 : std::abs(lo) * 0.05;
        lo -= pad, hi += pad;
    }
    const double step = nice_step(hi - lo, target_intervals);
    Axis axis;
    axis.lo = std::floor(lo / step + 1e-9) * step;
    axis.hi = std::ceil(hi / step - 1e-9) * step;
    const auto n = static_cast<int>(std::lround((axis.hi - axis.lo) / step));
    for (int k = 0; k <= n; ++k) {
        const double v = axis.lo + k * step;
        axis.ticks.push_back({v, format_tick(v, step)});
    }
    return axis;
}

inline std::string format_power_of_ten(int exponent, int mantissa = 1) {
    if (exponent >= -4 && exponent <= 5) return format_tick(mantissa * std::pow(10.0, exponent), std::pow(10.0, exponent));
    return std::to_string(mantissa) + "e" + std::to_string(exponent);
}

// Decades from below the smallest to above the largest positive value; with few decades, also
// 2 and 5 times each.
inline Axis log_axis(double lo, double hi) {
    Axis axis;
    axis.log = true;
    if (!(lo > 0 && lo <= hi)) lo = 1, hi = 10;
    auto lo_e = static_cast<int>(std::floor(std::log10(lo) + 1e-12));
    auto hi_e = static_cast<int>(std::ceil(std::log10(hi) - 1e-12));
    if (hi_e <= lo_e) hi_e = lo_e + 1;
    axis.lo = lo_e, axis.hi = hi_e;
    const int decades = hi_e - lo_e;
    const int stride = (decades + 7) / 8;
    for (int e = lo_e; e <= hi_e; e += stride) {
        axis.ticks.push_back({std::pow(10.0, e), format_power_of_ten(e)});
        if (decades <= 2 && e < hi_e)
            for (int m : {2, 5}) axis.ticks.push_back({m * std::pow(10.0, e), format_power_of_ten(e, m)});
    }
    return axis;
}

inline bool plotted(double x, double y, bool log_y) {
    return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
}

// Where everything goes: the plot rectangle [left, right) x [top, bottom) in pixels and the axes.
struct ChartLayout {
    int left = 0, top = 0, right = 0, bottom = 0;
    Axis x, y;

    double px(double xv) const { return left + x.unit(xv) * (right - 1 - left); }
    double py(double yv) const { return bottom - 1 - y.unit(yv) * (bottom - 1 - top); }
};

inline void check_series(const std::vector<Series>& series, const ChartOptions& options) {
    constexpr const char* op = "report::render_line_chart";
    check(!series.empty(), op, "no series to draw");
    check(options.width >= 160 && options.height >= 120 && options.width <= 16384 && options.height <= 16384, op,
          "picture size ", options.width, " x ", options.height, " is outside 160 x 120 .. 16384 x 16384");
    for (const Series& s : series) {
        check(s.x.size() == s.y.size(), op, "series '", s.label, "' has ", s.x.size(), " x values but ", s.y.size(),
              " y values");
        check(s.y_error.empty() || s.y_error.size() == s.y.size(), op, "series '", s.label, "' has ",
              s.y_error.size(), " error bars for ", s.y.size(), " points");
        for (std::size_t i = 0; i < s.y_error.size(); ++i)
            check(!(s.y_error[i] < 0) && !std::isinf(s.y_error[i]), op, "series '", s.label, "' error bar ", i,
                  " is ", s.y_error[i], "; error bars are non-negative (NaN: none)");
    }
}

inline ChartLayout chart_layout(const std::vector<Series>& series, const ChartOptions& options) {
    check_series(series, options);
    double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
    for (const Series& s : series)
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (!plotted(s.x[i], s.y[i], options.log_y)) continue;
            const double e = s.y_error.empty() || std::isnan(s.y_error[i]) ? 0.0 : s.y_error[i];
            x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
            y_hi = std::max(y_hi, s.y[i] + e);
            y_lo = std::min(y_lo, options.log_y && s.y[i] - e <= 0 ? s.y[i] : s.y[i] - e);
        }
    ChartLayout layout;
    layout.top = options.title.empty() ? 14 : 14 + font::text_height(2) + 12;
    layout.bottom = options.height - (10 + tick_length + 4 + font::text_height() +
                                      (options.x_label.empty() ? 0 : 8 + font::text_height()));
    const int plot_height = layout.bottom - layout.top;
    layout.y = options.log_y ? log_axis(y_lo, y_hi) : linear_axis(y_lo, y_hi, std::max(2, plot_height / 55));
    int widest_tick = 0;
    for (const Tick& t : layout.y.ticks) widest_tick = std::max(widest_tick, font::text_width(t.label));
    layout.left = 10 + (options.y_label.empty() ? 0 : font::text_height() + 8) + widest_tick + 4 + tick_length;
    layout.right = options.width - 18;
    const int plot_width = layout.right - layout.left;
    check(plot_width >= 40 && plot_height >= 40, "report::render_line_chart", "a ", options.width, " x ",
          options.height, " picture leaves no room for the plot");
    layout.x = linear_axis(x_lo, x_hi, std::max(2, plot_width / 90));
    return layout;
}

inline void draw_axes(Canvas& canvas, const ChartLayout& layout, const ChartOptions& options) {
    for (const Tick& t : layout.y.ticks) {
        const auto y = static_cast<index_t>(std::lround(layout.py(t.value)));
        canvas.fill_rect(layout.left, y, layout.right, y + 1, grid_colour);
        canvas.fill_rect(layout.left - tick_length, y, layout.left, y + 1, ink_colour);
        canvas.text(layout.left - tick_length - 4 - font::text_width(t.label), y - font::glyph_height / 2 + 1, t.label,
                    ink_colour);
    }
    int last_label_end = std::numeric_limits<int>::min();
    for (const Tick& t : layout.x.ticks) {
        const auto x = static_cast<index_t>(std::lround(layout.px(t.value)));
        canvas.fill_rect(x, layout.top, x + 1, layout.bottom, grid_colour);
        canvas.fill_rect(x, layout.bottom, x + 1, layout.bottom + tick_length, ink_colour);
        const int w = font::text_width(t.label);
        const int start = static_cast<int>(x) - w / 2;
        if (start > last_label_end + 6) {  // labels that would touch are left out
            canvas.text(start, layout.bottom + tick_length + 4, t.label, ink_colour);
            last_label_end = start + w;
        }
    }
    canvas.stroke_rect(layout.left, layout.top, layout.right, layout.bottom, ink_colour);
    if (!options.title.empty())
        canvas.text((options.width - font::text_width(options.title, 2)) / 2, 12, options.title, ink_colour, 2);
    if (!options.x_label.empty())
        canvas.text((layout.left + layout.right - font::text_width(options.x_label)) / 2,
                    options.height - 8 - font::text_height(), options.x_label, ink_colour);
    if (!options.y_label.empty())
        canvas.text_upwards(8, (layout.top + layout.bottom + font::text_width(options.y_label)) / 2, options.y_label,
                            ink_colour);
}

inline void draw_series(Canvas& canvas, const ChartLayout& layout, const Series& s, Colour colour, bool log_y) {
    const double y_floor = layout.bottom - 1;
    for (std::size_t i = 0; i < s.y_error.size(); ++i) {
        if (!plotted(s.x[i], s.y[i], log_y) || std::isnan(s.y_error[i]) || s.y_error[i] == 0) continue;
        // On pixel centres, so that one-pixel strokes stay sharp.
        const double x = std::round(layout.px(s.x[i]));
        const double y_top = std::round(layout.py(s.y[i] + s.y_error[i]));
        const double y_low =
            std::round(log_y && s.y[i] - s.y_error[i] <= 0 ? y_floor : layout.py(s.y[i] - s.y_error[i]));
        canvas.line(x, y_top, x, y_low, colour, 1);
        canvas.line(x - 3, y_top, x + 3, y_top, colour, 1);
        canvas.line(x - 3, y_low, x + 3, y_low, colour, 1);
    }
    const bool markers = s.x.size() <= 40;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!plotted(s.x[i], s.y[i], log_y)) continue;
        const double x = layout.px(s.x[i]), y = layout.py(s.y[i]);
        if (i + 1 < s.x.size() && plotted(s.x[i + 1], s.y[i + 1], log_y))
            canvas.line(x, y, layout.px(s.x[i + 1]), layout.py(s.y[i + 1]), colour, line_thickness);
        if (markers) canvas.line(x, y, x, y, colour, 5);
    }
}

// The legend goes into the corner of the plot with the fewest drawn points.
inline void draw_legend(Canvas& canvas, const ChartLayout& layout, const std::vector<Series>& series, bool log_y) {
    int widest = 0;
    for (const Series& s : series) widest = std::max(widest, font::text_width(s.label));
    if (widest == 0) return;
    constexpr int pad = 6, swatch = 18, row = font::line_height + 4;
    const int w = pad + swatch + 6 + widest + pad;
    const int h = pad + static_cast<int>(series.size()) * row - 4 + pad;
    const int margin = 8;
    const std::array<std::array<int, 2>, 4> corners{{{layout.right - margin - w, layout.top + margin},
                                                      {layout.right - margin - w, layout.bottom - margin - h},
                                                      {layout.left + margin, layout.top + margin},
                                                      {layout.left + margin, layout.bottom - margin - h}}};
    std::size_t best = 0;
    std::size_t best_count = std::numeric_limits<std::size_t>::max();
    for (std::size_t c = 0; c < corners.size(); ++c) {
        const auto [x0, y0] = corners[c];
        std::size_t count = 0;
        for (const Series& s : series)
            for (std::size_t i = 0; i < s.x.size(); ++i) {
                if (!plotted(s.x[i], s.y[i], log_y)) continue;
                // The point and the middle of the segment to the next one.
                std::array<std::array<double, 2>, 2> probes{{{layout.px(s.x[i]), layout.py(s.y[i])},
                                                             {std::nan(""), std::nan("")}}};
                if (i + 1 < s.x.size() && plotted(s.x[i + 1], s.y[i + 1], log_y))
                    probes[1] = {(probes[0][0] + layout.px(s.x[i + 1])) / 2, (probes[0][1] + layout.py(s.y[i + 1])) / 2};
                for (const auto& [px, py] : probes)
                    if (px >= x0 - 3 && px < x0 + w + 3 && py >= y0 - 3 && py < y0 + h + 3) ++count;
            }
        if (count < best_count) best = c, best_count = count;
    }
    const auto [x0, y0] = corners[best];
    canvas.fill_rect(x0, y0, x0 + w, y0 + h, white, 0.85);
    canvas.stroke_rect(x0, y0, x0 + w, y0 + h, grid_colour);
    for (std::size_t i = 0; i < series.size(); ++i) {
        const int y = y0 + pad + static_cast<int>(i) * row;
        const double mid = y + font::glyph_height / 2.0 - 1;
        canvas.line(x0 + pad, mid, x0 + pad + swatch, mid, series_colour(i), line_thickness);
        canvas.text(x0 + pad + swatch + 6, y, series[i].label, ink_colour);
    }
}

}  // namespace detail

// An (H, W, 3) RGB picture of the series as lines on one pair of axes.
inline Tensor<std::uint8_t> render_line_chart(const std::vector<Series>& series, const ChartOptions& options = {}) {
    const detail::ChartLayout layout = detail::chart_layout(series, options);
    Canvas canvas(options.height, options.width, white);
    detail::draw_axes(canvas, layout, options);
    for (std::size_t i = 0; i < series.size(); ++i)
        detail::draw_series(canvas, layout, series[i], series_colour(i), options.log_y);
    detail::draw_legend(canvas, layout, series, options.log_y);
    return std::move(canvas).pixels();
}

// Renders the chart and writes it as a PNG file.
inline void write_line_chart(const std::filesystem::path& png, const std::vector<Series>& series,
                             const ChartOptions& options = {}) {
    data::write_png(png, render_line_chart(series, options).cview());
}

}  // namespace gcl::report
