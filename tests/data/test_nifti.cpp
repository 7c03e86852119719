#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <vector>

#include "gcl/data/nifti.hpp"
#include "temp_dir.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace gd = gcl::data;
namespace fs = std::filesystem;

namespace {

template <class T>
Tensor<T> pattern(const Shape& shape) {
    Tensor<T> t(shape);
    for (index_t i = 0; i < t.numel(); ++i) {
        double v = static_cast<double>((i * 37) % 101);
        if constexpr (std::is_signed_v<T>) v -= 50;
        if constexpr (std::is_floating_point_v<T>) v = v * 0.37 + 0.001 * static_cast<double>(i);
        t.data()[i] = static_cast<T>(v);
    }
    return t;
}

gd::NiftiWriteOptions with_spacing(std::vector<double> spacing) {
    gd::NiftiWriteOptions o;
    o.spacing = std::move(spacing);
    return o;
}

void put_i16(std::vector<unsigned char>& b, std::size_t off, std::int16_t v) { std::memcpy(b.data() + off, &v, 2); }
void put_i32(std::vector<unsigned char>& b, std::size_t off, std::int32_t v) { std::memcpy(b.data() + off, &v, 4); }
void put_f32(std::vector<unsigned char>& b, std::size_t off, float v) { std::memcpy(b.data() + off, &v, 4); }

std::vector<unsigned char> small_volume_bytes() {
    return gd::encode_nifti<std::int16_t>(pattern<std::int16_t>(Shape{3, 4, 5}).cview(),
                                          with_spacing({1.5, 2.0, 4.0}));
}

}  // namespace

TEMPLATE_TEST_CASE("NIfTI round-trips every supported datatype, uncompressed and gzipped", "[data][nifti]",
                   std::uint8_t, std::int16_t, std::int32_t, float, double, std::int8_t, std::uint16_t,
                   std::uint32_t, std::int64_t) {
    gcl_test::TempDir dir("nifti_roundtrip");
    const Tensor<TestType> data = pattern<TestType>(Shape{3, 4, 5});  // NIfTI dims (5, 4, 3)
    gd::NiftiWriteOptions o;
    o.spacing = {0.7, 1.3, 5.0};
    o.description = "round trip";
    for (const char* name : {"v.nii", "v.nii.gz"}) {
        gd::write_nifti<TestType>(dir / name, data, o);
        const auto back = gd::read_nifti<TestType>(dir / name);
        REQUIRE(back.data.shape() == data.shape());
        for (index_t i = 0; i < data.numel(); ++i) CHECK(back.data.data()[i] == data.data()[i]);
        const gd::NiftiHeader& h = back.header;
        CHECK(h.datatype == gd::nifti_type_of<TestType>());
        CHECK(h.dim == std::vector<index_t>{5, 4, 3});
        CHECK(h.spacing()[0] == Approx(0.7));
        CHECK(h.spacing()[1] == Approx(1.3));
        CHECK(h.spacing()[2] == Approx(5.0));
        CHECK(h.description == "round trip");
        CHECK(h.sform_code == gd::xform::scanner);
        CHECK(h.qform_code == gd::xform::scanner);
        CHECK(h.affine().isApprox(gd::Affine(Eigen::Vector4d(0.7, 1.3, 5.0, 1.0).asDiagonal()), 1e-6));
        CHECK(h.qform().isApprox(h.sform(), 1e-6));
        CHECK_FALSE(fs::exists(dir / (std::string(name) + ".tmp")));
        // Values read into another type convert exactly.
        const auto as_double = gd::read_nifti<double>(dir / name);
        for (index_t i = 0; i < data.numel(); ++i) CHECK(as_double.data.data()[i] == static_cast<double>(data.data()[i]));
    }
    // gzip is detected by content, and the compressed file is smaller for this pattern.
    CHECK(fs::file_size(dir / "v.nii.gz") < fs::file_size(dir / "v.nii"));
}

TEST_CASE("NIfTI keeps rank-1, 2D and 4D volumes and reverses dims into tensor order", "[data][nifti]") {
    gcl_test::TempDir dir("nifti_ranks");
    for (const Shape& s : {Shape{7}, Shape{3, 6}, Shape{2, 3, 4, 5}}) {
        const Tensor<float> t = pattern<float>(s);
        gd::write_nifti<float>(dir / "r.nii.gz", t);
        const auto back = gd::read_nifti<float>(dir / "r.nii.gz");
        REQUIRE(back.data.shape() == s);
        CHECK(back.header.dim.front() == s[s.rank() - 1]);  // NIfTI x is the tensor's last dimension
        for (index_t i = 0; i < t.numel(); ++i) CHECK(back.data.data()[i] == t.data()[i]);
    }
}

TEST_CASE("NIfTI writes rotated and left-handed affines as sform and qform", "[data][nifti]") {
    gcl_test::TempDir dir("nifti_affine");
    // A rotation about z and x, zooms (1.2, 0.8, 6), a flipped third axis (qfac = -1), an offset.
    Eigen::Matrix3d rot = (Eigen::AngleAxisd(0.4, Eigen::Vector3d::UnitZ()) *
                           Eigen::AngleAxisd(-0.9, Eigen::Vector3d::UnitX())).toRotationMatrix();
    gd::Affine a = gd::Affine::Identity();
    a.topLeftCorner<3, 3>() = rot * Eigen::Vector3d(1.2, 0.8, -6.0).asDiagonal();
    a.col(3).head<3>() = Eigen::Vector3d(-12.5, 40.0, 3.25);
    gd::NiftiWriteOptions o;
    o.affine = a;
    o.xform_code = gd::xform::aligned;
    gd::write_nifti<float>(dir / "a.nii", pattern<float>(Shape{2, 3, 4}), o);
    const gd::NiftiHeader h = gd::read_nifti_header(dir / "a.nii");
    CHECK(h.sform_code == gd::xform::aligned);
    CHECK(h.pixdim[0] == -1.0);
    CHECK(h.spacing()[0] == Approx(1.2));
    CHECK(h.spacing()[1] == Approx(0.8));
    CHECK(h.spacing()[2] == Approx(6.0));
    CHECK((h.sform() - a).cwiseAbs().maxCoeff() < 1e-5);
    CHECK((h.qform() - a).cwiseAbs().maxCoeff() < 1e-5);
    CHECK((h.affine() - a).cwiseAbs().maxCoeff() < 1e-5);

    // Spacing that disagrees with the affine's column norms is an error; agreeing spacing is fine.
    o.spacing = {1.2, 0.9, 6.0};
    CHECK_THROWS_AS(gd::write_nifti<float>(dir / "b.nii", pattern<float>(Shape{2, 3, 4}), o), gcl::Error);
    o.spacing = {1.2, 0.8, 6.0, 0.5};
    gd::write_nifti<float>(dir / "b.nii", pattern<float>(Shape{1, 2, 3, 4}), o);
    CHECK(gd::read_nifti_header(dir / "b.nii").spacing()[3] == Approx(0.5));

    // Without transform codes the affine is NIfTI's method 1: diag(pixdim).
    gd::NiftiWriteOptions none;
    none.spacing = {2.0, 3.0, 4.0};
    none.xform_code = gd::xform::unknown;
    gd::write_nifti<float>(dir / "c.nii", pattern<float>(Shape{2, 3, 4}), none);
    const gd::NiftiHeader hc = gd::read_nifti_header(dir / "c.nii");
    CHECK(hc.qform_code == 0);
    CHECK(hc.sform_code == 0);
    CHECK(hc.affine().isApprox(gd::Affine(Eigen::Vector4d(2, 3, 4, 1).asDiagonal())));
}

TEST_CASE("NIfTI stores values scaled by scl_slope and scl_inter", "[data][nifti]") {
    gcl_test::TempDir dir("nifti_scaling");
    Tensor<float> values(Shape{4, 5});
    for (index_t i = 0; i < values.numel(); ++i) values.data()[i] = -3.0f + 0.5f * static_cast<float>(i);
    gd::NiftiWriteOptions o;
    o.datatype = gd::NiftiType::int16;
    o.scl_slope = 0.5;
    o.scl_inter = -3.0;
    gd::write_nifti<float>(dir / "s.nii.gz", values, o);
    const auto back = gd::read_nifti<float>(dir / "s.nii.gz");
    CHECK(back.header.datatype == gd::NiftiType::int16);
    CHECK(back.header.scaled());
    CHECK(back.header.slope() == 0.5);
    CHECK(back.header.intercept() == -3.0);
    for (index_t i = 0; i < values.numel(); ++i) CHECK(back.data.data()[i] == values.data()[i]);
    // The scaled values are integers at even elements only: reading as int16 must refuse.
    CHECK_THROWS_WITH(gd::read_nifti<std::int16_t>(dir / "s.nii.gz"), Catch::Contains("not representable"));

    // Integral scaled values read as integers.
    o.scl_slope = 2.0;
    o.scl_inter = 10.0;
    Tensor<std::int32_t> ints(Shape{6});
    for (index_t i = 0; i < 6; ++i) ints.data()[i] = static_cast<std::int32_t>(10 + 2 * i);
    gd::write_nifti<std::int32_t>(dir / "i.nii", ints, o);
    const auto ib = gd::read_nifti<std::int32_t>(dir / "i.nii");
    for (index_t i = 0; i < 6; ++i) CHECK(ib.data.data()[i] == ints.data()[i]);

    // Values that do not fit the stored type are an error, not a silent wrap.
    gd::NiftiWriteOptions u8;
    u8.datatype = gd::NiftiType::uint8;
    CHECK_THROWS_WITH(gd::write_nifti<float>(dir / "o.nii", Tensor<float>(Shape{2}, 300.0f), u8),
                      Catch::Contains("does not fit"));
    CHECK_FALSE(fs::exists(dir / "o.nii"));
    // Narrowing on read is checked too.
    gd::write_nifti<std::int16_t>(dir / "w.nii", Tensor<std::int16_t>(Shape{2}, std::int16_t{-4}));
    CHECK_THROWS_WITH(gd::read_nifti<std::uint8_t>(dir / "w.nii"), Catch::Contains("does not fit"));
    gd::write_nifti<std::int16_t>(dir / "w.nii", Tensor<std::int16_t>(Shape{2}, std::int16_t{200}));
    CHECK(gd::read_nifti<std::uint8_t>(dir / "w.nii").data(1) == 200);
}

TEST_CASE("NIfTI writing rejects bad requests and writes atomically", "[data][nifti]") {
    gcl_test::TempDir dir("nifti_write_errors");
    const Tensor<float> t = pattern<float>(Shape{2, 3});
    CHECK_THROWS_AS(gd::write_nifti<float>(dir / "x.img", t), gcl::Error);
    CHECK_THROWS_AS(gd::write_nifti<float>(dir / "e.nii", Tensor<float>(Shape{0, 3})), gcl::Error);
    CHECK_THROWS_AS(gd::write_nifti<float>(dir / "big.nii", Tensor<float>(Shape{1, 40000})), gcl::Error);
    CHECK_THROWS_AS(gd::write_nifti<float>(dir / "s.nii", t, with_spacing({0.0, 1.0})), gcl::Error);
    CHECK_THROWS_AS(gd::write_nifti<float>(dir / "s.nii", t, with_spacing({1.0, 1.0, 1.0})), gcl::Error);
    gd::NiftiWriteOptions singular;
    singular.affine = gd::Affine::Identity();
    (*singular.affine)(2, 2) = 0.0;
    CHECK_THROWS_AS(gd::write_nifti<float>(dir / "s.nii", t, singular), gcl::Error);
    gd::NiftiWriteOptions zero_slope;
    zero_slope.scl_slope = 0.0;
    CHECK_THROWS_AS(gd::write_nifti<float>(dir / "s.nii", t, zero_slope), gcl::Error);
    CHECK_THROWS_AS(gd::write_nifti<float>(dir / "missing_dir" / "s.nii", t), gcl::Error);
    CHECK(fs::is_empty(dir.path()));

    // Overwriting replaces the file as a whole.
    gd::write_nifti<float>(dir / "o.nii.gz", t);
    gd::write_nifti<float>(dir / "o.nii.gz", pattern<float>(Shape{4, 4}));
    CHECK(gd::read_nifti<float>(dir / "o.nii.gz").data.shape() == Shape{4, 4});
    CHECK_THROWS_AS(gd::read_nifti<float>(dir / "does_not_exist.nii"), gcl::Error);
}

TEST_CASE("NIfTI reading rejects every truncation of a file", "[data][nifti][corrupt]") {
    const std::vector<unsigned char> nii = small_volume_bytes();
    const std::vector<unsigned char> gz = gcl::io::gzip_bytes(nii, "test_nifti");
    REQUIRE(gd::parse_nifti<std::int16_t>(nii).data.numel() == 60);
    REQUIRE(gd::parse_nifti<std::int16_t>(gz).data.numel() == 60);
    for (std::size_t n = 0; n < nii.size(); ++n)
        CHECK_THROWS_AS(gd::parse_nifti<float>(std::span<const unsigned char>(nii.data(), n)), gcl::Error);
    for (std::size_t n = 0; n < gz.size(); ++n)
        CHECK_THROWS_AS(gd::parse_nifti<float>(std::span<const unsigned char>(gz.data(), n)), gcl::Error);
    CHECK_THROWS_WITH(gd::parse_nifti<float>(std::span<const unsigned char>(nii.data(), 360)),
                      Catch::Contains("truncated"));
}

TEST_CASE("NIfTI reading survives byte flips: an error or a valid volume, never a crash", "[data][nifti][corrupt]") {
    const std::vector<unsigned char> nii = small_volume_bytes();
    const Tensor<float> original = gd::parse_nifti<float>(nii).data;
    int header_errors = 0;
    for (std::size_t pos = 0; pos < nii.size(); ++pos) {
        for (unsigned char mask : {0x01, 0x80, 0xFF}) {
            std::vector<unsigned char> b = nii;
            b[pos] ^= mask;
            try {
                const auto img = gd::parse_nifti<float>(b);
                CHECK(img.data.shape() == img.header.shape());
            } catch (const gcl::Error&) {
                if (pos < 352) ++header_errors;
            }
        }
    }
    CHECK(header_errors > 50);  // sizeof_hdr, magic, dims, datatype, offsets are all checked

    // In a gzip stream the checksum catches flips in the compressed data; flips in the gzip
    // header's free fields (time stamp, OS) may pass, and then the data must be intact.
    const std::vector<unsigned char> gz = gcl::io::gzip_bytes(nii, "test_nifti");
    int gz_errors = 0, gz_flips = 0;
    for (std::size_t pos = 0; pos < gz.size(); ++pos) {
        std::vector<unsigned char> b = gz;
        b[pos] ^= 0x10;
        ++gz_flips;
        try {
            const auto img = gd::parse_nifti<float>(b);
            if (pos >= 10) {
                REQUIRE(img.data.shape() == original.shape());
                for (index_t i = 0; i < original.numel(); ++i) CHECK(img.data.data()[i] == original.data()[i]);
            }
        } catch (const gcl::Error&) {
            ++gz_errors;
        }
    }
    CHECK(gz_errors > gz_flips * 9 / 10);
}

TEST_CASE("NIfTI reading names what is wrong with a header", "[data][nifti][corrupt]") {
    const std::vector<unsigned char> good = small_volume_bytes();
    auto expect = [&](auto edit, const char* message) {
        std::vector<unsigned char> b = good;
        edit(b);
        CHECK_THROWS_WITH(gd::parse_nifti<float>(b, "bad.nii"), Catch::Contains(message) && Catch::Contains("bad.nii"));
    };
    expect([](auto& b) { std::memcpy(b.data() + 344, "n+2\0", 4); }, "bad magic");
    expect([](auto& b) { std::memcpy(b.data() + 344, "ni1\0", 4); }, ".hdr/.img");
    expect([](auto& b) { put_i32(b, 0, 540); }, "NIfTI-2");
    expect([](auto& b) { put_i32(b, 0, 1234); }, "not a NIfTI-1 file");
    expect([](auto& b) { put_i16(b, 40, 0); }, "dim[0]");
    expect([](auto& b) { put_i16(b, 40, 8); }, "dim[0]");
    expect([](auto& b) { put_i16(b, 44, 0); }, "dim[2]");
    expect([](auto& b) { put_i16(b, 44, -5); }, "dim[2]");
    expect([](auto& b) { put_i16(b, 70, 32); }, "unsupported datatype");  // complex64
    expect([](auto& b) { put_i16(b, 70, 128); }, "unsupported datatype");  // RGB24
    expect([](auto& b) { put_f32(b, 108, std::numeric_limits<float>::quiet_NaN()); }, "vox_offset");
    expect([](auto& b) { put_f32(b, 108, 1e30f); }, "vox_offset");
    expect([](auto& b) { put_f32(b, 108, 100000.0f); }, "truncated");
    expect([](auto& b) { put_f32(b, 112, std::numeric_limits<float>::infinity()); }, "scl_slope");
    expect([](auto& b) { put_f32(b, 80, std::numeric_limits<float>::quiet_NaN()); }, "pixdim[1]");
    expect([](auto& b) { put_i16(b, 252, 9); }, "qform_code");
    expect([](auto& b) { put_i16(b, 254, -1); }, "sform_code");
    expect([](auto& b) { put_f32(b, 296, std::numeric_limits<float>::infinity()); }, "sform");
    expect([](auto& b) { put_f32(b, 256, std::numeric_limits<float>::quiet_NaN()); }, "qform");
    expect([](auto& b) {
        for (int d = 1; d <= 7; ++d) put_i16(b, 40 + 2 * d, 32767);
        put_i16(b, 40, 7);
    }, "too large");

    // A small gzip stream that promises a huge volume is rejected before anything is allocated.
    std::vector<unsigned char> bomb(good.begin(), good.begin() + 352);
    put_i16(bomb, 40, 3);
    for (int d = 1; d <= 3; ++d) put_i16(bomb, 40 + 2 * d, 4000);
    put_i16(bomb, 70, 64);
    CHECK_THROWS_WITH(gd::parse_nifti<float>(gcl::io::gzip_bytes(bomb, "test_nifti")), Catch::Contains("gzip stream can hold"));

    // Plain garbage of many sizes.
    for (std::size_t n : {0u, 1u, 2u, 100u, 348u, 352u, 4096u}) {
        std::vector<unsigned char> junk(n);
        for (std::size_t i = 0; i < n; ++i) junk[i] = static_cast<unsigned char>((i * 131 + 7) % 251);
        CHECK_THROWS_AS(gd::parse_nifti<float>(junk), gcl::Error);
    }
    // Gzip magic followed by garbage.
    std::vector<unsigned char> fake_gz = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5};
    CHECK_THROWS_AS(gd::parse_nifti<float>(fake_gz), gcl::Error);
}

TEST_CASE("NIfTI reads concatenated gzip members, trailing bytes and header-only requests", "[data][nifti]") {
    const std::vector<unsigned char> nii = small_volume_bytes();
    const Tensor<std::int16_t> expected = pattern<std::int16_t>(Shape{3, 4, 5});
    const std::size_t half = nii.size() / 2;
    std::vector<unsigned char> two = gcl::io::gzip_bytes(std::span<const unsigned char>(nii.data(), half), "test_nifti");
    const std::vector<unsigned char> second = gcl::io::gzip_bytes(std::span<const unsigned char>(nii.data() + half, nii.size() - half), "test_nifti");
    two.insert(two.end(), second.begin(), second.end());
    const auto img = gd::parse_nifti<std::int16_t>(two);
    for (index_t i = 0; i < expected.numel(); ++i) CHECK(img.data.data()[i] == expected.data()[i]);

    std::vector<unsigned char> padded = nii;
    padded.resize(nii.size() + 100, 0);
    CHECK(gd::parse_nifti<std::int16_t>(padded).data(2, 3, 4) == expected(2, 3, 4));

    gcl_test::TempDir dir("nifti_header_only");
    gd::write_nifti<std::int16_t>(dir / "h.nii.gz", expected);
    const gd::NiftiHeader h = gd::read_nifti_header(dir / "h.nii.gz");
    CHECK(h.shape() == expected.shape());
    CHECK(h.datatype == gd::NiftiType::int16);
    CHECK(h.numel() == 60);
}
