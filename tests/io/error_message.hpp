#pragma once
// The message of the gcl::Error that f throws, or "" when it throws none.
#include <string>

#include "gcl/core/error.hpp"

namespace gcl_test {

std::string error_of(auto&& f) {
    try {
        f();
    } catch (const gcl::Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace gcl_test
