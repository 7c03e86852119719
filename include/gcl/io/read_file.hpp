#pragma once
// io::read_file_bytes: a whole file into memory, with errors that name the caller's operation.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>
#include <vector>

#include "gcl/core/error.hpp"

namespace gcl::io {

inline std::vector<unsigned char> read_file_bytes(const std::filesystem::path& path, std::string_view op) {
    std::ifstream in(path, std::ios::binary);
    check(static_cast<bool>(in), op, "cannot open ", path.string());
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    check(!in.bad(), op, "failed reading ", path.string());
    return bytes;
}

}  // namespace gcl::io
