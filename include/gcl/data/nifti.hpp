#pragma once
// NIfTI-1 volumes: single-file .nii and gzip-compressed .nii.gz, read and written.
//
// Layout: NIfTI stores x fastest, then y, z, t. gcl keeps the bytes in that order and reverses
// the extents, so a volume of NIfTI dims (nx, ny, nz) is a row-major Tensor of shape
// (nz, ny, nx): element (z, y, x) is voxel (x, y, z) and no transpose ever happens.
//
// Reading validates the whole header before it allocates (sizes, data type, offsets, transform
// fields) and checks that the file holds every byte the header promises; a gzip stream must end
// with a valid checksum. Anything else is a gcl::Error naming the file. Writing goes through a
// temporary file that is renamed into place, so a crash never leaves a half-written volume.
#include <zlib.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/io/atomic_file.hpp"

namespace gcl::data {

// The element types gcl reads and writes (NIfTI-1 datatype codes).
enum class NiftiType : std::int16_t {
    uint8 = 2,
    int16 = 4,
    int32 = 8,
    float32 = 16,
    float64 = 64,
    int8 = 256,
    uint16 = 512,
    uint32 = 768,
    int64 = 1024,
};

inline std::optional<NiftiType> nifti_type_from_code(int code) {
    switch (code) {
        case 2: case 4: case 8: case 16: case 64: case 256: case 512: case 768: case 1024:
            return static_cast<NiftiType>(code);
        default:
            return std::nullopt;
    }
}

inline int nifti_type_size(NiftiType t) {
    switch (t) {
        case NiftiType::uint8: case NiftiType::int8: return 1;
        case NiftiType::int16: case NiftiType::uint16: return 2;
        case NiftiType::int32: case NiftiType::uint32: case NiftiType::float32: return 4;
        case NiftiType::float64: case NiftiType::int64: return 8;
    }
    fail("nifti_type_size", "unknown datatype code ", static_cast<int>(t));
}

inline const char* nifti_type_name(NiftiType t) {
    switch (t) {
        case NiftiType::uint8: return "uint8";
        case NiftiType::int16: return "int16";
        case NiftiType::int32: return "int32";
        case NiftiType::float32: return "float32";
        case NiftiType::float64: return "float64";
        case NiftiType::int8: return "int8";
        case NiftiType::uint16: return "uint16";
        case NiftiType::uint32: return "uint32";
        case NiftiType::int64: return "int64";
    }
    return "unknown";
}

// The NIfTI datatype that stores a C++ element type T exactly.
template <class T>
constexpr NiftiType nifti_type_of() {
    if constexpr (std::is_same_v<T, std::uint8_t>) return NiftiType::uint8;
    else if constexpr (std::is_same_v<T, std::int16_t>) return NiftiType::int16;
    else if constexpr (std::is_same_v<T, std::int32_t>) return NiftiType::int32;
    else if constexpr (std::is_same_v<T, float>) return NiftiType::float32;
    else if constexpr (std::is_same_v<T, double>) return NiftiType::float64;
    else if constexpr (std::is_same_v<T, std::int8_t>) return NiftiType::int8;
    else if constexpr (std::is_same_v<T, std::uint16_t>) return NiftiType::uint16;
    else if constexpr (std::is_same_v<T, std::uint32_t>) return NiftiType::uint32;
    else if constexpr (std::is_same_v<T, std::int64_t>) return NiftiType::int64;
    else static_assert(sizeof(T) == 0, "gcl::data: no NIfTI datatype for this element type");
}

// A 4 x 4 voxel-to-world matrix (world in millimetres, RAS+ as NIfTI defines it).
using Affine = Eigen::Matrix4d;

// NIfTI-1 transform codes (qform_code / sform_code).
namespace xform {
inline constexpr int unknown = 0;
inline constexpr int scanner = 1;
inline constexpr int aligned = 2;
inline constexpr int talairach = 3;
inline constexpr int mni = 4;
}  // namespace xform

// The fields of a NIfTI-1 header that describe the volume.
struct NiftiHeader {
    std::vector<index_t> dim;  // extents in NIfTI order: dim[0] is x, dim[1] is y, ...
    NiftiType datatype = NiftiType::float32;
    std::array<double, 8> pixdim{1, 1, 1, 1, 1, 1, 1, 1};  // pixdim[0] is qfac, pixdim[i] spacing of dim i-1
    double vox_offset = 352;
    double scl_slope = 0;  // 0 or NaN: the stored values are the values
    double scl_inter = 0;
    int xyzt_units = 0;
    int qform_code = 0;
    int sform_code = 0;
    double quatern_b = 0, quatern_c = 0, quatern_d = 0;
    double qoffset_x = 0, qoffset_y = 0, qoffset_z = 0;
    std::array<std::array<double, 4>, 3> srow{};  // rows of the sform affine
    std::string description;
    bool big_endian = false;  // byte order of the file it was read from

    int rank() const { return static_cast<int>(dim.size()); }
    index_t numel() const {
        index_t n = 1;
        for (index_t d : dim) n *= d;
        return n;
    }
    // The tensor shape: the NIfTI extents reversed (z, y, x for a 3D volume).
    Shape shape() const {
        Shape s;
        for (auto it = dim.rbegin(); it != dim.rend(); ++it) s.push_back(*it);
        return s;
    }
    // Voxel spacing along NIfTI dims x, y, z, ... (millimetres for spatial dims by default).
    std::vector<double> spacing() const {
        std::vector<double> s;
        for (int d = 0; d < rank(); ++d) s.push_back(pixdim[static_cast<std::size_t>(d + 1)]);
        return s;
    }
    // Whether values are stored scaled: value = stored * scl_slope + scl_inter.
    bool scaled() const { return std::isfinite(scl_slope) && scl_slope != 0.0; }
    double slope() const { return scaled() ? scl_slope : 1.0; }
    double intercept() const { return scaled() && std::isfinite(scl_inter) ? scl_inter : 0.0; }

    // The qform affine (NIfTI method 2): quaternion rotation, pixdim scaling, qfac, offset.
    Affine qform() const {
        double b = quatern_b, c = quatern_c, d = quatern_d;
        double a = 1.0 - (b * b + c * c + d * d);
        if (a < 1e-7) {  // a 180 degree rotation: renormalise (b, c, d), as nifti1_io does
            const double norm = std::sqrt(b * b + c * c + d * d);
            if (norm > 0) {
                b /= norm;
                c /= norm;
                d /= norm;
            }
            a = 0;
        } else {
            a = std::sqrt(a);
        }
        const double qfac = pixdim[0] < 0 ? -1.0 : 1.0;
        const double dx = pixdim[1], dy = pixdim[2], dz = qfac * pixdim[3];
        Affine m = Affine::Identity();
        m(0, 0) = (a * a + b * b - c * c - d * d) * dx;
        m(0, 1) = 2 * (b * c - a * d) * dy;
        m(0, 2) = 2 * (b * d + a * c) * dz;
        m(1, 0) = 2 * (b * c + a * d) * dx;
        m(1, 1) = (a * a + c * c - b * b - d * d) * dy;
        m(1, 2) = 2 * (c * d - a * b) * dz;
        m(2, 0) = 2 * (b * d - a * c) * dx;
        m(2, 1) = 2 * (c * d + a * b) * dy;
        m(2, 2) = (a * a + d * d - c * c - b * b) * dz;
        m(0, 3) = qoffset_x;
        m(1, 3) = qoffset_y;
        m(2, 3) = qoffset_z;
        return m;
    }
    // The sform affine (NIfTI method 3): the three srow rows.
    Affine sform() const {
        Affine m = Affine::Identity();
        for (int r = 0; r < 3; ++r)
            for (int c = 0; c < 4; ++c) m(r, c) = srow[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)];
        return m;
    }
    // The best voxel-to-world affine: sform when its code is set, else qform when its code is
    // set, else the NIfTI method 1 fallback diag(pixdim x, y, z) with the origin at voxel 0.
    Affine affine() const {
        if (sform_code > 0) return sform();
        if (qform_code > 0) return qform();
        Affine m = Affine::Identity();
        for (int d = 0; d < 3; ++d) m(d, d) = d < rank() ? pixdim[static_cast<std::size_t>(d + 1)] : 1.0;
        return m;
    }
};

// A volume and its header. data has the header's shape() and holds the scaled values.
template <class T>
struct NiftiImage {
    NiftiHeader header;
    Tensor<T, cpu> data;
};

namespace detail {

inline constexpr std::size_t nifti_header_size = 348;
inline constexpr std::size_t nifti_data_offset = 352;  // header plus the 4-byte extension flag
// Deflate cannot compress better than about 1032:1, so a gzip stream that claims more output
// than this per input byte is not a NIfTI file (and must not make the reader allocate).
inline constexpr std::uint64_t max_deflate_ratio = 1040;
inline constexpr std::uint64_t max_nifti_bytes = std::uint64_t{1} << 40;

template <class U>
U load_scalar(const unsigned char* p, bool swap) {
    unsigned char b[sizeof(U)];
    std::memcpy(b, p, sizeof(U));
    if (swap) std::reverse(b, b + sizeof(U));
    U v;
    std::memcpy(&v, b, sizeof(U));
    return v;
}

template <class U>
void store_scalar(unsigned char* p, U v) {
    static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big);
    unsigned char b[sizeof(U)];
    std::memcpy(b, &v, sizeof(U));
    if constexpr (std::endian::native == std::endian::big) std::reverse(b, b + sizeof(U));
    std::memcpy(p, b, sizeof(U));
}

// Reads a whole file into memory.
inline std::vector<unsigned char> read_file_bytes(const std::filesystem::path& path, std::string_view op) {
    std::ifstream in(path, std::ios::binary);
    check(static_cast<bool>(in), op, "cannot open ", path.string());
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    check(!in.bad(), op, "failed reading ", path.string());
    return bytes;
}

inline bool is_gzip(std::span<const unsigned char> bytes) {
    return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// Decompresses a gzip stream (one or more members) into exactly `wanted` bytes and checks that
// every member ends with a valid checksum. Output beyond `wanted` (trailing padding) is read to
// verify the checksum and dropped.
class GzipReader {
public:
    GzipReader(std::span<const unsigned char> in, std::string_view name) : name_(name) {
        check(in.size() <= std::numeric_limits<uInt>::max(), "read_nifti", name_, ": compressed file too large");
        stream_.next_in = const_cast<Bytef*>(in.data());
        stream_.avail_in = static_cast<uInt>(in.size());
        // 15 + 16: a gzip wrapper only, with CRC-32 and length verification.
        check(inflateInit2(&stream_, 15 + 16) == Z_OK, "read_nifti", name_, ": cannot initialise zlib");
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
                fail("read_nifti", name_, ": truncated: the compressed stream ends after ", start + got,
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
                    check(inflateReset(&stream_) == Z_OK, "read_nifti", name_, ": zlib reset failed");
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
                fail("read_nifti", name_, ": truncated gzip stream (ends without its checksum)");
            if (rc != Z_OK)
                fail("read_nifti", name_, ": corrupt gzip stream (",
                     stream_.msg ? stream_.msg : "zlib error " + std::to_string(rc), ")");
        }
        return n - stream_.avail_out;
    }

    z_stream stream_{};
    std::string name_;
    bool open_ = false;
    bool ended_ = false;
};

inline std::string trimmed_chars(const unsigned char* p, std::size_t n) {
    std::size_t len = 0;
    while (len < n && p[len] != 0) ++len;
    return std::string(reinterpret_cast<const char*>(p), len);
}

// Parses and validates the 348-byte header; `available` is the number of bytes the file can
// provide (exact for .nii, an upper bound for .nii.gz).
inline NiftiHeader parse_header(const unsigned char* p, std::string_view name) {
    const auto sizeof_hdr_le = load_scalar<std::int32_t>(p, false);
    const auto sizeof_hdr_be = load_scalar<std::int32_t>(p, true);
    bool swap = false;
    if (sizeof_hdr_le == 348) {
        swap = std::endian::native == std::endian::big;
    } else if (sizeof_hdr_be == 348) {
        swap = std::endian::native == std::endian::little;
    } else if (sizeof_hdr_le == 540 || sizeof_hdr_be == 540) {
        fail("read_nifti", name, ": NIfTI-2 files are not supported (sizeof_hdr 540)");
    } else {
        fail("read_nifti", name, ": not a NIfTI-1 file (sizeof_hdr is ", sizeof_hdr_le, ", expected 348)");
    }
    NiftiHeader h;
    h.big_endian = (std::endian::native == std::endian::big) != swap;

    const unsigned char* magic = p + 344;
    if (std::memcmp(magic, "ni1\0", 4) == 0)
        fail("read_nifti", name, ": a .hdr/.img pair (magic \"ni1\"); only single-file .nii is supported");
    check(std::memcmp(magic, "n+1\0", 4) == 0, "read_nifti", name, ": bad magic (expected \"n+1\")");

    auto i16 = [&](std::size_t off) { return load_scalar<std::int16_t>(p + off, swap); };
    auto f32 = [&](std::size_t off) { return static_cast<double>(load_scalar<float>(p + off, swap)); };

    const int ndim = i16(40);
    check(ndim >= 1 && ndim <= 7, "read_nifti", name, ": dim[0] is ", ndim, ", expected 1 to 7");
    std::uint64_t numel = 1;
    for (int d = 1; d <= ndim; ++d) {
        const int extent = i16(40 + 2 * static_cast<std::size_t>(d));
        check(extent >= 1, "read_nifti", name, ": dim[", d, "] is ", extent, ", expected at least 1");
        numel *= static_cast<std::uint64_t>(extent);  // at most 32767^7 < 2^105: checked below
        check(numel <= max_nifti_bytes, "read_nifti", name, ": the volume is too large");
        h.dim.push_back(extent);
    }
    // gcl tensors hold at most max_rank dimensions: trailing singleton dimensions are dropped.
    while (h.rank() > max_rank && h.dim.back() == 1) h.dim.pop_back();
    check(h.rank() <= max_rank, "read_nifti", name, ": ", h.rank(), " non-singleton dimensions, gcl supports ",
          max_rank);

    const int code = i16(70);
    const auto type = nifti_type_from_code(code);
    check(type.has_value(), "read_nifti", name, ": unsupported datatype code ", code,
          " (supported: uint8, int8, int16, uint16, int32, uint32, int64, float32, float64)");
    h.datatype = *type;
    check(numel * static_cast<std::uint64_t>(nifti_type_size(h.datatype)) <= max_nifti_bytes, "read_nifti",
          name, ": the volume is too large");

    for (std::size_t i = 0; i < 8; ++i) h.pixdim[i] = f32(76 + 4 * i);
    for (int d = 1; d <= h.rank(); ++d)
        check(std::isfinite(h.pixdim[static_cast<std::size_t>(d)]), "read_nifti", name, ": pixdim[", d, "] is ",
              h.pixdim[static_cast<std::size_t>(d)]);

    h.vox_offset = f32(108);
    check(std::isfinite(h.vox_offset) && h.vox_offset >= 0 && h.vox_offset <= double(max_nifti_bytes),
          "read_nifti", name, ": invalid vox_offset ", h.vox_offset);
    // A single .nii file keeps its data after the header and the extension flag (nifti1_io rule).
    h.vox_offset = std::max(std::floor(h.vox_offset), static_cast<double>(nifti_data_offset));

    h.scl_slope = f32(112);
    h.scl_inter = f32(116);
    check(!std::isinf(h.scl_slope), "read_nifti", name, ": scl_slope is infinite");
    check(!h.scaled() || !std::isinf(h.scl_inter), "read_nifti", name, ": scl_inter is infinite");
    h.xyzt_units = p[123];
    h.description = trimmed_chars(p + 148, 80);
    h.qform_code = i16(252);
    h.sform_code = i16(254);
    check(h.qform_code >= 0 && h.qform_code <= 4, "read_nifti", name, ": invalid qform_code ", h.qform_code);
    check(h.sform_code >= 0 && h.sform_code <= 4, "read_nifti", name, ": invalid sform_code ", h.sform_code);
    h.quatern_b = f32(256);
    h.quatern_c = f32(260);
    h.quatern_d = f32(264);
    h.qoffset_x = f32(268);
    h.qoffset_y = f32(272);
    h.qoffset_z = f32(276);
    for (std::size_t r = 0; r < 3; ++r)
        for (std::size_t c = 0; c < 4; ++c) h.srow[r][c] = f32(280 + 16 * r + 4 * c);
    if (h.qform_code > 0) {
        for (double v : {h.quatern_b, h.quatern_c, h.quatern_d, h.qoffset_x, h.qoffset_y, h.qoffset_z, h.pixdim[1],
                         h.pixdim[2], h.pixdim[3]})
            check(std::isfinite(v), "read_nifti", name, ": the qform has a non-finite field");
    }
    if (h.sform_code > 0) {
        for (const auto& row : h.srow)
            for (double v : row) check(std::isfinite(v), "read_nifti", name, ": the sform has a non-finite field");
    }
    return h;
}

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
    if (is_gzip(bytes)) {
        GzipReader gz(bytes, name);
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
    const std::vector<unsigned char> bytes = detail::read_file_bytes(path, "read_nifti");
    return detail::parse_nifti_bytes<T>(bytes, path.string(), false);
}

// Reads only the header (the data is neither decompressed beyond the header nor decoded).
inline NiftiHeader read_nifti_header(const std::filesystem::path& path) {
    const std::vector<unsigned char> bytes = detail::read_file_bytes(path, "read_nifti");
    return detail::parse_nifti_bytes<float>(bytes, path.string(), true).header;
}

// How write_nifti describes the volume.
struct NiftiWriteOptions {
    // Spacing along NIfTI dims x, y, z, t, ... (missing entries are 1). With an affine the
    // spatial spacing comes from the affine's column norms, and given x, y, z entries must agree.
    std::vector<double> spacing;
    // Voxel-to-world matrix, written as the sform and, unless `qform` is given, as the qform too
    // (its nearest rigid part). Without one, the affine is diag(spacing) with the origin at voxel 0.
    std::optional<Affine> affine;
    int xform_code = xform::scanner;  // the sform's code, and the qform's unless qform_code is given
    // A qform of its own, for files whose two transforms differ (a scanner qform beside an
    // atlas sform): stored as its nearest rigid part, and pixdim holds its zooms.
    std::optional<Affine> qform;
    std::optional<int> qform_code;
    // Stored type; by default T's own type. When it differs from T, or the scaling is not the
    // identity, values are stored as (value - scl_inter) / scl_slope, rounded for integer types,
    // and must fit the stored type.
    std::optional<NiftiType> datatype;
    double scl_slope = 1.0;
    double scl_inter = 0.0;
    int xyzt_units = 2 | 8;  // millimetres and seconds
    std::string description;
};

namespace detail {

// The qform quaternion of an affine, as nibabel derives it: scale by column norms, flip the
// third axis when the determinant is negative (qfac = -1), take the nearest rotation (polar
// decomposition), then its unit quaternion with a non-negative real part.
struct QformParts {
    double b, c, d, qfac;
    Eigen::Vector3d zooms;
};

inline QformParts qform_from_affine(const Affine& affine) {
    Eigen::Matrix3d rzs = affine.topLeftCorner<3, 3>();
    Eigen::Vector3d zooms = rzs.colwise().norm().transpose();
    Eigen::Matrix3d r = rzs;
    for (int c = 0; c < 3; ++c) r.col(c) /= zooms[c] > 0 ? zooms[c] : 1.0;
    double qfac = 1.0;
    if (r.determinant() < 0) {
        qfac = -1.0;
        r.col(2) *= -1.0;
    }
    Eigen::JacobiSVD<Eigen::Matrix3d> svd(r, Eigen::ComputeFullU | Eigen::ComputeFullV);
    Eigen::Matrix3d rot = svd.matrixU() * svd.matrixV().transpose();
    if (rot.determinant() < 0) rot = Eigen::Matrix3d::Identity();  // degenerate (zero) columns
    Eigen::Quaterniond q(rot);
    q.normalize();
    if (q.w() < 0) q.coeffs() *= -1.0;
    return {q.x(), q.y(), q.z(), qfac, zooms};
}

template <class S, class T>
void encode_elements(const T* src, index_t n, bool convert, const NiftiWriteOptions& o, unsigned char* dst) {
    for (index_t i = 0; i < n; ++i) {
        S s;
        if (!convert) {
            s = static_cast<S>(src[i]);
        } else {
            double v = (static_cast<double>(src[i]) - o.scl_inter) / o.scl_slope;
            if constexpr (std::is_integral_v<S>) {
                v = std::round(v);
                check(std::isfinite(v) && v >= static_cast<double>(std::numeric_limits<S>::lowest()) &&
                          v <= static_cast<double>(std::numeric_limits<S>::max()),
                      "write_nifti", "value ", +src[i], " at element ", i, " does not fit the stored type");
            }
            s = static_cast<S>(v);
        }
        store_scalar<S>(dst + static_cast<std::size_t>(i) * sizeof(S), s);
    }
}

template <class T>
void encode_data(const T* src, index_t n, NiftiType type, bool convert, const NiftiWriteOptions& o,
                 unsigned char* dst) {
    switch (type) {
        case NiftiType::uint8: return encode_elements<std::uint8_t>(src, n, convert, o, dst);
        case NiftiType::int8: return encode_elements<std::int8_t>(src, n, convert, o, dst);
        case NiftiType::int16: return encode_elements<std::int16_t>(src, n, convert, o, dst);
        case NiftiType::uint16: return encode_elements<std::uint16_t>(src, n, convert, o, dst);
        case NiftiType::int32: return encode_elements<std::int32_t>(src, n, convert, o, dst);
        case NiftiType::uint32: return encode_elements<std::uint32_t>(src, n, convert, o, dst);
        case NiftiType::int64: return encode_elements<std::int64_t>(src, n, convert, o, dst);
        case NiftiType::float32: return encode_elements<float>(src, n, convert, o, dst);
        case NiftiType::float64: return encode_elements<double>(src, n, convert, o, dst);
    }
}

inline std::vector<unsigned char> gzip_bytes(std::span<const unsigned char> in) {
    z_stream s{};
    check(deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, "write_nifti",
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
                fail("write_nifti", "zlib compression failed");
            }
            out.insert(out.end(), buf, buf + (sizeof(buf) - s.avail_out));
        } while (s.avail_out == 0);
    } while (pos < in.size());
    deflateEnd(&s);
    check(rc == Z_STREAM_END, "write_nifti", "zlib compression did not finish");
    return out;
}

inline bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace detail

// Encodes a host volume as the bytes of a .nii file (uncompressed, little-endian).
template <class T>
std::vector<unsigned char> encode_nifti(TensorView<const T, cpu> data, const NiftiWriteOptions& options = {}) {
    constexpr std::string_view op = "write_nifti";
    check(data.rank() >= 1, op, "a volume needs at least one dimension, got shape ", data.shape());
    check(data.numel() > 0, op, "cannot write an empty volume of shape ", data.shape());
    const NiftiType type = options.datatype.value_or(nifti_type_of<T>());
    const bool scaled = options.scl_slope != 1.0 || options.scl_inter != 0.0;
    const bool convert = scaled || type != nifti_type_of<T>();
    check(std::isfinite(options.scl_slope) && options.scl_slope != 0.0 && std::isfinite(options.scl_inter), op,
          "scl_slope must be finite and non-zero and scl_inter finite, got ", options.scl_slope, " and ",
          options.scl_inter);
    check(options.xform_code >= 0 && options.xform_code <= 4, op, "invalid transform code ", options.xform_code);
    const int qform_code = options.qform_code.value_or(options.xform_code);
    check(qform_code >= 0 && qform_code <= 4, op, "invalid qform code ", qform_code);
    for (int d = 0; d < data.rank(); ++d)
        check(data.dim(d) <= 32767, op, "extent ", data.dim(d), " exceeds NIfTI-1's limit of 32767 (shape ",
              data.shape(), ")");
    check(options.spacing.size() <= static_cast<std::size_t>(data.rank()), op, options.spacing.size(),
          " spacings given for a volume of rank ", data.rank());
    for (double s : options.spacing) check(std::isfinite(s) && s > 0, op, "spacings must be positive, got ", s);

    const int rank = data.rank();
    std::array<double, 8> pixdim{1, 1, 1, 1, 1, 1, 1, 1};
    for (std::size_t d = 0; d < options.spacing.size(); ++d) pixdim[d + 1] = options.spacing[d];

    const auto check_affine = [&](const Affine& m, std::string_view what) {
        check(m.allFinite(), op, "the ", what, " has non-finite entries");
        check(m.row(3).isApprox(Eigen::RowVector4d(0, 0, 0, 1)), op, "the ", what, "'s last row must be 0 0 0 1");
        check(std::abs(m.topLeftCorner<3, 3>().determinant()) > 0, op, "the ", what, " is singular");
    };
    Affine affine = Affine::Identity();
    if (options.affine) {
        affine = *options.affine;
        check_affine(affine, "affine");
    } else {
        for (int d = 0; d < 3; ++d) affine(d, d) = pixdim[static_cast<std::size_t>(d + 1)];
    }
    if (options.qform) check_affine(*options.qform, "qform");
    const Affine& qform_affine = options.qform ? *options.qform : affine;
    const detail::QformParts q = detail::qform_from_affine(qform_affine);
    if (options.affine || options.qform) {
        const char* source = options.qform ? "the qform's" : "the affine's";
        for (std::size_t d = 0; d < std::min<std::size_t>(3, options.spacing.size()); ++d)
            check(std::abs(options.spacing[d] - q.zooms[static_cast<int>(d)]) <= 1e-5 * q.zooms[static_cast<int>(d)],
                  op, "spacing ", options.spacing[d], " of dim ", d, " disagrees with ", source, " column norm ",
                  q.zooms[static_cast<int>(d)]);
        for (std::size_t d = 0; d < 3; ++d) pixdim[d + 1] = q.zooms[static_cast<int>(d)];
    }
    pixdim[0] = q.qfac;

    const Tensor<T, cpu> contiguous = Tensor<T, cpu>::copy_of(data);
    const std::size_t data_bytes = static_cast<std::size_t>(data.numel()) * static_cast<std::size_t>(nifti_type_size(type));
    std::vector<unsigned char> bytes(detail::nifti_data_offset + data_bytes, 0);
    unsigned char* p = bytes.data();
    using detail::store_scalar;
    store_scalar<std::int32_t>(p + 0, 348);
    p[38] = 'r';
    store_scalar<std::int16_t>(p + 40, static_cast<std::int16_t>(rank));
    for (int d = 0; d < 7; ++d) {
        // NIfTI order is the tensor's order reversed.
        const index_t extent = d < rank ? data.dim(rank - 1 - d) : 1;
        store_scalar<std::int16_t>(p + 42 + 2 * static_cast<std::size_t>(d), static_cast<std::int16_t>(extent));
    }
    store_scalar<std::int16_t>(p + 70, static_cast<std::int16_t>(type));
    store_scalar<std::int16_t>(p + 72, static_cast<std::int16_t>(8 * nifti_type_size(type)));
    for (std::size_t i = 0; i < 8; ++i) store_scalar<float>(p + 76 + 4 * i, static_cast<float>(pixdim[i]));
    store_scalar<float>(p + 108, static_cast<float>(detail::nifti_data_offset));
    store_scalar<float>(p + 112, static_cast<float>(convert ? options.scl_slope : 1.0));
    store_scalar<float>(p + 116, static_cast<float>(convert ? options.scl_inter : 0.0));
    p[123] = static_cast<unsigned char>(options.xyzt_units);
    std::memcpy(p + 148, options.description.data(), std::min<std::size_t>(79, options.description.size()));
    store_scalar<std::int16_t>(p + 252, static_cast<std::int16_t>(qform_code));
    store_scalar<std::int16_t>(p + 254, static_cast<std::int16_t>(options.xform_code));
    store_scalar<float>(p + 256, static_cast<float>(q.b));
    store_scalar<float>(p + 260, static_cast<float>(q.c));
    store_scalar<float>(p + 264, static_cast<float>(q.d));
    for (int r = 0; r < 3; ++r)
        store_scalar<float>(p + 268 + 4 * static_cast<std::size_t>(r), static_cast<float>(qform_affine(r, 3)));
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 4; ++c)
            store_scalar<float>(p + 280 + 16 * static_cast<std::size_t>(r) + 4 * static_cast<std::size_t>(c),
                                static_cast<float>(affine(r, c)));
    std::memcpy(p + 344, "n+1\0", 4);
    detail::encode_data<T>(contiguous.data(), contiguous.numel(), type, convert, options,
                           p + detail::nifti_data_offset);
    return bytes;
}

// Options that write a volume back with the header it was read with: spacing, units, stored
// type and scaling, description, and both transforms with their codes, even where they differ.
inline NiftiWriteOptions nifti_write_options(const NiftiHeader& h) {
    NiftiWriteOptions o;
    o.spacing = h.spacing();
    o.datatype = h.datatype;
    if (h.scaled()) {
        o.scl_slope = h.slope();
        o.scl_inter = h.intercept();
    }
    o.xyzt_units = h.xyzt_units;
    o.description = h.description;
    // The sform slot holds the sform when it is set, else the best affine (qform or pixdim).
    o.affine = h.sform_code > 0 ? h.sform() : h.affine();
    o.xform_code = h.sform_code;
    o.qform = h.qform_code > 0 ? h.qform() : h.affine();
    o.qform_code = h.qform_code;
    // pixdim holds the qform's zooms; the spacings after x, y, z (time, ...) are kept as they are.
    const Eigen::Vector3d zooms = detail::qform_from_affine(*o.qform).zooms;
    for (std::size_t d = 0; d < std::min<std::size_t>(3, o.spacing.size()); ++d) o.spacing[d] = zooms[static_cast<int>(d)];
    return o;
}

// Writes a host volume (shape (z, y, x) for 3D, see the top of this file) as .nii or, when the
// name ends with .gz, as .nii.gz. The file appears atomically (temporary file + rename).
template <class T>
void write_nifti(const std::filesystem::path& path, TensorView<const T, cpu> data,
                 const NiftiWriteOptions& options = {}) {
    const std::string name = path.string();
    const bool gz = detail::ends_with(name, ".nii.gz");
    check(gz || detail::ends_with(name, ".nii"), "write_nifti", "file name ", name, " must end with .nii or .nii.gz");
    const std::vector<unsigned char> bytes = encode_nifti<T>(data, options);
    if (gz) {
        const std::vector<unsigned char> packed = detail::gzip_bytes(bytes);
        io::write_file_atomic(path, packed, "write_nifti");
    } else {
        io::write_file_atomic(path, bytes, "write_nifti");
    }
}
template <class T>
void write_nifti(const std::filesystem::path& path, const Tensor<T, cpu>& data, const NiftiWriteOptions& options = {}) {
    write_nifti<T>(path, data.cview(), options);
}

}  // namespace gcl::data
