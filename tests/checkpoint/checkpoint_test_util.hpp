#pragma once
// Shared helpers of the checkpoint tests: scratch directories and raw file bytes.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>
#include <zlib.h>

namespace checkpoint_test {

// A fresh directory under the system's temporary directory, removed with everything in it.
class ScratchDir {
public:
    ScratchDir() {
        static std::atomic<int> counter{0};
        path_ = std::filesystem::temp_directory_path() /
                ("gcl_checkpoint_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

inline std::vector<unsigned char> read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<unsigned char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<unsigned char>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline std::uint64_t get_le(const std::vector<unsigned char>& b, std::size_t at, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::uint64_t(b[at + i]) << (8 * i);
    return v;
}
inline void set_le(std::vector<unsigned char>& b, std::size_t at, int n, std::uint64_t v) {
    for (int i = 0; i < n; ++i) b[at + i] = static_cast<unsigned char>(v >> (8 * i));
}

inline std::uint32_t crc32_of(const unsigned char* p, std::size_t n) {
    return static_cast<std::uint32_t>(::crc32_z(0, p, n));
}

// Recomputes the header's payload size and both checksums after an edit, so that a test reaches
// the structural checks behind them.
inline void reseal(std::vector<unsigned char>& b) {
    set_le(b, 24, 8, b.size() - 40);
    set_le(b, 32, 4, crc32_of(b.data() + 40, b.size() - 40));
    set_le(b, 36, 4, crc32_of(b.data(), 36));
}

}  // namespace checkpoint_test
