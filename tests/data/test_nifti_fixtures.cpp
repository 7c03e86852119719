// gcl reads files that nibabel wrote (scripts/fixtures/nifti_fixtures.py) exactly as nibabel
// reads them: data after scaling, affine, zooms. Covers big-endian files, header extensions,
// qform-only files, scl_slope / scl_inter and every supported integer type.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "gcl/core/npy.hpp"
#include "gcl/data/nifti.hpp"

namespace gd = gcl::data;
namespace fs = std::filesystem;
using gcl::index_t;

namespace {
const fs::path fixtures = fs::path(GCL_TEST_FIXTURES) / "data" / "nifti";

std::string stem_of(const fs::path& p) {
    std::string name = p.filename().string();
    for (const std::string ext : {".nii.gz", ".nii"})
        if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0)
            return name.substr(0, name.size() - ext.size());
    return {};
}
}  // namespace

TEST_CASE("gcl reads nibabel-written NIfTI files as nibabel does", "[data][nifti][fixtures]") {
    REQUIRE(fs::is_directory(fixtures));
    int files = 0;
    for (const auto& entry : fs::directory_iterator(fixtures)) {
        const std::string stem = stem_of(entry.path());
        if (stem.empty()) continue;
        ++files;
        INFO(entry.path().filename().string());
        const auto img = gd::read_nifti<double>(entry.path());
        const auto data = gcl::load_npy<double>(fixtures / (stem + ".data.npy"));
        const auto affine = gcl::load_npy<double>(fixtures / (stem + ".affine.npy"));
        const auto zooms = gcl::load_npy<double>(fixtures / (stem + ".zooms.npy"));
        REQUIRE(img.data.shape() == data.shape());
        for (index_t i = 0; i < data.numel(); ++i)
            CHECK(img.data.data()[i] == Approx(data.data()[i]).epsilon(1e-12).margin(1e-12));
        for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 4; ++c) CHECK(img.header.affine()(r, c) == Approx(affine(r, c)).margin(1e-5));
        REQUIRE(static_cast<index_t>(img.header.spacing().size()) == zooms.numel());
        for (index_t d = 0; d < zooms.numel(); ++d)
            CHECK(img.header.spacing()[static_cast<std::size_t>(d)] == Approx(zooms(d)));
    }
    CHECK(files == 10);
}

TEST_CASE("nibabel fixtures exercise the header variants they are meant to", "[data][nifti][fixtures]") {
    CHECK(gd::read_nifti_header(fixtures / "f32_big_endian.nii").big_endian);
    CHECK(gd::read_nifti_header(fixtures / "f32_big_endian.nii").pixdim[0] == -1.0);
    CHECK(gd::read_nifti_header(fixtures / "u8_extension.nii").vox_offset > 352);
    const gd::NiftiHeader q = gd::read_nifti_header(fixtures / "i32_qform_only.nii");
    CHECK(q.sform_code == 0);
    CHECK(q.qform_code == 2);
    const gd::NiftiHeader s = gd::read_nifti_header(fixtures / "i16_scaled.nii.gz");
    CHECK(s.datatype == gd::NiftiType::int16);
    CHECK(s.scaled());
    CHECK(s.slope() != 1.0);
    CHECK(gd::read_nifti_header(fixtures / "f64_4d.nii.gz").rank() == 4);
    CHECK(gd::read_nifti_header(fixtures / "i64_3d.nii").datatype == gd::NiftiType::int64);
    // Integer files read as integers without loss.
    const auto u16 = gd::read_nifti<std::uint16_t>(fixtures / "u16_3d.nii.gz");
    const auto u16_ref = gcl::load_npy<double>(fixtures / "u16_3d.data.npy");
    for (index_t i = 0; i < u16_ref.numel(); ++i) CHECK(static_cast<double>(u16.data.data()[i]) == u16_ref.data()[i]);
}
