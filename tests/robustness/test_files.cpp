// Files gcl reads and writes: both NIfTI transforms survive a write-back, and the .npy reader
// rejects every malformed header with gcl::Error (inputs found by the fuzzers included).
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "gcl/core/npy.hpp"
#include "gcl/data/nifti.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace gd = gcl::data;

namespace {
Tensor<float> ramp(const Shape& s) {
    Tensor<float> t(s);
    for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = 0.25f * static_cast<float>(i);
    return t;
}

std::vector<unsigned char> npy_bytes(int major, const std::string& header) {
    std::vector<unsigned char> b = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(major), 0};
    const std::size_t n = header.size();
    b.push_back(static_cast<unsigned char>(n & 0xff));
    b.push_back(static_cast<unsigned char>((n >> 8) & 0xff));
    if (major != 1) {
        b.push_back(static_cast<unsigned char>((n >> 16) & 0xff));
        b.push_back(static_cast<unsigned char>((n >> 24) & 0xff));
    }
    b.insert(b.end(), header.begin(), header.end());
    return b;
}
}  // namespace

TEST_CASE("NIfTI: a qform and an sform that differ are both written back", "[robustness][nifti]") {
    // A scanner qform (rotation about z, zooms 1.5, 1.5, 8, an offset) beside a different atlas
    // sform (shear and other zooms), as registration tools leave them.
    gd::Affine qform = gd::Affine::Identity();
    qform.topLeftCorner<3, 3>() = Eigen::AngleAxisd(0.3, Eigen::Vector3d::UnitZ()).toRotationMatrix() *
                                  Eigen::Vector3d(1.5, 1.5, 8.0).asDiagonal();
    qform.col(3).head<3>() = Eigen::Vector3d(-90, 30, -12);
    gd::Affine sform = gd::Affine::Identity();
    sform.topLeftCorner<3, 3>() << 1.0, 0.2, 0.0, -0.1, 2.0, 0.0, 0.0, 0.3, 4.0;
    sform.col(3).head<3>() = Eigen::Vector3d(5, 6, 7);

    gd::NiftiWriteOptions o;
    o.affine = sform;
    o.xform_code = gd::xform::mni;
    o.qform = qform;
    o.qform_code = gd::xform::scanner;
    o.description = "two transforms";
    const auto bytes = gd::encode_nifti<float>(ramp(Shape{3, 4, 5}).cview(), o);
    const auto img = gd::parse_nifti<float>(bytes);
    REQUIRE(img.header.qform_code == gd::xform::scanner);
    REQUIRE(img.header.sform_code == gd::xform::mni);
    CHECK((img.header.qform() - qform).cwiseAbs().maxCoeff() < 1e-4);
    CHECK((img.header.sform() - sform).cwiseAbs().maxCoeff() < 1e-5);
    CHECK(img.header.spacing()[2] == Approx(8.0));  // pixdim: the qform's zooms

    // Written back with the header it was read with: both transforms, codes, type and text kept.
    const auto again = gd::parse_nifti<float>(gd::encode_nifti<float>(img.data.cview(), gd::nifti_write_options(img.header)));
    CHECK(again.header.qform_code == gd::xform::scanner);
    CHECK(again.header.sform_code == gd::xform::mni);
    CHECK((again.header.qform() - qform).cwiseAbs().maxCoeff() < 1e-4);
    CHECK((again.header.sform() - sform).cwiseAbs().maxCoeff() < 1e-5);
    CHECK(again.header.description == "two transforms");
    CHECK(again.header.datatype == gd::NiftiType::float32);
    for (index_t i = 0; i < again.data.numel(); ++i) CHECK(again.data.data()[i] == img.data.data()[i]);

    // A file with only a qform (sform_code 0) keeps it and writes no sform code.
    gd::NiftiWriteOptions q_only;
    q_only.affine = qform;
    q_only.xform_code = gd::xform::unknown;
    q_only.qform_code = gd::xform::scanner;
    const auto only = gd::parse_nifti<float>(gd::encode_nifti<float>(ramp(Shape{2, 2, 2}).cview(), q_only));
    REQUIRE(only.header.sform_code == 0);
    const auto only_again =
        gd::parse_nifti<float>(gd::encode_nifti<float>(only.data.cview(), gd::nifti_write_options(only.header)));
    CHECK(only_again.header.sform_code == 0);
    CHECK(only_again.header.qform_code == gd::xform::scanner);
    CHECK((only_again.header.qform() - qform).cwiseAbs().maxCoeff() < 1e-4);

    // A qform that is not a valid affine is rejected by name.
    gd::NiftiWriteOptions bad = o;
    bad.qform = gd::Affine::Zero();
    CHECK_THROWS_WITH(gd::encode_nifti<float>(ramp(Shape{2, 2, 2}).cview(), bad), Catch::Contains("qform"));
}

TEST_CASE("npy: malformed headers are gcl::Error naming the input", "[robustness][npy]") {
    const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
    std::vector<unsigned char> ok = npy_bytes(1, good);
    for (int i = 0; i < 8; ++i) ok.push_back(0);
    const Tensor<float> t = gcl::parse_npy<float>(ok, "ok.npy");
    CHECK(t.shape() == Shape{2});

    const auto rejects = [](const std::vector<unsigned char>& bytes, const char* what) {
        INFO(what);
        CHECK_THROWS_WITH(gcl::parse_npy<float>(bytes, "bad.npy"), Catch::Contains("bad.npy") && Catch::Contains(what));
    };
    rejects(npy_bytes(1, ""), "header");                 // an empty header (found by fuzz_npy)
    rejects(npy_bytes(2, "\n"), "header");               // a header with no dictionary
    rejects(npy_bytes(1, "{'descr': '<f4'}\n"), "header");
    rejects(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,x), }\n"), "header");
    rejects(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }\n"), "header");
    rejects(npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n"), "dtype");
    rejects(npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n"), "Fortran");
    rejects(npy_bytes(1, good), "bytes of data");        // no data
    rejects(npy_bytes(4, good), "version");
    std::vector<unsigned char> cut = npy_bytes(1, good);
    cut.resize(20);
    rejects(cut, "truncated");
    rejects({'N', 'U', 'M', 'P', 'Y'}, "bad magic");
}
