#pragma once
// NIfTI-1 header: element types, transform codes, the header's fields and the affine they
// describe, and the parser that validates all 348 bytes before anything is allocated.
// Layout conventions are in gcl/data/nifti.hpp.
#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

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

}  // namespace detail

}  // namespace gcl::data
