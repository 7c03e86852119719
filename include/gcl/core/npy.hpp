#pragma once
// .npy files (NumPy's format) for host tensors: written through xtensor's writer, read by a
// strict parser of NumPy's header (any key order, as the format requires).
// Loading validates everything before it allocates: magic, version, header, dtype, order, and
// that the file holds exactly the bytes the shape needs, so a corrupt file raises gcl::Error.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <xtensor/xnpy.hpp>

#include "gcl/core/tensor.hpp"
#include "gcl/core/xtensor.hpp"
#include "gcl/io/atomic_file.hpp"
#include "gcl/io/read_file.hpp"

namespace gcl {

// The NumPy type string of T, e.g. "<f4" for float.
template <class T>
std::string npy_dtype() {
    return xt::detail::build_typestring<T>();
}

// Writes a host view as a row-major .npy file, atomically (io::write_file_atomic).
template <class T>
void save_npy(const std::filesystem::path& path, TensorView<const T, cpu> v) {
    const Tensor<std::remove_const_t<T>, cpu> contiguous = Tensor<std::remove_const_t<T>, cpu>::copy_of(v);
    std::ostringstream encoded;
    xt::detail::dump_npy_stream(encoded, as_xtensor(contiguous.cview()));
    io::write_file_atomic(path, std::move(encoded).str(), "save_npy");
}
template <class T>
void save_npy(const std::filesystem::path& path, const Tensor<T, cpu>& t) {
    save_npy<T>(path, t.cview());
}

namespace detail {

struct NpyHeader {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::size_t> shape;
};

// NumPy's header dictionary, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), },
// keys in any order, parsed strictly: anything else is gcl::Error naming the input.
inline NpyHeader parse_npy_header(std::string_view h, std::string_view name) {
    std::size_t pos = 0;
    const auto bad = [&](std::string_view what) {
        fail("load_npy", name, " has a malformed header (", what, " at header byte ", pos, ")");
    };
    const auto skip_space = [&] {
        while (pos < h.size() && (h[pos] == ' ' || h[pos] == '\n' || h[pos] == '\t')) ++pos;
    };
    const auto expect = [&](char c) {
        skip_space();
        if (pos >= h.size() || h[pos] != c) bad(std::string("expected '") + c + "'");
        ++pos;
    };
    const auto next_is = [&](char c) {
        skip_space();
        return pos < h.size() && h[pos] == c;
    };
    const auto quoted = [&] {
        skip_space();
        if (pos >= h.size() || (h[pos] != '\'' && h[pos] != '"')) bad("expected a quoted string");
        const char quote = h[pos++];
        const std::size_t end = h.find(quote, pos);
        if (end == std::string_view::npos) bad("unterminated string");
        const std::string text(h.substr(pos, end - pos));
        pos = end + 1;
        return text;
    };
    NpyHeader out;
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    while (!next_is('}')) {
        const std::string key = quoted();
        expect(':');
        skip_space();
        if (key == "descr") {
            out.descr = quoted();
            has_descr = true;
        } else if (key == "fortran_order") {
            if (h.substr(pos, 4) == "True") {
                out.fortran_order = true;
                pos += 4;
            } else if (h.substr(pos, 5) == "False") {
                pos += 5;
            } else {
                bad("fortran_order must be True or False");
            }
            has_order = true;
        } else if (key == "shape") {
            expect('(');
            while (!next_is(')')) {
                std::size_t extent = 0, digits = 0;
                while (pos < h.size() && h[pos] >= '0' && h[pos] <= '9') {
                    if (++digits > 15) bad("an extent too large");
                    extent = extent * 10 + static_cast<std::size_t>(h[pos++] - '0');
                }
                if (digits == 0) bad("expected an extent");
                out.shape.push_back(extent);
                if (!next_is(',')) break;
                ++pos;
            }
            expect(')');
            has_shape = true;
        } else {
            bad("unknown key '" + key + "'");
        }
        if (!next_is(',')) break;
        ++pos;
    }
    expect('}');
    skip_space();
    if (pos != h.size()) bad("unexpected text after the dictionary");
    if (!has_descr || !has_order || !has_shape) bad("missing 'descr', 'fortran_order' or 'shape'");
    return out;
}

}  // namespace detail

// Parses .npy bytes held in memory whose dtype is exactly T (no silent conversion); `name` names
// them in error messages.
template <class T>
Tensor<T, cpu> parse_npy(std::span<const unsigned char> bytes, std::string_view name = "<memory>") {
    constexpr std::size_t magic_len = 6;
    check(bytes.size() >= magic_len + 4 && std::memcmp(bytes.data(), "\x93NUMPY", magic_len) == 0, "load_npy",
          name, " is not a .npy file (bad magic)");
    const auto major = bytes[magic_len];
    check(major == 1 || major == 2 || major == 3, "load_npy", name, ": unsupported .npy version ", int(major));
    const std::size_t len_bytes = major == 1 ? 2 : 4;
    check(bytes.size() >= magic_len + 2 + len_bytes, "load_npy", name, " is truncated in its header");
    std::size_t header_len = 0;
    for (std::size_t i = 0; i < len_bytes; ++i) header_len |= std::size_t(bytes[magic_len + 2 + i]) << (8 * i);
    const std::size_t header_start = magic_len + 2 + len_bytes;
    check(header_len <= bytes.size() - header_start, "load_npy", name, " is truncated in its header (", bytes.size(),
          " bytes, header ends at ", header_start + header_len, ")");
    const std::size_t data_start = header_start + header_len;

    const detail::NpyHeader header = detail::parse_npy_header(
        std::string_view(reinterpret_cast<const char*>(bytes.data()) + header_start, header_len), name);
    const std::string& dtype = header.descr;
    const bool fortran_order = header.fortran_order;
    const std::vector<std::size_t>& dims = header.shape;
    check(dtype == npy_dtype<T>(), "load_npy", name, " holds dtype '", dtype, "' but '", npy_dtype<T>(),
          "' was requested");
    check(!fortran_order, "load_npy", name, " is in Fortran order; only C order is supported");
    check(dims.size() <= static_cast<std::size_t>(max_rank), "load_npy", name, " has rank ", dims.size(),
          " (at most ", max_rank, " is supported)");

    Shape shape;
    std::size_t count = 1;
    for (std::size_t d : dims) {
        check(d <= (std::size_t{1} << 40) && (d == 0 || count <= (std::size_t{1} << 40) / d), "load_npy", name,
              " has an implausible shape");
        count *= d;
        shape.push_back(static_cast<index_t>(d));
    }
    const std::size_t expected = count * sizeof(T);
    check(bytes.size() - data_start == expected, "load_npy", name, " should hold ", expected,
          " bytes of data for shape ", shape, " but holds ", bytes.size() - data_start);

    Tensor<T, cpu> t(shape);
    if (expected) std::memcpy(t.data(), bytes.data() + data_start, expected);
    return t;
}

// Reads a .npy file whose dtype is exactly T (no silent conversion).
template <class T>
Tensor<T, cpu> load_npy(const std::filesystem::path& path) {
    const std::string name = path.string();
    const std::vector<unsigned char> bytes = io::read_file_bytes(path, "load_npy");
    return parse_npy<T>(std::span<const unsigned char>(bytes), name);
}

}  // namespace gcl
