#pragma once
// io::AtomicFile and io::write_file_atomic: the one way gcl writes a file.
//
// The bytes go to a temporary file beside the destination ("<name>.tmp"; a killed writer's
// leftover is truncated by the next write), which is fsync'ed, closed and renamed over the destination; the directory is then fsync'ed so the
// rename survives a crash. Until commit() succeeds the destination is untouched: a failed write
// (a full disk, a read-only folder, a killed process) leaves an existing file as it was, and the
// temporary file is removed. Every failure is a gcl::Error that names the operation, the path and
// the system's reason.
//
//   io::write_file_atomic("report.md", text, "write_report");
//
//   io::AtomicFile f("big.bin", "write_checkpoint");   // streaming, with patching of a header
//   f.write(header.data(), header.size());
//   f.write(payload.data(), payload.size());
//   f.write_at(0, final_header.data(), final_header.size());
//   f.commit();
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcl/core/error.hpp"

namespace gcl::io {

class AtomicFile {
public:
    AtomicFile(std::filesystem::path destination, std::string_view op) : destination_(std::move(destination)), op_(op) {
        check(!destination_.empty(), op_, "empty path");
        check(destination_.has_filename(), op_, "'", destination_.string(), "' names a folder, not a file");
        temporary_ = destination_;
        temporary_ += ".tmp";
        fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) fail_errno("cannot create ", temporary_.string());
    }
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    ~AtomicFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_) ::unlink(temporary_.c_str());
    }

    const std::filesystem::path& destination() const { return destination_; }

    // Appends n bytes.
    void write(const void* data, std::size_t n) {
        check_open();
        const char* p = static_cast<const char*>(data);
        while (n > 0) {
            const ssize_t w = ::write(fd_, p, std::min<std::size_t>(n, std::size_t{1} << 30));
            if (w < 0) {
                if (errno == EINTR) continue;
                fail_errno("writing ", destination_.string(), " failed");
            }
            p += w;
            n -= static_cast<std::size_t>(w);
        }
    }
    void write(std::span<const unsigned char> bytes) { write(bytes.data(), bytes.size()); }
    void write(std::string_view text) { write(text.data(), text.size()); }

    // Overwrites n bytes at `offset` (already written), e.g. a header whose checksums are known last.
    void write_at(std::uint64_t offset, const void* data, std::size_t n) {
        check_open();
        const char* p = static_cast<const char*>(data);
        while (n > 0) {
            const ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
            if (w < 0) {
                if (errno == EINTR) continue;
                fail_errno("writing ", destination_.string(), " failed");
            }
            p += w;
            n -= static_cast<std::size_t>(w);
            offset += static_cast<std::uint64_t>(w);
        }
    }

    // Flushes to stable storage and renames over the destination.
    void commit() {
        check_open();
        if (::fsync(fd_) != 0) fail_errno("fsync of ", temporary_.string(), " failed");
        const int fd = std::exchange(fd_, -1);
        if (::close(fd) != 0) fail_errno("closing ", temporary_.string(), " failed");
        if (::rename(temporary_.c_str(), destination_.c_str()) != 0)
            fail_errno("cannot rename ", temporary_.string(), " to ", destination_.string());
        committed_ = true;
        // Make the rename itself durable. Some file systems cannot fsync a directory; the new file
        // is in place either way, so that failure is not an error.
        std::filesystem::path dir = destination_.parent_path();
        if (dir.empty()) dir = ".";
        const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }

private:
    void check_open() const {
        check(fd_ >= 0 && !committed_, op_, destination_.string(), " is already committed");
    }
    template <class... Parts>
    [[noreturn]] void fail_errno(const Parts&... parts) const {
        const int err = errno;
        fail(op_, parts..., ": ", std::strerror(err));
    }

    std::filesystem::path destination_;
    std::filesystem::path temporary_;
    std::string op_;
    int fd_ = -1;
    bool committed_ = false;
};

// Writes a whole file atomically (see AtomicFile).
inline void write_file_atomic(const std::filesystem::path& path, std::span<const unsigned char> bytes,
                              std::string_view op) {
    AtomicFile file(path, op);
    file.write(bytes);
    file.commit();
}
inline void write_file_atomic(const std::filesystem::path& path, std::string_view text, std::string_view op) {
    AtomicFile file(path, op);
    file.write(text);
    file.commit();
}

}  // namespace gcl::io
