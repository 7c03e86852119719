#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "gcl/data/acdc.hpp"
#include "gcl/data/phantom_acdc.hpp"
#include "temp_dir.hpp"

namespace gd = gcl::data;
namespace fs = std::filesystem;
using gcl::index_t;
using gcl::Tensor;

namespace {

gd::PhantomOptions tree_options() {
    gd::PhantomOptions o;
    o.patients = 3;
    o.slices = 6;
    o.size = 80;
    o.seed = 5;
    return o;
}

void write_text(const fs::path& p, const std::string& text) {
    std::ofstream out(p);
    out << text;
}

}  // namespace

TEST_CASE("Info.cfg is parsed with its ED and ES frames", "[data][acdc]") {
    const gd::AcdcInfo info =
        gd::parse_acdc_info("ED: 1\nES: 12\nGroup: DCM\nHeight: 184.0\nNbFrame: 30\nWeight: 95.0\n", "Info.cfg");
    CHECK(info.ed == 1);
    CHECK(info.es == 12);
    CHECK(info.group == "DCM");
    CHECK(info.height == 184.0);
    CHECK(info.weight == 95.0);
    CHECK(info.frames == 30);
    CHECK(info.frame(gd::Phase::es) == 12);
    // Windows line ends, blank lines and unknown keys are fine.
    CHECK(gd::parse_acdc_info("ED: 3\r\n\r\nES: 9\r\nComment: x\r\n", "x").es == 9);
    CHECK_THROWS_WITH(gd::parse_acdc_info("ED: 1\nGroup: NOR\n", "p/Info.cfg"), Catch::Contains("missing ES"));
    CHECK_THROWS_WITH(gd::parse_acdc_info("ED: one\nES: 2\n", "p/Info.cfg"), Catch::Contains("ED must be a number"));
    CHECK_THROWS_WITH(gd::parse_acdc_info("ED: 1.5\nES: 2\n", "p/Info.cfg"), Catch::Contains("integer"));
    CHECK_THROWS_WITH(gd::parse_acdc_info("ED 1\nES: 2\n", "p/Info.cfg"), Catch::Contains("line 1"));
    CHECK(gd::acdc_patient_name(7) == "patient007");
    CHECK(gd::acdc_frame_file(101, 4, true) == "patient101_frame04_gt.nii.gz");
}

TEST_CASE("the phantom written as an ACDC tree loads back slice for slice", "[data][acdc]") {
    gcl_test::TempDir dir("acdc_roundtrip");
    const gd::PhantomOptions o = tree_options();
    const std::vector<gd::Volume> volumes = gd::write_phantom_acdc(dir.path(), o);
    CHECK(gd::acdc_patients(dir.path()) == std::vector<std::int64_t>{1, 2, 3});
    const gd::AcdcInfo info = gd::read_acdc_info(dir / "patient002" / "Info.cfg");
    const gd::PhantomPatient p2 = gd::phantom_patient(o.seed, 2);
    CHECK(info.ed == 1);
    CHECK(info.es == p2.es_frame);
    CHECK(info.group == gd::pathology_code(p2.pathology));
    CHECK(fs::exists(dir / "patient002" / gd::acdc_frame_file(2, p2.es_frame, true)));

    // Same spacing and size, no renormalisation: the loader returns exactly the phantom.
    gd::AcdcOptions a;
    a.spacing = 1.5;
    a.size = o.size;
    a.normalize.method = gd::Normalization::none;
    const std::vector<gd::Slice> loaded = gd::load_acdc(dir.path(), a);
    std::vector<gd::Slice> expected;
    for (const gd::Volume& v : volumes) {
        auto s = gd::volume_slices(v);
        expected.insert(expected.end(), s.begin(), s.end());
    }
    REQUIRE(loaded.size() == expected.size());
    for (std::size_t i = 0; i < loaded.size(); ++i) {
        CHECK(loaded[i].meta == expected[i].meta);
        CHECK(std::memcmp(loaded[i].image.data(), expected[i].image.data(), sizeof(float) * 80 * 80) == 0);
        CHECK(std::memcmp(loaded[i].label.data(), expected[i].label.data(), 80 * 80) == 0);
        CHECK(loaded[i].spacing == expected[i].spacing);
    }
    // Default options renormalise per volume, which the phantom already is: values barely move.
    gd::AcdcOptions defaults;
    defaults.size = 80;
    const std::vector<gd::Slice> renorm = gd::load_acdc(dir.path(), defaults);
    for (index_t j = 0; j < 80 * 80; ++j) CHECK(renorm[3].image.data()[j] == Approx(expected[3].image.data()[j]).margin(1e-4));

    // A subset of patients and one phase.
    a.patients = {3};
    a.phases = {gd::Phase::es};
    const auto es_only = gd::load_acdc(dir.path(), a);
    REQUIRE(es_only.size() == 6);
    CHECK(es_only[0].meta.patient == 3);
    CHECK(es_only[0].meta.phase == gd::Phase::es);
}

TEST_CASE("ACDC slices are resampled to the target spacing and cropped or padded", "[data][acdc]") {
    gcl_test::TempDir dir("acdc_resample");
    const gd::PhantomOptions o = tree_options();
    const auto volumes = gd::write_phantom_acdc(dir.path(), o);
    gd::AcdcOptions a;
    a.patients = {1};
    a.phases = {gd::Phase::ed};
    a.normalize.method = gd::Normalization::none;

    // Native grid kept, no crop: 80 x 80 at 1.5 mm. At 3 mm the grid halves.
    a.spacing.reset();
    a.size = 0;
    CHECK(gd::load_acdc(dir.path(), a)[0].image.shape() == gcl::Shape{80, 80});
    a.spacing = 3.0;
    const auto coarse = gd::load_acdc(dir.path(), a);
    CHECK(coarse[0].image.shape() == gcl::Shape{40, 40});
    CHECK(coarse[0].spacing == std::array<double, 2>{3.0, 3.0});
    // Areas in mm^2 are preserved by the resampling, class by class.
    for (index_t k = 0; k < 3; ++k) {
        std::array<double, gd::cls::count> fine{}, coarse_area{};
        const auto& lf = volumes[0].label;
        for (index_t j = 0; j < 80 * 80; ++j) fine[lf.data()[k * 80 * 80 + j]] += 1.5 * 1.5;
        for (index_t j = 0; j < 40 * 40; ++j) coarse_area[coarse[static_cast<std::size_t>(k)].label.data()[j]] += 3.0 * 3.0;
        for (int c = 1; c < gd::cls::count; ++c)
            CHECK(coarse_area[static_cast<std::size_t>(c)] == Approx(fine[static_cast<std::size_t>(c)]).epsilon(0.25).margin(60));
        // Labels stay labels: only ACDC classes appear.
        for (index_t j = 0; j < 40 * 40; ++j) CHECK(coarse[static_cast<std::size_t>(k)].label.data()[j] < gd::cls::count);
    }
    // Crop to 64: the centre window of the native slice; pad to 100: the slice in the middle.
    a.spacing = 1.5;
    a.size = 64;
    const auto cropped = gd::load_acdc(dir.path(), a);
    CHECK(cropped[0].image(0, 0) == volumes[0].image(0, 8, 8));
    CHECK(cropped[0].label(40, 40) == volumes[0].label(0, 48, 48));
    a.size = 100;
    const auto padded = gd::load_acdc(dir.path(), a);
    CHECK(padded[0].image(0, 0) == 0.0f);
    CHECK(padded[0].image(10, 10) == volumes[0].image(0, 0, 0));
    CHECK(padded[0].label(50, 50) == volumes[0].label(0, 40, 40));
}

TEST_CASE("ACDC loading names missing and invalid files", "[data][acdc]") {
    gcl_test::TempDir dir("acdc_errors");
    CHECK_THROWS_AS(gd::acdc_patients(dir / "nowhere"), gcl::Error);
    CHECK_THROWS_WITH(gd::load_acdc(dir.path()), Catch::Contains("no patientNNN folders"));

    gd::PhantomOptions o = tree_options();
    o.patients = 1;
    gd::write_phantom_acdc(dir.path(), o);
    const fs::path pdir = dir / "patient001";
    const gd::AcdcInfo info = gd::read_acdc_info(pdir / "Info.cfg");

    // A label map with a value outside 0..3.
    auto gt = gd::read_nifti<std::uint8_t>(pdir / gd::acdc_frame_file(1, info.ed, true));
    gt.data.data()[17] = 7;
    gd::write_nifti<std::uint8_t>(pdir / gd::acdc_frame_file(1, info.ed, true), gt.data);
    CHECK_THROWS_WITH(gd::load_acdc(dir.path()), Catch::Contains("holds label 7"));
    gt.data.data()[17] = 0;
    gd::write_nifti<std::uint8_t>(pdir / gd::acdc_frame_file(1, info.ed, true), gt.data);
    CHECK(gd::load_acdc(dir.path()).size() == 12);
    // Unlabelled loading does not read the ground truth at all.
    gd::AcdcOptions unlabelled;
    unlabelled.labels = false;
    const auto images = gd::load_acdc(dir.path(), unlabelled);
    CHECK(images.size() == 12);
    CHECK_FALSE(images[0].labelled());

    // Missing files and a label map of the wrong shape.
    fs::remove(pdir / gd::acdc_frame_file(1, info.es, true));
    CHECK_THROWS_WITH(gd::load_acdc(dir.path(), gd::AcdcOptions{}), Catch::Contains("missing"));
    gd::write_nifti<std::uint8_t>(pdir / gd::acdc_frame_file(1, info.es, true), Tensor<std::uint8_t>(gcl::Shape{6, 80, 79}));
    gd::AcdcOptions es;
    es.phases = {gd::Phase::es};
    CHECK_THROWS_WITH(gd::load_acdc(dir.path(), es), Catch::Contains("has shape"));
    fs::remove(pdir / gd::acdc_frame_file(1, info.es, false));
    CHECK_THROWS_WITH(gd::load_acdc(dir.path(), es), Catch::Contains("missing"));

    // Non-finite intensities and broken Info.cfg files.
    Tensor<float> nan_volume(gcl::Shape{2, 4, 4});
    nan_volume.data()[5] = std::numeric_limits<float>::quiet_NaN();
    gd::write_nifti<float>(pdir / gd::acdc_frame_file(1, info.es, false), nan_volume);
    es.labels = false;
    CHECK_THROWS_WITH(gd::load_acdc(dir.path(), es), Catch::Contains("non-finite"));
    write_text(pdir / "Info.cfg", "ED: 1\n");
    CHECK_THROWS_WITH(gd::load_acdc(dir.path()), Catch::Contains("missing ES"));
    CHECK_THROWS_AS(gd::read_acdc_info(dir / "nowhere.cfg"), gcl::Error);
}
