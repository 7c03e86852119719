// libFuzzer target for the checkpoint reader: any byte string either reads into entries whose
// tensors can all be fetched, or raises gcl::Error; never crashes, leaks or reads out of bounds.
// Each input is tried twice: as it is, and with the header's payload size and both CRC-32s made
// to fit the bytes, so that mutations get past the checksums into the entry parser.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gcl/train/checkpoint.hpp"

namespace {
namespace tr = gcl::train;

template <class T>
void fetch(const tr::Checkpoint& c, const tr::Checkpoint::EntryInfo& e) {
    const gcl::Tensor<T> t = c.get<T>(e.name);
    if (!(t.shape() == e.shape)) __builtin_trap();
}

void read(std::vector<unsigned char> bytes) {
    try {
        const tr::Checkpoint c = tr::Checkpoint::from_bytes(std::move(bytes), "fuzz");
        for (const tr::Checkpoint::EntryInfo& e : c.entries()) {
            if (!c.contains(e.name)) __builtin_trap();
            switch (e.dtype) {
                case tr::DType::float32: fetch<float>(c, e); break;
                case tr::DType::float64: fetch<double>(c, e); break;
                case tr::DType::int64: fetch<std::int64_t>(c, e); break;
                case tr::DType::int32: fetch<std::int32_t>(c, e); break;
                case tr::DType::uint8:
                    fetch<std::uint8_t>(c, e);
                    if (e.shape.rank() == 1) (void)c.text(e.name);
                    break;
            }
        }
    } catch (const gcl::Error&) {
    }
}

void put_le(unsigned char* p, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<unsigned char> bytes(data, data + size);
    read(bytes);
    if (size >= tr::checkpoint_header_size) {
        std::copy(tr::checkpoint_magic.begin(), tr::checkpoint_magic.end(), bytes.begin());
        put_le(bytes.data() + 24, size - tr::checkpoint_header_size, 8);
        put_le(bytes.data() + 32,
               gcl::io::crc32_update(0, bytes.data() + tr::checkpoint_header_size, size - tr::checkpoint_header_size), 4);
        put_le(bytes.data() + 36, gcl::io::crc32_update(0, bytes.data(), 36), 4);
        read(std::move(bytes));
    }
    return 0;
}
