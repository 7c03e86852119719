#pragma once
// Checkpoint files: named tensors (float32, float64, int64, int32, uint8) with their shapes, in a
// versioned binary format guarded by CRC-32 checksums (byte layout in docs/checkpoints.md).
//
// CheckpointWriter collects named tensors (copies, or views with add_view) and writes them
// atomically through io::AtomicFile (temporary file, fsync, rename), so a crash or a failed write
// never destroys the previous checkpoint.
// Checkpoint::read loads and validates a whole file (magic, version, checksums, every length)
// before anything is used; a truncated, corrupt or foreign file raises gcl::Error, never crashes.
// Tensors are then fetched by name with dtype and shape checks.
#include <array>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/io/atomic_file.hpp"
#include "gcl/io/zlib.hpp"

namespace gcl::train {

static_assert(std::endian::native == std::endian::little,
              "gcl checkpoints store little-endian tensor data and are read and written on little-endian hosts");

// ---- element types ----

enum class DType : std::uint8_t { float32 = 1, float64 = 2, int64 = 3, int32 = 4, uint8 = 5 };

template <class T>
inline constexpr bool is_checkpoint_type_v =
    std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, std::int64_t> ||
    std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint8_t>;

template <class T>
    requires is_checkpoint_type_v<T>
constexpr DType dtype_of() {
    if constexpr (std::is_same_v<T, float>) return DType::float32;
    else if constexpr (std::is_same_v<T, double>) return DType::float64;
    else if constexpr (std::is_same_v<T, std::int64_t>) return DType::int64;
    else if constexpr (std::is_same_v<T, std::int32_t>) return DType::int32;
    else return DType::uint8;
}

inline bool is_valid_dtype(std::uint8_t code) { return code >= 1 && code <= 5; }

inline std::size_t dtype_size(DType d) {
    switch (d) {
        case DType::float32: return 4;
        case DType::float64: return 8;
        case DType::int64: return 8;
        case DType::int32: return 4;
        case DType::uint8: return 1;
    }
    return 0;
}

inline std::string_view dtype_name(DType d) {
    switch (d) {
        case DType::float32: return "float32";
        case DType::float64: return "float64";
        case DType::int64: return "int64";
        case DType::int32: return "int32";
        case DType::uint8: return "uint8";
    }
    return "invalid";
}

// ---- format constants ----

inline constexpr std::array<unsigned char, 8> checkpoint_magic = {0x89, 'G', 'C', 'L', '\r', '\n', 0x1A, '\n'};
inline constexpr std::uint32_t checkpoint_version = 1;  // the newest format this build reads and writes
inline constexpr std::size_t checkpoint_header_size = 40;
inline constexpr std::size_t checkpoint_max_name_length = 4096;

namespace detail {

inline void put_u16(std::vector<unsigned char>& out, std::uint16_t v) {
    for (int i = 0; i < 2; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
inline void put_u32(std::vector<unsigned char>& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
inline void put_u64(std::vector<unsigned char>& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
inline std::uint64_t get_le(const unsigned char* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= std::uint64_t(p[i]) << (8 * i);
    return v;
}

// The 40-byte header: magic, version, flags, entry count, payload size, payload CRC, header CRC.
inline std::vector<unsigned char> encode_header(std::uint64_t entries, std::uint64_t payload_bytes,
                                                std::uint32_t payload_crc) {
    std::vector<unsigned char> h(checkpoint_magic.begin(), checkpoint_magic.end());
    put_u32(h, checkpoint_version);
    put_u32(h, 0);  // flags: none defined in version 1
    put_u64(h, entries);
    put_u64(h, payload_bytes);
    put_u32(h, payload_crc);
    put_u32(h, io::crc32_update(0, h.data(), h.size()));
    return h;
}

}  // namespace detail

// ---- writing ----

class CheckpointWriter {
public:
    // Adds a copy of a tensor (any layout).
    template <class V>
        requires is_checkpoint_type_v<std::remove_const_t<V>>
    void add(std::string name, TensorView<V, cpu> view) {
        using T = std::remove_const_t<V>;
        check_name(name);
        auto copy = std::make_unique<Tensor<T, cpu>>(Tensor<T, cpu>::copy_of(TensorView<const T, cpu>(view)));
        const void* data = copy->data();
        const std::size_t bytes = static_cast<std::size_t>(copy->numel()) * sizeof(T);
        owned_.push_back(std::shared_ptr<void>(std::move(copy)));
        entries_.push_back(Entry{std::move(name), dtype_of<T>(), view.shape(), data, bytes});
    }
    template <class T>
        requires is_checkpoint_type_v<T>
    void add(std::string name, const Tensor<T, cpu>& tensor) {
        add(std::move(name), tensor.cview());
    }
    // Takes a contiguous tensor over, without copying it (e.g. a host copy of device memory):
    // the writer keeps it until it is destroyed.
    template <class T>
        requires is_checkpoint_type_v<T>
    void add(std::string name, Tensor<T, cpu>&& tensor) {
        check_name(name);
        auto owned = std::make_unique<Tensor<T, cpu>>(std::move(tensor));
        const void* data = owned->data();
        const Shape shape = owned->shape();
        const std::size_t bytes = static_cast<std::size_t>(owned->numel()) * sizeof(T);
        owned_.push_back(std::shared_ptr<void>(std::move(owned)));
        entries_.push_back(Entry{std::move(name), dtype_of<T>(), shape, data, bytes});
    }

    // Adds a tensor without copying it: its memory must stay valid, and unchanged, until write()
    // returns. (Views that are not contiguous are copied.)
    template <class V>
        requires is_checkpoint_type_v<std::remove_const_t<V>>
    void add_view(std::string name, TensorView<V, cpu> view) {
        using T = std::remove_const_t<V>;
        if (!view.is_contiguous()) {
            add(std::move(name), view);
            return;
        }
        check_name(name);
        entries_.push_back(Entry{std::move(name), dtype_of<T>(), view.shape(), view.data(),
                                 static_cast<std::size_t>(view.numel()) * sizeof(T)});
    }

    // Adds a single value as a rank-0 tensor (copied).
    template <class T>
        requires is_checkpoint_type_v<T>
    void add_scalar(std::string name, T value) {
        Tensor<T, cpu> t{Shape{}};
        t.data()[0] = value;
        add(std::move(name), t.cview());
    }

    // Adds text as a one-dimensional uint8 tensor (copied).
    void add_text(std::string name, std::string_view text) {
        Tensor<std::uint8_t, cpu> t{Shape{static_cast<index_t>(text.size())}};
        if (!text.empty()) std::memcpy(t.data(), text.data(), text.size());
        add(std::move(name), t.cview());
    }

    bool contains(std::string_view name) const {
        for (const Entry& e : entries_)
            if (e.name == name) return true;
        return false;
    }
    std::size_t size() const { return entries_.size(); }

    // Writes all entries to `path` atomically (temporary file, fsync, rename). On failure the
    // temporary file is removed, an existing file at `path` is untouched, and gcl::Error is raised.
    void write(const std::filesystem::path& path) const {
        check(!path.empty(), "write_checkpoint", "empty path");
        io::AtomicFile file(path, "write_checkpoint");
        const std::vector<unsigned char> zero_header(checkpoint_header_size, 0);
        file.write(zero_header.data(), zero_header.size());

        std::uint32_t crc = 0;
        std::uint64_t payload = 0;
        std::vector<unsigned char> staging;
        const auto flush = [&] {
            if (staging.empty()) return;
            crc = io::crc32_update(crc, staging.data(), staging.size());
            payload += staging.size();
            file.write(staging.data(), staging.size());
            staging.clear();
        };
        constexpr std::size_t direct_threshold = std::size_t{1} << 16;
        for (const Entry& e : entries_) {
            detail::put_u32(staging, static_cast<std::uint32_t>(e.name.size()));
            staging.insert(staging.end(), e.name.begin(), e.name.end());
            staging.push_back(static_cast<unsigned char>(e.dtype));
            staging.push_back(static_cast<unsigned char>(e.shape.rank()));
            detail::put_u16(staging, 0);  // reserved
            for (int d = 0; d < e.shape.rank(); ++d) detail::put_u64(staging, static_cast<std::uint64_t>(e.shape[d]));
            detail::put_u64(staging, e.bytes);
            if (e.bytes < direct_threshold) {
                const auto* p = static_cast<const unsigned char*>(e.data);
                staging.insert(staging.end(), p, p + e.bytes);
                if (staging.size() >= direct_threshold) flush();
            } else {
                flush();
                crc = io::crc32_update(crc, e.data, e.bytes);
                payload += e.bytes;
                file.write(e.data, e.bytes);
            }
        }
        flush();
        const std::vector<unsigned char> header = detail::encode_header(entries_.size(), payload, crc);
        file.write_at(0, header.data(), header.size());
        file.commit();
    }

private:
    struct Entry {
        std::string name;
        DType dtype;
        Shape shape;
        const void* data;
        std::size_t bytes;
    };

    void check_name(const std::string& name) const {
        check(!name.empty(), "CheckpointWriter::add", "a tensor needs a name");
        check(name.size() <= checkpoint_max_name_length, "CheckpointWriter::add", "name of ", name.size(),
              " bytes exceeds ", checkpoint_max_name_length);
        check(!contains(name), "CheckpointWriter::add", "duplicate name '", name, "'");
    }

    std::vector<Entry> entries_;
    std::vector<std::shared_ptr<void>> owned_;
};

// ---- reading ----

class Checkpoint {
public:
    struct EntryInfo {
        std::string name;
        DType dtype;
        Shape shape;
    };

    // Reads and validates a whole checkpoint file.
    static Checkpoint read(const std::filesystem::path& path) { return from_bytes(read_bytes(path), path.string()); }

    // A checkpoint file's bytes, unvalidated (e.g. to send them to other processes first).
    static std::vector<unsigned char> read_bytes(const std::filesystem::path& path) {
        const std::string source = path.string();
        std::error_code ec;
        const auto status = std::filesystem::status(path, ec);
        check(!ec && std::filesystem::exists(status), "read_checkpoint", "cannot open ", source, ": no such file");
        check(std::filesystem::is_regular_file(status), "read_checkpoint", source, " is not a regular file");
        const std::uintmax_t size = std::filesystem::file_size(path, ec);
        check(!ec, "read_checkpoint", "cannot determine the size of ", source, ": ", ec.message());
        std::ifstream in(path, std::ios::binary);
        check(static_cast<bool>(in), "read_checkpoint", "cannot open ", source);
        std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
        if (size > 0) in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
        check(static_cast<bool>(in) && static_cast<std::uintmax_t>(in.gcount()) == size, "read_checkpoint", "reading ",
              source, " failed");
        return bytes;
    }

    // Validates checkpoint bytes held in memory; `source` names them in error messages.
    static Checkpoint from_bytes(std::vector<unsigned char> bytes, std::string source = "<memory>") {
        Checkpoint c;
        c.source_ = std::move(source);
        c.bytes_ = std::move(bytes);
        c.parse();
        return c;
    }

    const std::string& source() const { return source_; }
    std::size_t size() const { return entries_.size(); }
    // The entries in file order.
    std::vector<EntryInfo> entries() const {
        std::vector<EntryInfo> out;
        for (const Entry& e : entries_) out.push_back({e.name, e.dtype, e.shape});
        return out;
    }
    bool contains(std::string_view name) const { return index_.contains(std::string(name)); }
    DType dtype(std::string_view name) const { return entry(name).dtype; }
    Shape shape(std::string_view name) const { return entry(name).shape; }

    // Throws unless `name` exists with element type T and shape `expected`; copies nothing.
    template <class T>
        requires is_checkpoint_type_v<T>
    void check_entry(std::string_view name, const Shape& expected) const {
        const Entry& e = typed_entry<T>(name);
        check(e.shape == expected, "Checkpoint", "'", name, "' in ", source_, " has shape ", e.shape,
              " but ", expected, " is expected");
    }

    // The tensor `name`, whose element type must be T.
    template <class T>
        requires is_checkpoint_type_v<T>
    Tensor<T, cpu> get(std::string_view name) const {
        const Entry& e = typed_entry<T>(name);
        Tensor<T, cpu> t(e.shape);
        if (e.bytes) std::memcpy(t.data(), bytes_.data() + e.offset, e.bytes);
        return t;
    }
    // The tensor `name`, whose element type must be T and shape `expected`.
    template <class T>
        requires is_checkpoint_type_v<T>
    Tensor<T, cpu> get(std::string_view name, const Shape& expected) const {
        check_entry<T>(name, expected);
        return get<T>(name);
    }

    // Copies the tensor `name` into `destination` (same element type and shape).
    template <class T>
        requires is_checkpoint_type_v<T>
    void copy_to(std::string_view name, TensorView<T, cpu> destination) const {
        check_entry<T>(name, destination.shape());
        const Entry& e = entry(name);
        if (destination.is_contiguous()) {
            if (e.bytes) std::memcpy(destination.data(), bytes_.data() + e.offset, e.bytes);
            return;
        }
        const Tensor<T, cpu> t = get<T>(name);
        const index_t n = t.numel();
        const Shape& s = destination.shape();
        index_t idx[max_rank] = {};
        for (index_t k = 0; k < n; ++k) {
            index_t off = 0;
            for (int d = 0; d < s.rank(); ++d) off += idx[d] * destination.stride(d);
            destination.data()[off] = t.data()[k];
            for (int d = s.rank() - 1; d >= 0; --d) {
                if (++idx[d] < s[d]) break;
                idx[d] = 0;
            }
        }
    }

    // A rank-0 tensor's value.
    template <class T>
        requires is_checkpoint_type_v<T>
    T scalar(std::string_view name) const {
        return get<T>(name, Shape{}).data()[0];
    }

    // A text entry (one-dimensional uint8).
    std::string text(std::string_view name) const {
        const Entry& e = typed_entry<std::uint8_t>(name);
        check(e.shape.rank() == 1, "Checkpoint", "'", name, "' in ", source_, " is not text (shape ", e.shape, ")");
        return std::string(reinterpret_cast<const char*>(bytes_.data() + e.offset), e.bytes);
    }

private:
    struct Entry {
        std::string name;
        DType dtype;
        Shape shape;
        std::size_t offset;  // of the data in bytes_
        std::size_t bytes;
    };

    Checkpoint() = default;

    const Entry& entry(std::string_view name) const {
        const auto it = index_.find(std::string(name));
        if (it == index_.end()) fail("Checkpoint", source_, " has no tensor named '", name, "'");
        return entries_[it->second];
    }
    template <class T>
    const Entry& typed_entry(std::string_view name) const {
        const Entry& e = entry(name);
        check(e.dtype == dtype_of<T>(), "Checkpoint", "'", name, "' in ", source_, " holds ", dtype_name(e.dtype),
              " but ", dtype_name(dtype_of<T>()), " is expected");
        return e;
    }

    [[noreturn]] void corrupt(const std::string& why) const {
        fail("read_checkpoint", source_, ": ", why);
    }

    void parse() {
        const std::size_t n = bytes_.size();
        const unsigned char* b = bytes_.data();
        if (n < checkpoint_magic.size() || std::memcmp(b, checkpoint_magic.data(), checkpoint_magic.size()) != 0)
            corrupt(n < checkpoint_magic.size() ? "file too short to be a gcl checkpoint (" + std::to_string(n) +
                                                      " bytes)"
                                                : "not a gcl checkpoint (bad magic)");
        if (n < checkpoint_header_size)
            corrupt("truncated header (" + std::to_string(n) + " of " + std::to_string(checkpoint_header_size) +
                    " bytes)");
        const auto version = static_cast<std::uint32_t>(detail::get_le(b + 8, 4));
        if (version == 0 || version > checkpoint_version)
            corrupt("format version " + std::to_string(version) + " is not supported (this build reads version 1 to " +
                    std::to_string(checkpoint_version) + ")");
        const auto header_crc = static_cast<std::uint32_t>(detail::get_le(b + 36, 4));
        if (io::crc32_update(0, b, 36) != header_crc) corrupt("header checksum mismatch (corrupt header)");
        const auto flags = static_cast<std::uint32_t>(detail::get_le(b + 12, 4));
        if (flags != 0) corrupt("unknown flags " + std::to_string(flags));
        const std::uint64_t count = detail::get_le(b + 16, 8);
        const std::uint64_t payload = detail::get_le(b + 24, 8);
        const auto payload_crc = static_cast<std::uint32_t>(detail::get_le(b + 32, 4));
        if (payload != n - checkpoint_header_size)
            corrupt("the header announces " + std::to_string(payload) + " payload bytes but the file holds " +
                    std::to_string(n - checkpoint_header_size) + (payload > n - checkpoint_header_size ? " (truncated)" : ""));
        if (io::crc32_update(0, b + checkpoint_header_size, payload) != payload_crc)
            corrupt("payload checksum mismatch (corrupt data)");

        // The checksums passed; the structure is still checked at every step, so that even a
        // well-formed but inconsistent file cannot make the reader run past its bytes.
        std::size_t pos = checkpoint_header_size;
        const auto need = [&](std::size_t k, const char* what) {
            if (k > n - pos) corrupt(std::string("truncated ") + what + " at byte " + std::to_string(pos));
        };
        if (count > payload / 16) corrupt("implausible entry count " + std::to_string(count));
        entries_.reserve(static_cast<std::size_t>(count));
        for (std::uint64_t k = 0; k < count; ++k) {
            need(4, "entry name length");
            const std::uint64_t name_len = detail::get_le(b + pos, 4);
            pos += 4;
            if (name_len == 0 || name_len > checkpoint_max_name_length)
                corrupt("entry " + std::to_string(k) + " has an invalid name length " + std::to_string(name_len));
            need(static_cast<std::size_t>(name_len), "entry name");
            std::string name(reinterpret_cast<const char*>(b + pos), static_cast<std::size_t>(name_len));
            pos += static_cast<std::size_t>(name_len);
            need(4, "entry type");
            const std::uint8_t code = b[pos];
            const int rank = b[pos + 1];
            const auto reserved = static_cast<std::uint16_t>(detail::get_le(b + pos + 2, 2));
            pos += 4;
            if (!is_valid_dtype(code))
                corrupt("entry '" + name + "' has an unknown dtype code " + std::to_string(code));
            if (rank > max_rank) corrupt("entry '" + name + "' has rank " + std::to_string(rank));
            if (reserved != 0) corrupt("entry '" + name + "' has non-zero reserved bits");
            need(static_cast<std::size_t>(rank) * 8 + 8, "entry shape");
            Shape shape;
            std::uint64_t numel = 1;
            for (int d = 0; d < rank; ++d) {
                const std::uint64_t extent = detail::get_le(b + pos, 8);
                pos += 8;
                if (extent > (std::uint64_t{1} << 48) || (extent != 0 && numel > (std::uint64_t{1} << 48) / extent))
                    corrupt("entry '" + name + "' has an implausible shape");
                numel *= extent;
                shape.push_back(static_cast<index_t>(extent));
            }
            const DType dtype = static_cast<DType>(code);
            const std::uint64_t data_bytes = detail::get_le(b + pos, 8);
            pos += 8;
            if (data_bytes != numel * dtype_size(dtype))
                corrupt("entry '" + name + "' announces " + std::to_string(data_bytes) + " data bytes but its shape " +
                        shape.str() + " of " + std::string(dtype_name(dtype)) + " needs " +
                        std::to_string(numel * dtype_size(dtype)));
            need(static_cast<std::size_t>(data_bytes), "entry data");
            if (index_.contains(name)) corrupt("duplicate entry '" + name + "'");
            index_.emplace(name, entries_.size());
            entries_.push_back(Entry{std::move(name), dtype, shape, pos, static_cast<std::size_t>(data_bytes)});
            pos += static_cast<std::size_t>(data_bytes);
        }
        if (pos != n) corrupt(std::to_string(n - pos) + " unexpected bytes after the last entry");
    }

    std::string source_;
    std::vector<unsigned char> bytes_;
    std::vector<Entry> entries_;
    std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace gcl::train
