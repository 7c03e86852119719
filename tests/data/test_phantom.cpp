#include <catch2/catch.hpp>
#include <omp.h>

#include <array>
#include <cmath>
#include <cstring>
#include <numbers>

#include "gcl/data/phantom.hpp"

namespace gd = gcl::data;
using gcl::index_t;
using gcl::Tensor;

namespace {

std::array<index_t, gd::cls::count> class_counts(const Tensor<std::uint8_t>& label, index_t k) {
    std::array<index_t, gd::cls::count> c{};
    const auto s = label.cview().select(0, k);
    for (index_t r = 0; r < s.dim(0); ++r)
        for (index_t q = 0; q < s.dim(1); ++q) ++c[s(r, q)];
    return c;
}

double class_mean(const gd::Volume& v, index_t k, std::uint8_t cls) {
    double sum = 0;
    index_t n = 0;
    for (index_t r = 0; r < v.image.dim(1); ++r)
        for (index_t q = 0; q < v.image.dim(2); ++q)
            if (v.label(k, r, q) == cls) {
                sum += v.image(k, r, q);
                ++n;
            }
    return n ? sum / static_cast<double>(n) : 0.0;
}

bool same(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.numel())) == 0;
}
bool same(const Tensor<std::uint8_t>& a, const Tensor<std::uint8_t>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel())) == 0;
}

gd::PhantomOptions small(index_t patients = 6) {
    gd::PhantomOptions o;
    o.patients = patients;
    o.seed = 11;
    return o;
}

}  // namespace

TEST_CASE("phantom volumes have the requested shape, ids, phases and meta labels", "[data][phantom]") {
    gd::PhantomOptions o = small(3);
    o.slices = 8;
    o.size = 96;
    o.first_patient = 40;
    const auto volumes = gd::phantom_volumes(o);
    REQUIRE(volumes.size() == 6);
    for (std::size_t i = 0; i < volumes.size(); ++i) {
        const gd::Volume& v = volumes[i];
        CHECK(v.patient == 40 + static_cast<std::int64_t>(i / 2));
        CHECK(v.phase == (i % 2 == 0 ? gd::Phase::ed : gd::Phase::es));
        CHECK(v.image.shape() == gcl::Shape{8, 96, 96});
        CHECK(v.label.shape() == v.image.shape());
        CHECK(v.spacing[0] == 1.5);
        CHECK(v.spacing[2] == Approx(gd::phantom_patient(o.seed, v.patient).slice_spacing(8)));
        CHECK(v.spacing[2] > 5.0);
        CHECK(v.spacing[2] < 15.0);
    }
    const auto slices = gd::phantom_slices(o);
    REQUIRE(slices.size() == 3 * 2 * 8);
    for (std::size_t i = 0; i < slices.size(); ++i) {
        const gd::SliceMeta& m = slices[i].meta;
        CHECK(m.patient == 40 + static_cast<std::int64_t>(i / 16));
        CHECK(m.phase == ((i / 8) % 2 == 0 ? gd::Phase::ed : gd::Phase::es));
        CHECK(m.slice == static_cast<std::int32_t>(i % 8));
        CHECK(m.slices == 8);
        CHECK(m.position == Approx(static_cast<double>(i % 8) / 7.0));
        CHECK(m.scanner == 0);
        CHECK(slices[i].image.shape() == gcl::Shape{96, 96});
        CHECK(slices[i].labelled());
        CHECK(slices[i].spacing == std::array<double, 2>{1.5, 1.5});
    }
}

TEST_CASE("phantom is deterministic, per-patient and independent of the thread count", "[data][phantom]") {
    const gd::PhantomOptions o = small(4);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const auto one = gd::phantom_volumes(o);
    omp_set_num_threads(3);
    const auto three = gd::phantom_volumes(o);
    omp_set_num_threads(threads);
    for (std::size_t i = 0; i < one.size(); ++i) {
        CHECK(same(one[i].image, three[i].image));
        CHECK(same(one[i].label, three[i].label));
    }
    // A patient is the same whatever else is generated.
    gd::PhantomOptions more = o;
    more.patients = 6;
    const auto six = gd::phantom_volumes(more);
    for (std::size_t i = 0; i < one.size(); ++i) CHECK(same(one[i].image, six[i].image));
    gd::PhantomOptions later = o;
    later.first_patient = 3;
    later.patients = 1;
    const auto third = gd::phantom_volumes(later);
    CHECK(same(third[0].image, one[4].image));
    CHECK(same(third[1].label, one[5].label));
    const gd::Volume single = gd::phantom_volume(o, 2, gd::Phase::es);
    CHECK(same(single.image, one[3].image));
    CHECK(same(single.label, one[3].label));
    // Another seed gives other patients.
    gd::PhantomOptions other = o;
    other.seed = 12;
    CHECK_FALSE(same(gd::phantom_volumes(other)[0].label, one[0].label));
}

TEST_CASE("phantom anatomy runs from base to apex and contracts at end-systole", "[data][phantom]") {
    gd::PhantomOptions o = small(10);
    o.normalize.method = gd::Normalization::none;
    const auto volumes = gd::phantom_volumes(o);
    int pathologies[5] = {};
    for (std::size_t i = 0; i < volumes.size(); i += 2) {
        const gd::Volume &ed = volumes[i], &es = volumes[i + 1];
        const gd::PhantomPatient p = gd::phantom_patient(o.seed, ed.patient);
        ++pathologies[static_cast<int>(p.pathology)];
        INFO("patient " << ed.patient << " (" << gd::pathology_code(p.pathology) << ")");
        const index_t last = o.slices - 1;
        double lv_ed = 0, lv_es = 0;
        for (const gd::Volume* v : {&ed, &es}) {
            const auto base = class_counts(v->label, 0), apex = class_counts(v->label, last);
            // The base shows all four classes; the RV has vanished at the apex.
            for (int c = 0; c < gd::cls::count; ++c) CHECK(base[static_cast<std::size_t>(c)] > 0);
            CHECK(apex[gd::cls::rv] == 0);
            CHECK(apex[gd::cls::myocardium] > 0);
            CHECK(base[gd::cls::lv] > 4 * apex[gd::cls::lv]);
            // The RV shrinks slice by slice.
            for (index_t k = 1; k <= last; ++k)
                CHECK(class_counts(v->label, k)[gd::cls::rv] <= class_counts(v->label, k - 1)[gd::cls::rv]);
            // Nothing is labelled on the image border.
            for (index_t k = 0; k <= last; ++k)
                for (index_t j = 0; j < o.size; ++j) {
                    CHECK(v->label(k, 0, j) == 0);
                    CHECK(v->label(k, o.size - 1, j) == 0);
                    CHECK(v->label(k, j, 0) == 0);
                    CHECK(v->label(k, j, o.size - 1) == 0);
                }
        }
        for (index_t k = 0; k <= last; ++k) {
            lv_ed += static_cast<double>(class_counts(ed.label, k)[gd::cls::lv]);
            lv_es += static_cast<double>(class_counts(es.label, k)[gd::cls::lv]);
        }
        // The cavity volume ratio follows the patient's ejection fraction.
        CHECK(lv_es / lv_ed == Approx(1.0 - p.ejection_fraction).margin(0.1));
        // At the base the myocardial area is (nearly) conserved while the wall thickens.
        const double myo_ed = static_cast<double>(class_counts(ed.label, 0)[gd::cls::myocardium]);
        const double myo_es = static_cast<double>(class_counts(es.label, 0)[gd::cls::myocardium]);
        CHECK(myo_es / myo_ed == Approx(1.0).margin(0.25));
        // bSSFP contrast: bright blood, dark muscle.
        CHECK(class_mean(ed, 2, gd::cls::lv) > 2.0 * class_mean(ed, 2, gd::cls::myocardium));
        CHECK(class_mean(ed, 2, gd::cls::rv) > 2.0 * class_mean(ed, 2, gd::cls::myocardium));
    }
    int kinds = 0;
    for (int n : pathologies) kinds += n > 0;
    CHECK(kinds >= 3);
}

TEST_CASE("phantom images carry partial volume, a bias field and Rician noise", "[data][phantom]") {
    gd::PhantomOptions o = small(1);
    o.normalize.method = gd::Normalization::none;
    gd::ScannerProfile clean;
    clean.noise = 0;
    clean.bias = 0;
    clean.texture = 0;
    o.profile = clean;
    const gd::Volume v = gd::phantom_volume(o, 1, gd::Phase::ed);

    // Partial volume: LV pixels touching the myocardium are darker than LV pixels inside.
    double border = 0, inside = 0;
    index_t nb = 0, ni = 0;
    const index_t k = 1;
    for (index_t r = 1; r + 1 < o.size; ++r)
        for (index_t c = 1; c + 1 < o.size; ++c) {
            if (v.label(k, r, c) != gd::cls::lv) continue;
            bool touches = false, deep = true;
            for (index_t dr = -2; dr <= 2; ++dr)
                for (index_t dc = -2; dc <= 2; ++dc) {
                    const index_t rr = std::clamp<index_t>(r + dr, 0, o.size - 1), cc = std::clamp<index_t>(c + dc, 0, o.size - 1);
                    if (v.label(k, rr, cc) != gd::cls::lv) deep = false;
                    if (std::abs(dr) <= 1 && std::abs(dc) <= 1 && v.label(k, rr, cc) == gd::cls::myocardium) touches = true;
                }
            if (touches) border += v.image(k, r, c), ++nb;
            if (deep) inside += v.image(k, r, c), ++ni;
        }
    REQUIRE(nb > 10);
    REQUIRE(ni > 10);
    CHECK(border / static_cast<double>(nb) < 0.85 * inside / static_cast<double>(ni));

    // Bias field: the same anatomy with a bias differs by a smooth, non-constant factor.
    gd::ScannerProfile biased = clean;
    biased.bias = 0.6;
    o.profile = biased;
    const gd::Volume b = gd::phantom_volume(o, 1, gd::Phase::ed);
    double sum = 0, sum2 = 0, jump = 0;
    index_t n = 0, nj = 0;
    for (index_t r = 0; r < o.size; ++r)
        for (index_t c = 0; c < o.size; ++c) {
            if (v.image(k, r, c) < 0.1f) continue;
            const double lr = std::log(b.image(k, r, c) / v.image(k, r, c));
            sum += lr, sum2 += lr * lr, ++n;
            if (c + 1 < o.size && v.image(k, r, c + 1) >= 0.1f) {
                jump = std::max(jump, std::abs(std::log(b.image(k, r, c + 1) / v.image(k, r, c + 1)) - lr));
                ++nj;
            }
        }
    const double mean = sum / static_cast<double>(n);
    CHECK(std::sqrt(sum2 / static_cast<double>(n) - mean * mean) > 0.05);
    CHECK(jump < 0.05);  // smooth: neighbouring pixels differ by little

    // Rician noise: in air the magnitude of pure noise has the Rayleigh mean sigma * sqrt(pi / 2).
    gd::ScannerProfile noisy = clean;
    noisy.noise = 0.05;
    o.profile = noisy;
    const gd::Volume z = gd::phantom_volume(o, 1, gd::Phase::ed);
    double air = 0;
    index_t na = 0;
    for (index_t r = 0; r < o.size; ++r)
        for (index_t c = 0; c < o.size; ++c)
            if (v.image(k, r, c) == 0.0f) air += z.image(k, r, c), ++na;
    REQUIRE(na > 200);
    const double sigma = 0.05 * gd::phantom_patient(o.seed, 1).noise_gain;
    CHECK(air / static_cast<double>(na) == Approx(sigma * std::sqrt(std::numbers::pi / 2)).epsilon(0.08));
}

TEST_CASE("phantom scanners change contrast, resolution and noise", "[data][phantom]") {
    gd::PhantomOptions o = small(1);
    std::array<double, 3> contrast{}, lv_pixels{};
    for (int s = 0; s < 3; ++s) {
        o.scanner = s;
        const gd::Volume v = gd::phantom_volume(o, 1, gd::Phase::ed);
        CHECK(v.scanner == s);
        CHECK(v.spacing[0] == gd::scanner_profile(s).spacing);
        contrast[static_cast<std::size_t>(s)] = class_mean(v, 2, gd::cls::lv) / class_mean(v, 2, gd::cls::myocardium);
        lv_pixels[static_cast<std::size_t>(s)] = static_cast<double>(class_counts(v.label, 2)[gd::cls::lv]);
        // Default normalisation maps each volume's 1st..99th percentiles to 0..1.
        std::vector<float> values(v.image.data(), v.image.data() + v.image.numel());
        CHECK(gd::percentile(values, 1.0) == Approx(0.0).margin(1e-5));
        CHECK(gd::percentile(values, 99.0) == Approx(1.0).epsilon(1e-5));
    }
    CHECK(contrast[0] > 2.5);
    CHECK(contrast[1] < 0.8 * contrast[0]);
    CHECK(contrast[2] < 0.8 * contrast[0]);
    // The same anatomy covers fewer pixels at a coarser spacing.
    const double s0 = gd::scanner_profile(0).spacing, s1 = gd::scanner_profile(1).spacing;
    CHECK(lv_pixels[1] / lv_pixels[0] == Approx((s0 * s0) / (s1 * s1)).epsilon(0.1));
}

TEST_CASE("phantom rejects invalid options", "[data][phantom]") {
    gd::PhantomOptions o = small(1);
    CHECK_THROWS_WITH(gd::scanner_profile(3), Catch::Contains("unknown scanner 3"));
    o.scanner = 5;
    CHECK_THROWS_AS(gd::phantom_volumes(o), gcl::Error);
    o = small(0);
    CHECK_THROWS_AS(gd::phantom_volumes(o), gcl::Error);
    o = small(1);
    o.size = 8;
    CHECK_THROWS_AS(gd::phantom_volumes(o), gcl::Error);
    o = small(1);
    o.slices = 0;
    CHECK_THROWS_AS(gd::phantom_slices(o), gcl::Error);
    o = small(1);
    gd::ScannerProfile bad;
    bad.spacing = -1;
    o.profile = bad;
    CHECK_THROWS_AS(gd::phantom_volume(o, 1, gd::Phase::ed), gcl::Error);
}
