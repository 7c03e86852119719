#pragma once
// What every subcommand of the `gcl` program shares: option validators whose messages name the
// bad value, patient lists, the options every subcommand has (--threads, --quiet), the run's
// config file, and progress output.
#include <omp.h>

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/data/acdc.hpp"
#include "gcl/data/slice.hpp"
#include "gcl/report/progress.hpp"

namespace gcl_cli {

namespace fs = std::filesystem;

// A usage error found after parsing (two options that do not fit together, a folder without
// patients): reported like CLI11's own errors, exit code 2.
[[noreturn]] inline void usage_error(const std::string& option, const std::string& message) {
    throw CLI::ValidationError(option, message);
}

// ---- validators: the message says what the value must be; CLI11 prefixes the option's name ----

inline bool parse_integer(const std::string& text, std::int64_t& value) {
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    return ec == std::errc() && ptr == end;
}

inline bool parse_number(const std::string& text, double& value) {
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    return ec == std::errc() && ptr == end && std::isfinite(value);
}

inline CLI::Validator integer_at_least(std::int64_t lo) {
    return CLI::Validator(
        [lo](std::string& text) -> std::string {
            std::int64_t v = 0;
            if (!parse_integer(text, v)) return "'" + text + "' is not an integer";
            if (v < lo) return text + " is below the smallest allowed value, " + std::to_string(lo);
            return {};
        },
        "INT >= " + std::to_string(lo), "integer_at_least");
}

inline CLI::Validator integer_in(std::int64_t lo, std::int64_t hi) {
    return CLI::Validator(
        [lo, hi](std::string& text) -> std::string {
            std::int64_t v = 0;
            if (!parse_integer(text, v)) return "'" + text + "' is not an integer";
            if (v < lo || v > hi) return text + " is outside " + std::to_string(lo) + " to " + std::to_string(hi);
            return {};
        },
        "INT in " + std::to_string(lo) + ".." + std::to_string(hi), "integer_in");
}

inline std::string number_text(double v) {
    std::ostringstream out;
    out << v;
    return out.str();
}

// A finite number in [lo, hi]; with `open_low`, lo itself is excluded.
inline CLI::Validator number_in(double lo, double hi, bool open_low = false) {
    const std::string range = (open_low ? "(" : "[") + number_text(lo) + ", " +
                              (std::isinf(hi) ? std::string("inf)") : number_text(hi) + "]");
    return CLI::Validator(
        [lo, hi, open_low, range](std::string& text) -> std::string {
            double v = 0;
            if (!parse_number(text, v)) return "'" + text + "' is not a finite number";
            if (v < lo || v > hi || (open_low && v == lo)) return text + " is outside " + range;
            return {};
        },
        "NUMBER in " + range, "number_in");
}

inline CLI::Validator positive_number() { return number_in(0, HUGE_VAL, true); }
inline CLI::Validator non_negative_number() { return number_in(0, HUGE_VAL); }
inline CLI::Validator fraction() { return number_in(0, 1); }

// ---- patient lists: "1-40,45" ----

inline std::vector<std::int64_t> parse_patient_list(const std::string& text, std::string& error) {
    std::vector<std::int64_t> ids;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        const std::string part = text.substr(start, comma - start);
        const std::size_t dash = part.find('-', 1);
        std::int64_t a = 0, b = 0;
        const bool ok = dash == std::string::npos ? parse_integer(part, a) && (b = a, true)
                                                  : parse_integer(part.substr(0, dash), a) &&
                                                        parse_integer(part.substr(dash + 1), b);
        if (!ok || a < 0 || b < a || b - a > 1000000) {
            error = "'" + part + "' in '" + text + "' is not a patient id or a range like 1-40";
            return {};
        }
        for (std::int64_t id = a; id <= b; ++id) ids.push_back(id);
        start = comma + 1;
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

inline CLI::Validator patient_list() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            std::string error;
            parse_patient_list(text, error);
            return error;
        },
        "IDS like 1-40,45", "patient_list");
}

// The patients of an ACDC-layout folder that a --patients list selects (all when empty); a
// usage error when the list names a patient the folder lacks or nothing is left.
inline std::vector<std::int64_t> select_patients(const fs::path& root, const std::string& list,
                                                 const std::string& data_flag = "--data") {
    const std::vector<std::int64_t> present = gcl::data::acdc_patients(root);
    if (present.empty()) usage_error(data_flag, root.string() + " holds no patientNNN folders with an Info.cfg");
    if (list.empty()) return present;
    std::string error;
    const std::vector<std::int64_t> wanted = parse_patient_list(list, error);
    for (std::int64_t id : wanted)
        if (!std::binary_search(present.begin(), present.end(), id))
            usage_error("--patients", gcl::data::acdc_patient_name(id) + " is not in " + root.string());
    return wanted;
}

// ---- the phases of a volume: "ED,ES" ----

inline std::vector<gcl::data::Phase> parse_phases(const std::vector<std::string>& names) {
    std::vector<gcl::data::Phase> phases;
    for (const std::string& n : names) phases.push_back(n == "ED" ? gcl::data::Phase::ed : gcl::data::Phase::es);
    return phases;
}

// ---- options of every subcommand ----

struct CommonOptions {
    int threads = 0;  // 0: OpenMP's default
    bool quiet = false;

    void add_to(CLI::App& app) {
        app.add_option("--threads", threads,
                       "CPU threads (0: OpenMP's default); results repeat exactly for the same seed and thread count")
            ->check(integer_at_least(0))
            ->capture_default_str();
        app.add_flag("--quiet", quiet, "No progress or summary output; errors only")->default_str("false");
    }
    void apply() const {
        if (threads > 0) omp_set_num_threads(threads);
    }
    gcl::report::ProgressOptions progress(const std::string& unit = "step") const {
        gcl::report::ProgressOptions o;
        o.unit = unit;
        if (quiet) o.style = gcl::report::ProgressStyle::quiet;
        return o;
    }
};

// Prints an informational line unless --quiet.
template <class... Parts>
void say(const CommonOptions& common, const Parts&... parts) {
    if (!common.quiet) std::cout << gcl::detail::concat(parts...) << std::endl;
}

// One subcommand: its options, their cross-checks, and the work.
class Command {
public:
    virtual ~Command() = default;
    CLI::App* app = nullptr;
    CommonOptions common;

    // Registers the subcommand and its options on the main program.
    virtual void add_to(CLI::App& parent) = 0;
    // Checks what CLI11's per-option validators cannot (options together, folder contents);
    // throws CLI::ValidationError (exit code 2). Runs before any work.
    virtual void validate() = 0;
    // The output folder, where the config file goes; empty when the command writes none.
    virtual fs::path output_folder() const = 0;
    // The work; gcl::Error (exit code 1) on failure.
    virtual void run() = 0;
};

std::unique_ptr<Command> make_phantom_command();
std::unique_ptr<Command> make_pretrain_command();
std::unique_ptr<Command> make_finetune_command();
std::unique_ptr<Command> make_predict_command();
std::unique_ptr<Command> make_evaluate_command();

}  // namespace gcl_cli
