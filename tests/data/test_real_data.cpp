// A real MRI volume: the T1 brain scan and its 7-class k-means label map that Debian's
// insighttoolkit5-examples ships (installed by scripts/setup.sh). Expected values were read
// with nibabel.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

#include "gcl/data/nifti.hpp"

namespace gd = gcl::data;
namespace fs = std::filesystem;
using gcl::index_t;

namespace {
const fs::path itk_data = "/usr/share/doc/insighttoolkit5-examples/examples/Data";
}

TEST_CASE("the ITK example T1 volume and its label map load and check out", "[data][nifti][real]") {
    const fs::path t1 = itk_data / "KmeansTest_T1UCharRaw.nii.gz";
    const fs::path seg = itk_data / "KmeansTest_T1KmeansPrelimSegmentation.nii.gz";
    INFO("needs Debian's insighttoolkit5-examples: run scripts/setup.sh");
    REQUIRE(fs::exists(t1));
    REQUIRE(fs::exists(seg));

    const auto image = gd::read_nifti<float>(t1);
    const auto labels = gd::read_nifti<std::uint8_t>(seg);
    // NIfTI dims 128 x 128 x 62, int16 image and uint8 labels on the same 2 x 2 x 3 mm grid.
    CHECK(image.header.dim == std::vector<index_t>{128, 128, 62});
    CHECK(labels.header.dim == image.header.dim);
    CHECK(image.data.shape() == gcl::Shape{62, 128, 128});
    CHECK(image.header.datatype == gd::NiftiType::int16);
    CHECK(labels.header.datatype == gd::NiftiType::uint8);
    for (const auto* h : {&image.header, &labels.header}) {
        CHECK(h->spacing() == std::vector<double>{2.0, 2.0, 3.0});
        CHECK(h->sform_code == gd::xform::scanner);
        CHECK(h->qform_code == gd::xform::aligned);
        gd::Affine expected;
        expected << -2, 0, 0, 0,  //
            0, 0, 3, -254,        //
            0, 2, 0, 0,           //
            0, 0, 0, 1;
        CHECK(h->affine().isApprox(expected));
        // The qform is the same frame up to float rounding of its quaternion.
        CHECK((h->qform() - expected).cwiseAbs().maxCoeff() < 2e-3);
    }

    // Intensities: 0..255, with the statistics nibabel reports.
    double sum = 0, lo = 1e9, hi = -1e9;
    index_t zeros = 0;
    for (index_t i = 0; i < image.data.numel(); ++i) {
        const double v = image.data.data()[i];
        sum += v;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        zeros += v == 0;
    }
    CHECK(lo == 0);
    CHECK(hi == 255);
    CHECK(sum == 19533798);
    CHECK(zeros == 767128);

    // Labels 0..6 with nibabel's voxel counts.
    std::map<int, index_t> counts;
    for (index_t i = 0; i < labels.data.numel(); ++i) ++counts[labels.data.data()[i]];
    const std::map<int, index_t> expected{{0, 126}, {1, 729202}, {2, 114711}, {3, 43423},
                                          {4, 24061}, {5, 57084}, {6, 47201}};
    CHECK(counts == expected);

    // Image and labels are aligned voxel for voxel: per-class mean intensities as nibabel gives
    // them (class 1 is the background around the head).
    std::map<int, double> mean;
    for (index_t i = 0; i < labels.data.numel(); ++i) mean[labels.data.data()[i]] += image.data.data()[i];
    for (auto& [k, m] : mean) m /= static_cast<double>(counts[k]);
    const double expected_mean[] = {45.30952380952381, 1.213634905005746, 42.84821856665882, 79.9868272574442,
                                    47.693362703129544, 75.67269287365987, 101.42632571343827};
    for (int k = 0; k < 7; ++k) CHECK(mean[k] == Approx(expected_mean[k]).epsilon(1e-12));
}
