// libFuzzer target for the ACDC Info.cfg reader: any text either parses into frame numbers and
// measurements that are in range, or raises gcl::Error; never crashes or reads out of bounds.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "gcl/data/acdc.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const gcl::data::AcdcInfo info =
            gcl::data::parse_acdc_info(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
        if (info.ed < 0 || info.es < 0 || info.frames < 0) __builtin_trap();
        if (!std::isfinite(info.height) || !std::isfinite(info.weight)) __builtin_trap();
    } catch (const gcl::Error&) {
    }
    return 0;
}
