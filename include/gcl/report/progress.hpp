#pragma once
// Progress of a long loop for the person waiting on it: on a terminal a bar redrawn in place
// (step, loss terms, steps/s, ETA); when stderr is a file or a pipe (a log, CI) plain lines at
// a fixed interval, so logs stay readable; nothing in quiet mode.
//
//   report::Progress progress("pretrain", steps);
//   for (...) { ...; progress.update(step + 1, {{"loss", r.total}, {"patient", r.image_losses[0]}}); }
//   progress.finish("done in 12 s");
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "gcl/core/error.hpp"

namespace gcl::report {

enum class ProgressStyle {
    automatic,  // bar when the output is std::cerr on a terminal (and TERM is not "dumb"), else lines
    bar,
    lines,
    quiet,
};

struct ProgressOptions {
    ProgressStyle style = ProgressStyle::automatic;
    std::ostream* out = nullptr;   // nullptr: std::cerr
    double line_interval = 10.0;   // seconds between plain lines; the first and last step always print
    double bar_interval = 0.1;     // seconds between redraws of the bar
    int bar_width = 24;
    std::function<double()> clock;  // seconds on any fixed origin; empty: the steady clock
};

// One named number shown beside the progress (a loss term, a learning rate, ...).
struct ProgressTerm {
    std::string name;
    double value = 0;
};

// "42 s", "3:07" (minutes:seconds), "1:02:03" (hours:minutes:seconds); "?" when not finite.
inline std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const auto s = static_cast<long long>(std::llround(seconds));
    char buffer[48];
    if (s < 60)
        std::snprintf(buffer, sizeof buffer, "%lld s", s);
    else if (s < 3600)
        std::snprintf(buffer, sizeof buffer, "%lld:%02lld", s / 60, s % 60);
    else
        std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
    return buffer;
}

inline bool stderr_is_terminal() {
    const char* term = std::getenv("TERM");
    return ::isatty(STDERR_FILENO) == 1 && !(term && std::string_view(term) == "dumb");
}

class Progress {
public:
    Progress(std::string task, std::int64_t total, ProgressOptions options = {})
        : task_(std::move(task)), total_(total), options_(std::move(options)) {
        check(total >= 0, "report::Progress", "total steps must not be negative, got ", total);
        check(options_.line_interval >= 0 && options_.bar_interval >= 0 && options_.bar_width >= 0, "report::Progress",
              "intervals and bar width must not be negative");
        if (!options_.out) options_.out = &std::cerr;
        if (!options_.clock)
            options_.clock = [] {
                return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
            };
        if (options_.style == ProgressStyle::automatic)
            options_.style = options_.out == &std::cerr && stderr_is_terminal() ? ProgressStyle::bar : ProgressStyle::lines;
        start_ = options_.clock();
    }
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;
    ~Progress() {
        if (open_bar_) *options_.out << "\n" << std::flush;
    }

    ProgressStyle style() const { return options_.style; }
    double elapsed() const { return options_.clock() - start_; }

    // `done` steps of `total` are complete.
    void update(std::int64_t done, const std::vector<ProgressTerm>& terms = {}) {
        if (options_.style == ProgressStyle::quiet) return;
        const double now = options_.clock();
        const bool last = done >= total_;
        if (options_.style == ProgressStyle::bar) {
            if (!last && printed_ && now - last_print_ < options_.bar_interval) return;
            std::string line = status(done, terms, now, true);
            line.insert(line.begin(), '\r');
            // Blank out what a longer earlier line left behind.
            if (line.size() < drawn_length_) line.append(drawn_length_ - line.size(), ' ');
            drawn_length_ = line.size();
            *options_.out << line << std::flush;
            open_bar_ = true;
        } else {
            if (!last && printed_ && now - last_print_ < options_.line_interval) return;
            *options_.out << status(done, terms, now, false) << "\n" << std::flush;
        }
        printed_ = true;
        last_print_ = now;
    }

    // Ends the progress output, with an optional closing line.
    void finish(std::string_view summary = {}) {
        if (options_.style == ProgressStyle::quiet) return;
        if (open_bar_) *options_.out << "\n";
        open_bar_ = false;
        if (!summary.empty()) *options_.out << "[" << task_ << "] " << summary << "\n";
        *options_.out << std::flush;
    }

    // The text shown for `done` steps at time `now` (public so that callers and tests can see it).
    std::string status(std::int64_t done, const std::vector<ProgressTerm>& terms, double now, bool with_bar) const {
        const double elapsed = now - start_;
        const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
        const double eta = rate > 0 ? static_cast<double>(std::max<std::int64_t>(total_ - done, 0)) / rate
                                    : std::nan("");
        std::string s;
        s.append("[").append(task_).append("] ");
        if (with_bar && options_.bar_width > 0) {
            const double fraction = total_ > 0 ? std::clamp(static_cast<double>(done) / total_, 0.0, 1.0) : 1.0;
            const auto filled = static_cast<std::size_t>(std::floor(fraction * options_.bar_width));
            s.append("[").append(filled, '#').append(static_cast<std::size_t>(options_.bar_width) - filled, '.').append("] ");
        }
        char buffer[160];
        const int digits = static_cast<int>(std::to_string(total_).size());
        std::snprintf(buffer, sizeof buffer, "step %*lld/%lld", digits, static_cast<long long>(done),
                      static_cast<long long>(total_));
        s += buffer;
        for (const ProgressTerm& t : terms) {
            std::snprintf(buffer, sizeof buffer, "  %s %.4g", t.name.c_str(), t.value);
            s += buffer;
        }
        std::snprintf(buffer, sizeof buffer, "  %.3g steps/s", rate);
        s += buffer;
        s.append(done >= total_ ? "  " : "  ETA ").append(format_duration(done >= total_ ? elapsed : eta));
        return s;
    }

private:
    std::string task_;
    std::int64_t total_;
    ProgressOptions options_;
    double start_ = 0;
    double last_print_ = 0;
    bool printed_ = false;
    bool open_bar_ = false;
    std::size_t drawn_length_ = 0;  // characters the bar's line covers on screen
};

}  // namespace gcl::report
