#pragma once
// Reading NIfTI-1 volumes: .nii and .nii.gz (gzip detected by content), every byte the header
// promises checked to be there, values converted to the requested type with the header's
// scaling applied.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/nifti/header.hpp"
#include "gcl/io/read_file.hpp"
#include "gcl/io/zlib.hpp"

namespace gcl::data {

namespace detail {

// Converts one stored element to T, applying the header's scaling.
template <class T, class Stored>
void convert_elements(const unsigned char* src, bool swap, index_t n, const NiftiHeader& h, T* dst,
                      std::string_view name) {
    const bool scaled = h.scaled() && !(h.slope() == 1.0 && h.intercept() == 0.0);
    const double slope = h.slope(), inter = h.intercept();
    for (index_t i = 0; i < n; ++i) {
        const Stored s = load_scalar<Stored>(src + static_cast<std::size_t>(i) * sizeof(Stored), swap);
        if constexpr (std::is_floating_point_v<T>) {
            dst[i] = scaled ? static_cast<T>(static_cast<double>(s) * slope + inter) : static_cast<T>(s);
        } else {
            // Integer targets must hold every value exactly (labels read as labels).
            if constexpr (std::is_integral_v<Stored>) {
                if (!scaled) {
                    check(std::in_range<T>(s), "read_nifti", name, ": value ", +s, " at element ", i,
                          " does not fit the requested integer type");
                    dst[i] = static_cast<T>(s);
                    continue;
                }
            }
            const double v = scaled ? static_cast<double>(s) * slope + inter : static_cast<double>(s);
            check(std::isfinite(v) && v == std::round(v) && v >= static_cast<double>(std::numeric_limits<T>::lowest()) &&
                      v <= static_cast<double>(std::numeric_limits<T>::max()),
                  "read_nifti", name, ": value ", v, " at element ", i,
                  " is not representable in the requested integer type (read it as float or double)");
            dst[i] = static_cast<T>(v);
        }
    }
}

template <class T>
void decode_data(const unsigned char* src, const NiftiHeader& h, T* dst, std::string_view name) {
    const bool swap = h.big_endian != (std::endian::native == std::endian::big);
    const index_t n = h.numel();
    switch (h.datatype) {
        case NiftiType::uint8: return convert_elements<T, std::uint8_t>(src, swap, n, h, dst, name);
        case NiftiType::int8: return convert_elements<T, std::int8_t>(src, swap, n, h, dst, name);
        case NiftiType::int16: return convert_elements<T, std::int16_t>(src, swap, n, h, dst, name);
        case NiftiType::uint16: return convert_elements<T, std::uint16_t>(src, swap, n, h, dst, name);
        case NiftiType::int32: return convert_elements<T, std::int32_t>(src, swap, n, h, dst, name);
        case NiftiType::uint32: return convert_elements<T, std::uint32_t>(src, swap, n, h, dst, name);
        case NiftiType::int64: return convert_elements<T, std::int64_t>(src, swap, n, h, dst, name);
        case NiftiType::float32: return convert_elements<T, float>(src, swap, n, h, dst, name);
        case NiftiType::float64: return convert_elements<T, double>(src, swap, n, h, dst, name);
    }
}

// Parses a whole file held in memory; with `header_only` the data is not decoded.
template <class T>
NiftiImage<T> parse_nifti_bytes(std::span<const unsigned char> bytes, std::string_view name, bool header_only) {
    NiftiImage<T> image;
    if (io::is_gzip(bytes)) {
        io::GzipReader gz(bytes, "read_nifti", name);
        std::vector<unsigned char> raw;
        gz.read(raw, nifti_header_size);
        image.header = parse_header(raw.data(), name);
        const std::uint64_t data_bytes =
            static_cast<std::uint64_t>(image.header.numel()) * static_cast<std::uint64_t>(nifti_type_size(image.header.datatype));
        const std::uint64_t end = static_cast<std::uint64_t>(image.header.vox_offset) + data_bytes;
        check(end <= max_deflate_ratio * bytes.size() + 4096, "read_nifti", name, ": the header promises ", end,
              " bytes, more than a ", bytes.size(), "-byte gzip stream can hold");
        if (header_only) return image;
        gz.read(raw, static_cast<std::size_t>(end) - nifti_header_size);
        gz.finish();
        image.data = Tensor<T, cpu>(image.header.shape());
        decode_data<T>(raw.data() + static_cast<std::size_t>(image.header.vox_offset), image.header,
                       image.data.data(), name);
        return image;
    }
    check(bytes.size() >= nifti_header_size, "read_nifti", name, ": truncated: ", bytes.size(),
          " bytes, a NIfTI-1 header needs 348");
    image.header = parse_header(bytes.data(), name);
    const std::uint64_t data_bytes =
        static_cast<std::uint64_t>(image.header.numel()) * static_cast<std::uint64_t>(nifti_type_size(image.header.datatype));
    const std::uint64_t end = static_cast<std::uint64_t>(image.header.vox_offset) + data_bytes;
    check(end <= bytes.size(), "read_nifti", name, ": truncated: the header needs ", end, " bytes, the file has ",
          bytes.size());
    if (header_only) return image;
    image.data = Tensor<T, cpu>(image.header.shape());
    decode_data<T>(bytes.data() + static_cast<std::size_t>(image.header.vox_offset), image.header, image.data.data(),
                   name);
    return image;
}

}  // namespace detail

// Parses a NIfTI-1 file (.nii or .nii.gz, detected by content) held in memory. Values are
// converted to T with scl_slope / scl_inter applied; an integer T must hold every value exactly.
template <class T>
NiftiImage<T> parse_nifti(std::span<const unsigned char> bytes, std::string_view name = "<memory>") {
    return detail::parse_nifti_bytes<T>(bytes, name, false);
}

// Reads a .nii or .nii.gz file (gzip is detected by content, not by the file name).
template <class T>
NiftiImage<T> read_nifti(const std::filesystem::path& path) {
    const std::vector<unsigned char> bytes = io::read_file_bytes(path, "read_nifti");
    return detail::parse_nifti_bytes<T>(bytes, path.string(), false);
}

// Reads only the header (the data is neither decompressed beyond the header nor decoded).
inline NiftiHeader read_nifti_header(const std::filesystem::path& path) {
    const std::vector<unsigned char> bytes = io::read_file_bytes(path, "read_nifti");
    return detail::parse_nifti_bytes<float>(bytes, path.string(), true).header;
}

}  // namespace gcl::data
