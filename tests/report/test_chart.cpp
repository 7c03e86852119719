#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <iterator>

#include "gcl/report/chart.hpp"
#include "temp_dir.hpp"

namespace gr = gcl::report;
using gcl::index_t;
using gr::Colour;

namespace {

Colour pixel(const gcl::Tensor<std::uint8_t>& rgb, double x, double y) {
    const auto c = static_cast<index_t>(std::lround(x)), r = static_cast<index_t>(std::lround(y));
    return {rgb(r, c, 0), rgb(r, c, 1), rgb(r, c, 2)};
}

// Counts the pixels of one colour inside [x0, x1) x [y0, y1).
int count_colour(const gcl::Tensor<std::uint8_t>& rgb, Colour colour, int x0, int y0, int x1, int y1) {
    int n = 0;
    for (int r = y0; r < y1; ++r)
        for (int c = x0; c < x1; ++c) n += pixel(rgb, c, r) == colour;
    return n;
}

std::vector<gr::Series> two_parallel_lines() {
    gr::Series a{"train", {}, {}, {}}, b{"validation", {}, {}, {}};
    for (int i = 0; i <= 10; ++i) {
        a.x.push_back(i), a.y.push_back(1 + i);
        b.x.push_back(i), b.y.push_back(4 + i);
    }
    return {a, b};
}

}  // namespace

TEST_CASE("tick values are round numbers with the decimals their spacing needs", "[report][chart]") {
    CHECK(gr::detail::nice_step(0.74, 5) == Approx(0.1));
    CHECK(gr::detail::nice_step(230, 5) == Approx(50));
    CHECK(gr::detail::nice_step(9, 4) == Approx(2));
    const auto linear = gr::detail::linear_axis(0.13, 0.87, 5);
    CHECK(linear.lo == Approx(0.1));
    CHECK(linear.hi == Approx(0.9));
    REQUIRE(linear.ticks.size() == 9);
    CHECK(linear.ticks.front().label == "0.1");
    CHECK(linear.ticks.back().label == "0.9");
    const auto steps = gr::detail::linear_axis(0, 2000, 4);
    std::vector<std::string> labels;
    for (const auto& t : steps.ticks) labels.push_back(t.label);
    CHECK(labels == std::vector<std::string>{"0", "500", "1000", "1500", "2000"});
    // A constant value still gets an interval around it.
    const auto flat = gr::detail::linear_axis(3, 3, 4);
    CHECK(flat.lo < 3);
    CHECK(flat.hi > 3);
    const auto log = gr::detail::log_axis(0.02, 30);
    labels.clear();
    for (const auto& t : log.ticks) labels.push_back(t.label);
    CHECK(labels == std::vector<std::string>{"0.01", "0.1", "1", "10", "100"});
    const auto narrow = gr::detail::log_axis(1.5, 40);
    labels.clear();
    for (const auto& t : narrow.ticks) labels.push_back(t.label);
    CHECK(labels == std::vector<std::string>{"1", "2", "5", "10", "20", "50", "100"});
    CHECK(gr::detail::format_tick(-0.0000000001, 0.5) == "0.0");
    CHECK(gr::detail::format_tick(2.5e7, 5e6) == "2.5e+07");
}

TEST_CASE("a line chart puts every point where its axes say", "[report][chart]") {
    const auto series = two_parallel_lines();
    gr::ChartOptions options;
    options.title = "Loss";
    options.x_label = "step";
    options.y_label = "loss";
    const auto rgb = gr::render_line_chart(series, options);
    REQUIRE(rgb.shape() == gcl::Shape{480, 800, 3});
    CHECK(pixel(rgb, 0, 0) == gr::white);
    CHECK(pixel(rgb, 799, 479) == gr::white);
    const auto layout = gr::detail::chart_layout(series, options);
    CHECK(layout.left > 20);  // room for tick labels and the y label
    CHECK(layout.top > 20);   // and for the title
    for (std::size_t s = 0; s < series.size(); ++s)
        for (std::size_t i = 0; i < series[s].x.size(); ++i) {
            const double x = layout.px(series[s].x[i]), y = layout.py(series[s].y[i]);
            CHECK(x >= layout.left);
            CHECK(x < layout.right);
            CHECK(y >= layout.top);
            CHECK(y < layout.bottom);
            CHECK(pixel(rgb, x, y) == gr::series_colour(s));
        }
    // The axes span the data: the first and last points lie on or inside the frame.
    CHECK(layout.px(0) == Approx(layout.left));
    CHECK(layout.px(10) == Approx(layout.right - 1));
    // Both lines run above the bottom-right corner, so the legend (both swatches) goes there.
    const int corner_x = layout.right - 160, corner_y = layout.bottom - 50;
    CHECK(count_colour(rgb, gr::series_colour(0), corner_x, corner_y, layout.right, layout.bottom) > 10);
    CHECK(count_colour(rgb, gr::series_colour(1), corner_x, corner_y, layout.right, layout.bottom) > 10);
    // The title is drawn above the plot; without one nothing is.
    CHECK(count_colour(rgb, gr::detail::ink_colour, 0, 0, 800, layout.top - 6) > 50);
    const auto bare = gr::render_line_chart(series);
    CHECK(count_colour(bare, gr::detail::ink_colour, 0, 0, 800, gr::detail::chart_layout(series, {}).top - 6) == 0);
    // Same input, same picture.
    const auto again = gr::render_line_chart(series, options);
    CHECK(std::equal(rgb.data(), rgb.data() + rgb.numel(), again.data()));
}

TEST_CASE("a log axis spaces decades evenly; error bars reach y +- error", "[report][chart]") {
    gr::Series s{"loss", {0, 1, 2, 3}, {1000, 100, 10, 1}, {}};
    gr::ChartOptions options;
    options.log_y = true;
    const auto layout = gr::detail::chart_layout({s}, options);
    CHECK(layout.py(10) - layout.py(100) == Approx(layout.py(100) - layout.py(1000)));
    CHECK(layout.py(1) == Approx(layout.bottom - 1));
    CHECK(layout.py(1000) == Approx(layout.top));

    gr::Series dice{"dice", {1, 2, 4, 8}, {0.5, 0.6, 0.7, 0.8}, {0.1, 0.05, 0, 0.02}};
    const auto rgb = gr::render_line_chart({dice});
    const auto l = gr::detail::chart_layout({dice}, {});
    for (std::size_t i : {0u, 1u, 3u}) {
        const double x = l.px(dice.x[i]);
        CHECK(pixel(rgb, x + 3, l.py(dice.y[i] + dice.y_error[i])) == gr::series_colour(0));  // cap ends
        CHECK(pixel(rgb, x - 3, l.py(dice.y[i] - dice.y_error[i])) == gr::series_colour(0));
    }
}

TEST_CASE("points that are not finite are left out and break the line", "[report][chart]") {
    gr::Series s{"", {0, 1, 2, 3, 4}, {1, 2, std::nan(""), 4, 5}, {}};
    const auto rgb = gr::render_line_chart({s});
    const auto layout = gr::detail::chart_layout({s}, {});
    CHECK(pixel(rgb, layout.px(1), layout.py(2)) == gr::series_colour(0));
    CHECK(pixel(rgb, layout.px(3), layout.py(4)) == gr::series_colour(0));
    CHECK(pixel(rgb, layout.px(2), layout.py(3)) != gr::series_colour(0));  // where a joined line would pass
    CHECK(pixel(rgb, layout.px(3.5), layout.py(4.5)) == gr::series_colour(0));
    // A log axis leaves out values <= 0 the same way; a series with nothing to draw still renders.
    gr::ChartOptions log;
    log.log_y = true;
    CHECK(gr::render_line_chart({gr::Series{"", {0, 1}, {0, -1}, {}}}, log).shape() == gcl::Shape{480, 800, 3});
}

TEST_CASE("bad chart input is a gcl::Error naming the series", "[report][chart]") {
    CHECK_THROWS_AS(gr::render_line_chart({}), gcl::Error);
    CHECK_THROWS_WITH(gr::render_line_chart({gr::Series{"dice", {1, 2}, {1}, {}}}),
                      Catch::Contains("series 'dice'") && Catch::Contains("2 x values but 1 y values"));
    CHECK_THROWS_WITH(gr::render_line_chart({gr::Series{"dice", {1, 2}, {1, 2}, {0.1}}}),
                      Catch::Contains("1 error bars for 2 points"));
    CHECK_THROWS_WITH(gr::render_line_chart({gr::Series{"dice", {1, 2}, {1, 2}, {0.1, -0.1}}}),
                      Catch::Contains("error bar 1"));
    gr::ChartOptions tiny;
    tiny.width = 100;
    CHECK_THROWS_WITH(gr::render_line_chart(two_parallel_lines(), tiny), Catch::Contains("100 x 480"));
}

TEST_CASE("write_line_chart writes the rendered picture as PNG", "[report][chart]") {
    gcl_test::TempDir dir("chart");
    const auto series = two_parallel_lines();
    gr::ChartOptions options;
    options.width = 320, options.height = 200;
    gr::write_line_chart(dir / "loss.png", series, options);
    std::ifstream in(dir / "loss.png", std::ios::binary);
    const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(bytes == gcl::data::encode_png(gr::render_line_chart(series, options).cview()));
}
