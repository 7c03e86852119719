#pragma once
// gcl::Error: the one exception type of the library. Its message starts with the operation that
// failed ("gcl::conv2d: ...") and names the offending shapes or values.
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace gcl {

class Error : public std::runtime_error {
public:
    Error(std::string_view op, const std::string& what)
        : std::runtime_error("gcl::" + std::string(op) + ": " + what), op_(op) {}
    // The operation that raised the error, without the "gcl::" prefix.
    const std::string& op() const noexcept { return op_; }

private:
    std::string op_;
};

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return out.str();
}
}  // namespace detail

// Throws gcl::Error for `op` with a message built from the streamed parts.
template <class... Parts>
[[noreturn]] void fail(std::string_view op, const Parts&... parts) {
    throw Error(op, detail::concat(parts...));
}

// Throws unless `condition` holds; the message parts are only formatted on failure.
template <class... Parts>
void check(bool condition, std::string_view op, const Parts&... parts) {
    if (!condition) fail(op, parts...);
}

}  // namespace gcl
