// libFuzzer target for the NIfTI-1 parser: any byte string must either parse into a volume whose
// shape matches its header or raise gcl::Error; never crash, leak or read out of bounds (built
// with -fsanitize=fuzzer,address by run_fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <span>

#include "gcl/data/nifti.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const unsigned char> bytes(data, size);
    try {
        const auto img = gcl::data::parse_nifti<float>(bytes, "fuzz");
        if (!(img.data.shape() == img.header.shape())) __builtin_trap();
        // Re-encoding what was read must work and read back the same shape.
        if (img.data.numel() <= 4096) {
            const auto again = gcl::data::parse_nifti<float>(gcl::data::encode_nifti<float>(img.data.cview()));
            if (!(again.data.shape() == img.data.shape())) __builtin_trap();
        }
    } catch (const gcl::Error&) {
    }
    try {
        (void)gcl::data::parse_nifti<std::uint8_t>(bytes, "fuzz");
    } catch (const gcl::Error&) {
    }
    return 0;
}
