#pragma once
// Writing NIfTI-1 volumes: the header from a spacing and an affine (the qform as nibabel derives
// it), values stored in the requested type and scaling, .nii or .nii.gz written atomically.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/nifti/header.hpp"
#include "gcl/io/atomic_file.hpp"
#include "gcl/io/zlib.hpp"

namespace gcl::data {

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
        const std::vector<unsigned char> packed = io::gzip_bytes(bytes, "write_nifti");
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
