#pragma once
// MetricsLog: a training run's numbers as JSON lines, one object per record, written as they
// happen so that a plotting script can follow the file while the run goes on:
//
//   {"phase":"pretrain","step":10,"loss":3.2107,"image/patient":1.03,"lr":0.049}
//
// Each record is one write(2) of one whole line on a file opened with O_APPEND, so a reader never
// sees half a line. (This is the one file gcl streams instead of writing it atomically: an
// atomic file would only appear at the end.) Non-finite numbers are written as null, since JSON
// has no NaN or infinity.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "gcl/core/error.hpp"

namespace gcl::report {

using MetricValue = std::variant<std::int64_t, double, std::string, bool>;
using MetricsRecord = std::vector<std::pair<std::string, MetricValue>>;

namespace detail {

inline void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char buffer[8];
                    std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
                    out += buffer;
                } else {
                    out += ch;  // UTF-8 passes through unchanged
                }
        }
    }
    out += '"';
}

inline void append_json_value(std::string& out, const MetricValue& v) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
        out += std::to_string(*i);
    } else if (const auto* d = std::get_if<double>(&v)) {
        if (!std::isfinite(*d)) {
            out += "null";
        } else {
            char buffer[32];
            std::snprintf(buffer, sizeof buffer, "%.17g", *d);  // round-trips every double
            out += buffer;
        }
    } else if (const auto* s = std::get_if<std::string>(&v)) {
        append_json_string(out, *s);
    } else {
        out += std::get<bool>(v) ? "true" : "false";
    }
}

}  // namespace detail

// One record as a JSON object on one line (with the newline).
inline std::string metrics_json_line(const MetricsRecord& record) {
    std::string line = "{";
    for (std::size_t i = 0; i < record.size(); ++i) {
        if (i) line += ',';
        detail::append_json_string(line, record[i].first);
        line += ':';
        detail::append_json_value(line, record[i].second);
    }
    line += "}\n";
    return line;
}

class MetricsLog {
public:
    // Opens (creating, or emptying unless `append`) the log at `path`.
    explicit MetricsLog(std::filesystem::path path, bool append = false) : path_(std::move(path)) {
        const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (append ? 0 : O_TRUNC);
        fd_ = ::open(path_.c_str(), flags, 0644);
        check(fd_ >= 0, "report::MetricsLog", "cannot open ", path_.string(), ": ", std::strerror(errno));
    }
    MetricsLog(const MetricsLog&) = delete;
    MetricsLog& operator=(const MetricsLog&) = delete;
    ~MetricsLog() {
        if (fd_ >= 0) ::close(fd_);
    }

    const std::filesystem::path& path() const { return path_; }

    void write(const MetricsRecord& record) {
        const std::string line = metrics_json_line(record);
        std::size_t written = 0;
        while (written < line.size()) {
            const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
            if (n < 0 && errno == EINTR) continue;
            check(n > 0, "report::MetricsLog", "cannot write to ", path_.string(), ": ",
                  n < 0 ? std::strerror(errno) : "no progress");
            written += static_cast<std::size_t>(n);
        }
    }

private:
    std::filesystem::path path_;
    int fd_ = -1;
};

}  // namespace gcl::report
