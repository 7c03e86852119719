#pragma once
// A minimal PNG writer (8-bit grey or RGB, no interlace) over zlib (io/zlib.hpp), for looking at data.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/io/atomic_file.hpp"
#include "gcl/io/zlib.hpp"

namespace gcl::data {

namespace detail {

inline void put_u32_be(std::vector<unsigned char>& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}

inline void put_png_chunk(std::vector<unsigned char>& out, const char type[4], const std::vector<unsigned char>& body) {
    put_u32_be(out, static_cast<std::uint32_t>(body.size()));
    const std::size_t start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), body.begin(), body.end());
    put_u32_be(out, io::crc32_update(0, out.data() + start, out.size() - start));
}

}  // namespace detail

// Encodes an 8-bit image as PNG bytes: shape (H, W) is grey, (H, W, 3) is RGB.
inline std::vector<unsigned char> encode_png(ConstView<std::uint8_t> pixels) {
    constexpr const char* op = "write_png";
    check((pixels.rank() == 2 || (pixels.rank() == 3 && pixels.dim(2) == 3)), op,
          "expected (H, W) grey or (H, W, 3) RGB pixels, got shape ", pixels.shape());
    check(pixels.numel() > 0, op, "empty image of shape ", pixels.shape());
    const index_t h = pixels.dim(0), w = pixels.dim(1), channels = pixels.rank() == 3 ? 3 : 1;
    const Tensor<std::uint8_t> dense = Tensor<std::uint8_t>::copy_of(pixels);
    // Every scanline starts with its filter type (0: none).
    std::vector<unsigned char> raw;
    raw.reserve(static_cast<std::size_t>(h * (w * channels + 1)));
    for (index_t r = 0; r < h; ++r) {
        raw.push_back(0);
        const std::uint8_t* row = dense.data() + r * w * channels;
        raw.insert(raw.end(), row, row + w * channels);
    }
    const std::vector<unsigned char> packed = io::zlib_bytes(raw, op);

    std::vector<unsigned char> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<unsigned char> ihdr;
    detail::put_u32_be(ihdr, static_cast<std::uint32_t>(w));
    detail::put_u32_be(ihdr, static_cast<std::uint32_t>(h));
    ihdr.insert(ihdr.end(), {8, static_cast<unsigned char>(channels == 3 ? 2 : 0), 0, 0, 0});
    detail::put_png_chunk(png, "IHDR", ihdr);
    detail::put_png_chunk(png, "IDAT", packed);
    detail::put_png_chunk(png, "IEND", {});
    return png;
}

// Writes a PNG file atomically (temporary file + rename).
inline void write_png(const std::filesystem::path& path, ConstView<std::uint8_t> pixels) {
    io::write_file_atomic(path, encode_png(pixels), "write_png");
}

}  // namespace gcl::data
