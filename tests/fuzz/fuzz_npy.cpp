// libFuzzer target for the .npy parser: any byte string either parses into a tensor of the shape
// its header gives or raises gcl::Error; never crashes, leaks or reads out of bounds.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gcl/core/npy.hpp"

namespace {
template <class T>
void parse_as(std::span<const unsigned char> bytes) {
    try {
        const gcl::Tensor<T> t = gcl::parse_npy<T>(bytes, "fuzz");
        // The data fills the file exactly after the header.
        if (static_cast<std::size_t>(t.numel()) * sizeof(T) > bytes.size()) __builtin_trap();
    } catch (const gcl::Error&) {
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const unsigned char> bytes(data, size);
    parse_as<float>(bytes);
    parse_as<double>(bytes);
    parse_as<std::int64_t>(bytes);
    parse_as<std::uint8_t>(bytes);
    return 0;
}
