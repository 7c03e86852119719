#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "gcl/report/metrics_log.hpp"
#include "gcl/report/progress.hpp"
#include "temp_dir.hpp"

namespace gr = gcl::report;

namespace {

// A clock the test moves by hand.
struct FakeClock {
    double now = 100.0;
};

gr::ProgressOptions options_with(std::ostringstream& out, FakeClock& clock, gr::ProgressStyle style) {
    gr::ProgressOptions o;
    o.style = style;
    o.out = &out;
    o.line_interval = 10;
    o.bar_interval = 0.1;
    o.bar_width = 10;
    o.clock = [&clock] { return clock.now; };
    return o;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

}  // namespace

TEST_CASE("durations read as seconds, minutes or hours", "[report][progress]") {
    CHECK(gr::format_duration(42.4) == "42 s");
    CHECK(gr::format_duration(187) == "3:07");
    CHECK(gr::format_duration(3723) == "1:02:03");
    CHECK(gr::format_duration(std::nan("")) == "?");
}

TEST_CASE("plain progress lines come at the interval, with rate and ETA", "[report][progress]") {
    std::ostringstream out;
    FakeClock clock;
    gr::Progress progress("pretrain", 100, options_with(out, clock, gr::ProgressStyle::lines));
    CHECK(progress.style() == gr::ProgressStyle::lines);
    for (int step = 1; step <= 100; ++step) {
        clock.now += 0.5;  // 2 steps/s
        progress.update(step, {{"loss", 3.25}, {"pixel", 0.5}});
    }
    progress.finish("done");
    const auto lines = lines_of(out.str());
    // Step 1, then every 10 s (20 steps), and the last step: 1, 21, 41, 61, 81, 100 and the summary.
    REQUIRE(lines.size() == 7);
    CHECK(lines[0] == "[pretrain] step   1/100  loss 3.25  pixel 0.5  2 steps/s  ETA 50 s");
    CHECK(lines[1].find("step  21/100") != std::string::npos);
    CHECK(lines[1].find("ETA 40 s") != std::string::npos);
    CHECK(lines[5] == "[pretrain] step 100/100  loss 3.25  pixel 0.5  2 steps/s  50 s");
    CHECK(lines[6] == "[pretrain] done");
    CHECK(out.str().find('\r') == std::string::npos);
}

TEST_CASE("the bar redraws one line in place and blanks leftovers", "[report][progress]") {
    std::ostringstream out;
    FakeClock clock;
    gr::Progress progress("finetune", 4, options_with(out, clock, gr::ProgressStyle::bar));
    clock.now += 1;
    progress.update(1, {{"loss", 12345.678}});
    clock.now += 0.01;  // too soon: no redraw
    progress.update(2, {{"loss", 1}});
    clock.now += 1;
    progress.update(3, {{"loss", 1}});
    clock.now += 1;
    progress.update(4);
    progress.finish();
    const std::string text = out.str();
    CHECK(text.find("[finetune] [##........] step 1/4  loss 1.235e+04  1 steps/s  ETA 3 s") != std::string::npos);
    CHECK(text.find("step 2/4") == std::string::npos);
    CHECK(text.find("[#######...] step 3/4") != std::string::npos);
    CHECK(text.find("[##########] step 4/4  1.33 steps/s  3 s") != std::string::npos);
    CHECK(std::count(text.begin(), text.end(), '\r') == 3);
    CHECK(std::count(text.begin(), text.end(), '\n') == 1);  // the bar's line is ended once
    // The shorter last status is padded to cover the longer one before it.
    const auto last = text.rfind('\r');
    const auto previous = text.rfind('\r', last - 1);
    CHECK(text.find('\n', last) - last >= last - previous);
}

TEST_CASE("quiet progress writes nothing; bad arguments are errors", "[report][progress]") {
    std::ostringstream out;
    FakeClock clock;
    gr::Progress progress("x", 3, options_with(out, clock, gr::ProgressStyle::quiet));
    progress.update(1, {{"loss", 1}});
    progress.finish("summary");
    CHECK(out.str().empty());
    CHECK_THROWS_AS(gr::Progress("x", -1, options_with(out, clock, gr::ProgressStyle::lines)), gcl::Error);
    // Written to a string stream, automatic means plain lines.
    gr::ProgressOptions automatic = options_with(out, clock, gr::ProgressStyle::automatic);
    CHECK(gr::Progress("x", 3, automatic).style() == gr::ProgressStyle::lines);
}

TEST_CASE("the metrics log is one JSON object per line that a JSON parser reads back", "[report][metrics]") {
    gcl_test::TempDir dir("metrics");
    const auto path = dir / "metrics.jsonl";
    {
        gr::MetricsLog log(path);
        log.write({{"phase", std::string("pretrain")}, {"step", std::int64_t{10}}, {"loss", 3.2107}, {"done", false}});
        log.write({{"step", std::int64_t{-3}}, {"nan", std::nan("")}, {"inf", HUGE_VAL}, {"tiny", 1e-300},
                   {"text", std::string("a \"quoted\"\\ line\nwith\ttabs \x01 and \xc3\xa9")}});
    }
    std::ifstream in(path);
    std::vector<nlohmann::json> records;
    for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
    REQUIRE(records.size() == 2);
    CHECK(records[0]["phase"] == "pretrain");
    CHECK(records[0]["step"] == 10);
    CHECK(records[0]["loss"].get<double>() == 3.2107);  // exact: 17 significant digits
    CHECK(records[0]["done"] == false);
    CHECK(records[1]["step"] == -3);
    CHECK(records[1]["nan"].is_null());
    CHECK(records[1]["inf"].is_null());
    CHECK(records[1]["tiny"].get<double>() == 1e-300);
    CHECK(records[1]["text"] == "a \"quoted\"\\ line\nwith\ttabs \x01 and \xc3\xa9");
    // Opening again empties the log unless asked to append.
    {
        gr::MetricsLog log(path, true);
        log.write({{"step", std::int64_t{11}}});
    }
    std::ifstream again(path);
    CHECK(std::count(std::istreambuf_iterator<char>(again), std::istreambuf_iterator<char>(), '\n') == 3);
    { gr::MetricsLog log(path); }
    CHECK(std::filesystem::file_size(path) == 0);
    CHECK_THROWS_WITH(gr::MetricsLog(dir / "missing" / "m.jsonl"), Catch::Contains("cannot open"));
}
