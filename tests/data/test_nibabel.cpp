// Cross-check with a real reader: files gcl writes load in nibabel (Debian's python3-nibabel)
// with equal data, spacing and affine, and files nibabel writes load in gcl. Skipped (exit 77)
// when /usr/bin/python3 cannot import nibabel.
#include <catch2/catch.hpp>

#include "support/catch_session.hpp"

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include "gcl/core/npy.hpp"
#include "gcl/data/nifti.hpp"

namespace gd = gcl::data;
namespace fs = std::filesystem;
using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;

namespace {

const fs::path work = GCL_TEST_WORKDIR;

template <class T>
Tensor<T> values(const Shape& s) {
    Tensor<T> t(s);
    for (index_t i = 0; i < t.numel(); ++i) {
        const double v = std::is_floating_point_v<T> ? std::sin(0.37 * static_cast<double>(i)) * 1000.0
                                                     : static_cast<double>((i * 53) % 251) - (std::is_signed_v<T> ? 120 : 0);
        t.data()[i] = static_cast<T>(v);
    }
    return t;
}

gd::Affine rotated(double angle, bool flip) {
    gd::Affine a = gd::Affine::Identity();
    const Eigen::Matrix3d rot = (Eigen::AngleAxisd(angle, Eigen::Vector3d::UnitZ()) *
                                 Eigen::AngleAxisd(0.5 * angle, Eigen::Vector3d::UnitY())).toRotationMatrix();
    a.topLeftCorner<3, 3>() = rot * Eigen::Vector3d(0.9, 1.4, flip ? -6.0 : 6.0).asDiagonal();
    a.col(3).head<3>() = Eigen::Vector3d(10.0 * angle, -4.0, 2.5);
    return a;
}

// What gcl wrote, by file name, to compare with what nibabel reads.
struct Written {
    Tensor<double> data;
    gd::Affine affine;
};
std::map<std::string, Written> written;

template <class T>
void write_gcl_files(int index) {
    for (const std::string ext : {".nii", ".nii.gz"}) {
        gd::NiftiWriteOptions o;
        o.affine = rotated(0.3 * index, index % 2 == 1);
        const Tensor<T> v = values<T>(Shape{4, 5, 6});
        const std::string name = "gcl_" + std::string(gd::nifti_type_name(gd::nifti_type_of<T>())) + ext;
        gd::write_nifti<T>(work / name, v, o);
        Tensor<double> as_double(v.shape());
        for (index_t i = 0; i < v.numel(); ++i) as_double.data()[i] = static_cast<double>(v.data()[i]);
        written[name] = Written{as_double, *o.affine};
    }
}

void check_same_reading(const fs::path& file, const fs::path& stem, const Written* expected) {
    INFO(file.filename().string());
    const auto img = gd::read_nifti<double>(file);
    const auto nib_data = gcl::load_npy<double>(stem.string() + ".nib_data.npy");
    const auto nib_affine = gcl::load_npy<double>(stem.string() + ".nib_affine.npy");
    const auto nib_qform = gcl::load_npy<double>(stem.string() + ".nib_qform.npy");
    const auto nib_zooms = gcl::load_npy<double>(stem.string() + ".nib_zooms.npy");
    const auto nib_dtype = gcl::load_npy<std::int64_t>(stem.string() + ".nib_dtype.npy");
    REQUIRE(nib_data.shape() == img.data.shape());
    for (index_t i = 0; i < img.data.numel(); ++i) {
        CHECK(img.data.data()[i] == Approx(nib_data.data()[i]).epsilon(1e-12).margin(1e-12));
        if (expected) CHECK(nib_data.data()[i] == Approx(expected->data.data()[i]).epsilon(1e-6).margin(1e-9));
    }
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) {
            CHECK(img.header.affine()(r, c) == Approx(nib_affine(r, c)).margin(1e-5));
            CHECK(img.header.qform()(r, c) == Approx(nib_qform(r, c)).margin(1e-5));
            if (expected) {
                CHECK(nib_affine(r, c) == Approx(expected->affine(r, c)).margin(1e-5));
                CHECK(nib_qform(r, c) == Approx(expected->affine(r, c)).margin(1e-5));
            }
        }
    REQUIRE(static_cast<index_t>(img.header.spacing().size()) == nib_zooms.numel());
    for (index_t d = 0; d < nib_zooms.numel(); ++d) {
        CHECK(img.header.spacing()[static_cast<std::size_t>(d)] == Approx(nib_zooms(d)));
        if (expected) CHECK(nib_zooms(d) == Approx(expected->affine.col(static_cast<int>(d)).head<3>().norm()));
    }
    CHECK(static_cast<int>(img.header.datatype) == nib_dtype(0));
}

}  // namespace

TEST_CASE("gcl and nibabel read each other's NIfTI files identically", "[data][nifti][nibabel]") {
    fs::remove_all(work);
    fs::create_directories(work);
    write_gcl_files<std::uint8_t>(0);
    write_gcl_files<std::int16_t>(1);
    write_gcl_files<std::int32_t>(2);
    write_gcl_files<float>(3);
    write_gcl_files<double>(4);
    // Floats stored as int16 through scl_slope / scl_inter.
    gd::NiftiWriteOptions scaled;
    scaled.affine = rotated(-0.7, true);
    scaled.datatype = gd::NiftiType::int16;
    scaled.scl_slope = 0.25;
    scaled.scl_inter = -10.0;
    Tensor<double> quarter(Shape{4, 5, 6});
    for (index_t i = 0; i < quarter.numel(); ++i) quarter.data()[i] = -10.0 + 0.25 * static_cast<double>(i * 7 % 97);
    gd::write_nifti<double>(work / "gcl_scaled.nii.gz", quarter, scaled);
    written["gcl_scaled.nii.gz"] = Written{quarter, *scaled.affine};

    const std::string command = "/usr/bin/python3 " + std::string(GCL_NIBABEL_SCRIPT) + " " + work.string();
    REQUIRE(std::system(command.c_str()) == 0);

    int gcl_files = 0, nib_files = 0;
    for (const auto& entry : fs::directory_iterator(work)) {
        const std::string name = entry.path().filename().string();
        const bool gz = name.ends_with(".nii.gz");
        if (!gz && !name.ends_with(".nii")) continue;
        const fs::path stem = work / name.substr(0, name.size() - (gz ? 7 : 4));
        if (name.starts_with("gcl_")) {
            ++gcl_files;
            // What nibabel reads from gcl's file is what gcl wrote.
            REQUIRE(written.count(name) == 1);
            check_same_reading(entry.path(), stem, &written.at(name));
        } else if (name.starts_with("nib_")) {
            ++nib_files;
            check_same_reading(entry.path(), stem, nullptr);
        }
    }
    CHECK(gcl_files == 11);
    CHECK(nib_files == 12);
}

int main(int argc, char** argv) {
    if (std::system("/usr/bin/python3 -c 'import nibabel' >/dev/null 2>&1") != 0) {
        std::cout << "SKIPPED: /usr/bin/python3 cannot import nibabel (Debian package python3-nibabel; "
                     "scripts/setup.sh installs it)\n";
        return 77;
    }
    return gcl_test::run_catch_session(argc, argv);
}
