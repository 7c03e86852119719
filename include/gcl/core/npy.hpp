#pragma once
// .npy files (NumPy's format) for host tensors, through xtensor's reader and writer.
// Loading validates everything before it allocates: magic, version, header, dtype, order, and
// that the file holds exactly the bytes the shape needs, so a corrupt file raises gcl::Error.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <xtensor/xnpy.hpp>

#include "gcl/core/tensor.hpp"
#include "gcl/core/xtensor.hpp"
#include "gcl/io/atomic_file.hpp"

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

// Reads a .npy file whose dtype is exactly T (no silent conversion).
template <class T>
Tensor<T, cpu> load_npy(const std::filesystem::path& path) {
    const std::string name = path.string();
    std::ifstream in(path, std::ios::binary);
    check(static_cast<bool>(in), "load_npy", "cannot open ", name);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

    constexpr std::size_t magic_len = 6;
    check(bytes.size() >= magic_len + 4 && std::memcmp(bytes.data(), "\x93NUMPY", magic_len) == 0, "load_npy",
          name, " is not a .npy file (bad magic)");
    const auto major = static_cast<unsigned char>(bytes[magic_len]);
    check(major == 1 || major == 2 || major == 3, "load_npy", name, ": unsupported .npy version ", int(major));
    const std::size_t len_bytes = major == 1 ? 2 : 4;
    check(bytes.size() >= magic_len + 2 + len_bytes, "load_npy", name, " is truncated in its header");
    std::size_t header_len = 0;
    for (std::size_t i = 0; i < len_bytes; ++i)
        header_len |= std::size_t(static_cast<unsigned char>(bytes[magic_len + 2 + i])) << (8 * i);
    const std::size_t data_start = magic_len + 2 + len_bytes + header_len;
    check(data_start <= bytes.size(), "load_npy", name, " is truncated in its header (", bytes.size(),
          " bytes, header ends at ", data_start, ")");

    std::string header = bytes.substr(magic_len + 2 + len_bytes, header_len);
    std::string dtype;
    bool fortran_order = false;
    std::vector<std::size_t> dims;
    try {
        xt::detail::parse_header(header, dtype, &fortran_order, dims);
    } catch (const std::exception& e) {
        fail("load_npy", name, " has a malformed header: ", e.what());
    }
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

}  // namespace gcl
