#pragma once
// Checks of gcl::Error messages: the text f throws, and that it names every given part.
#include <catch2/catch.hpp>

#include <functional>
#include <initializer_list>
#include <string>

#include "gcl/core/error.hpp"

namespace gcl_test {

// The message of the gcl::Error that f throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const gcl::Error& e) {
        return e.what();
    }
    return "";
}

// f throws gcl::Error whose message contains every one of `parts` (e.g. both shapes).
inline void require_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
    const std::string what = error_of(f);
    if (what.empty()) FAIL("expected a gcl::Error");
    INFO("message: " << what);
    for (const auto& part : parts) {
        INFO("expected to find: " << part);
        CHECK(what.find(part) != std::string::npos);
    }
}

}  // namespace gcl_test
