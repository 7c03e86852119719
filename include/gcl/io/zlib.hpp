#pragma once
// zlib for every gcl file format: gzip streams read and written (NIfTI .nii.gz), zlib streams
// written (PNG image data), and CRC-32 (PNG chunks, checkpoints). Errors name the caller's
// operation and file.
//
//   io::GzipReader gz(bytes, "read_nifti", path);   // gz.read(out, n); gz.finish();
//   auto packed = io::gzip_bytes(bytes, "write_nifti");
//   auto stream = io::zlib_bytes(bytes, "write_png");
//   std::uint32_t crc = io::crc32_update(0, data, n);
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gcl/core/error.hpp"

namespace gcl::io {

// CRC-32 (the polynomial of gzip, PNG and zip) of n bytes, continuing from crc (0 to start).
inline std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n) {
    return static_cast<std::uint32_t>(::crc32_z(crc, static_cast<const Bytef*>(data), n));
}

inline bool is_gzip(std::span<const unsigned char> bytes) {
    return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// Decompresses a gzip stream (one or more members) into exactly `wanted` bytes and checks that
// every member ends with a valid checksum. Output beyond `wanted` (trailing padding) is read to
// verify the checksum and dropped.
class GzipReader {
public:
    GzipReader(std::span<const unsigned char> in, std::string_view op, std::string_view name) : op_(op), name_(name) {
        check(in.size() <= std::numeric_limits<uInt>::max(), op_, name_, ": compressed file too large");
        stream_.next_in = const_cast<Bytef*>(in.data());
        stream_.avail_in = static_cast<uInt>(in.size());
        // 15 + 16: a gzip wrapper only, with CRC-32 and length verification.
        check(inflateInit2(&stream_, 15 + 16) == Z_OK, op_, name_, ": cannot initialise zlib");
        open_ = true;
    }
    GzipReader(const GzipReader&) = delete;
    GzipReader& operator=(const GzipReader&) = delete;
    ~GzipReader() {
        if (open_) inflateEnd(&stream_);
    }

    // Appends exactly n decompressed bytes to out, or throws when the stream ends first.
    void read(std::vector<unsigned char>& out, std::size_t n) {
        const std::size_t start = out.size();
        out.resize(start + n);
        std::size_t got = 0;
        while (got < n) {
            const std::size_t chunk = std::min<std::size_t>(n - got, std::numeric_limits<uInt>::max());
            const std::size_t produced = inflate_into(out.data() + start + got, chunk);
            if (produced == 0) {
                out.resize(start + got);
                fail(op_, name_, ": truncated: the compressed stream ends after ", start + got,
                     " bytes, the header needs ", start + n);
            }
            got += produced;
        }
    }

    // Decompresses to the end of the stream, discarding the output, to verify the checksums.
    void finish() {
        unsigned char scratch[16384];
        while (inflate_into(scratch, sizeof(scratch)) > 0) {
        }
    }

private:
    // Inflates up to n bytes into dst; 0 means the whole stream has ended cleanly.
    std::size_t inflate_into(unsigned char* dst, std::size_t n) {
        stream_.next_out = dst;
        stream_.avail_out = static_cast<uInt>(n);
        while (stream_.avail_out > 0) {
            if (ended_) {
                // Another gzip member may follow (concatenated .gz files are valid gzip).
                if (stream_.avail_in >= 2 && stream_.next_in[0] == 0x1f && stream_.next_in[1] == 0x8b) {
                    check(inflateReset(&stream_) == Z_OK, op_, name_, ": zlib reset failed");
                    ended_ = false;
                } else {
                    break;
                }
            }
            const int rc = inflate(&stream_, Z_NO_FLUSH);
            if (rc == Z_STREAM_END) {
                ended_ = true;
                continue;
            }
            if (rc == Z_BUF_ERROR && stream_.avail_in == 0)
                fail(op_, name_, ": truncated gzip stream (ends without its checksum)");
            if (rc != Z_OK)
                fail(op_, name_, ": corrupt gzip stream (",
                     stream_.msg ? stream_.msg : "zlib error " + std::to_string(rc), ")");
        }
        return n - stream_.avail_out;
    }

    z_stream stream_{};
    std::string op_;
    std::string name_;
    bool open_ = false;
    bool ended_ = false;
};

// Compresses bytes into one gzip member (deflate, default level).
inline std::vector<unsigned char> gzip_bytes(std::span<const unsigned char> in, std::string_view op) {
    z_stream s{};
    check(deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, op,
          "cannot initialise zlib");
    std::vector<unsigned char> out;
    unsigned char buf[65536];
    std::size_t pos = 0;
    int rc = Z_OK;
    do {
        const std::size_t chunk = std::min<std::size_t>(in.size() - pos, std::size_t{1} << 30);
        s.next_in = const_cast<Bytef*>(in.data() + pos);
        s.avail_in = static_cast<uInt>(chunk);
        pos += chunk;
        const int flush = pos == in.size() ? Z_FINISH : Z_NO_FLUSH;
        do {
            s.next_out = buf;
            s.avail_out = sizeof(buf);
            rc = deflate(&s, flush);
            if (rc == Z_STREAM_ERROR) {
                deflateEnd(&s);
                fail(op, "zlib compression failed");
            }
            out.insert(out.end(), buf, buf + (sizeof(buf) - s.avail_out));
        } while (s.avail_out == 0);
    } while (pos < in.size());
    deflateEnd(&s);
    check(rc == Z_STREAM_END, op, "zlib compression did not finish");
    return out;
}

// Compresses bytes into one zlib stream (deflate at the given level, 0 to 9), as PNG stores
// image data.
inline std::vector<unsigned char> zlib_bytes(std::span<const unsigned char> in, std::string_view op, int level = 9) {
    check(level >= 0 && level <= 9, op, "zlib level must be 0 to 9, got ", level);
    check(in.size() <= std::numeric_limits<uLong>::max(), op, "too many bytes to compress: ", in.size());
    uLongf packed_size = compressBound(static_cast<uLong>(in.size()));
    std::vector<unsigned char> packed(packed_size);
    check(compress2(packed.data(), &packed_size, in.data(), static_cast<uLong>(in.size()), level) == Z_OK, op,
          "zlib compression failed");
    packed.resize(packed_size);
    return packed;
}

}  // namespace gcl::io
