#pragma once
// A built-in, seeded data set of short-axis cardiac cine MRI slices with ground truth in four
// classes (background, RV cavity, LV myocardium, LV cavity), shaped like the ACDC challenge.
//
// Every patient is an anatomy drawn from the seed and the patient id alone: heart size, position
// and rotation, wall thickness, the crescent of the right ventricle, an ACDC-like pathology group
// (normal, dilated, hypertrophic, infarcted, abnormal RV), and the surroundings (body outline,
// subcutaneous fat, chest-wall muscle, dark lungs, liver, aorta, spine). Slices run from the
// base (position 0) to near the apex (position 1): the LV narrows and the RV shrinks and
// vanishes. End-systole has a smaller cavity and a thicker wall than end-diastole (the
// myocardial area is conserved). The image is rendered in millimetres with analytic partial-
// volume coverage at tissue borders, blurred by the scanner's point-spread function, multiplied
// by a smooth bias field and given Rician noise. A ScannerProfile sets contrast, noise, bias and
// resolution; scanners 1 and 2 are out-of-distribution domains for scanner 0.
//
// Randomness: patient p's anatomy comes from Rng(seed).split(p) and each slice's noise from a
// further split, so a patient looks the same whatever else is generated and the result does not
// depend on the number of threads.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <optional>
#include <tuple>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/intensity.hpp"
#include "gcl/data/slice.hpp"

namespace gcl::data {

// ACDC's five diagnostic groups.
enum class Pathology : std::int32_t { normal, dilated, hypertrophic, infarct, abnormal_rv };

// The group name ACDC writes in Info.cfg.
inline const char* pathology_code(Pathology p) {
    switch (p) {
        case Pathology::normal: return "NOR";
        case Pathology::dilated: return "DCM";
        case Pathology::hypertrophic: return "HCM";
        case Pathology::infarct: return "MINF";
        case Pathology::abnormal_rv: return "RV";
    }
    return "NOR";
}

// What the scanner does to the anatomy. Tissue signals are relative to LV blood.
struct ScannerProfile {
    double spacing = 1.5;     // millimetres per pixel
    double psf_fwhm = 1.9;    // acquired resolution: FWHM of the Gaussian point-spread function, mm
    double noise = 0.035;     // Rician noise sigma, relative to the blood signal
    double bias = 0.25;       // amplitude of the log bias field across the field of view
    double blood = 1.0;
    double rv_blood = 0.93;
    double myocardium = 0.24;
    double fat = 0.78;
    double lung = 0.05;
    double liver = 0.42;
    double muscle = 0.20;
    double soft_tissue = 0.28;
    double bone = 0.40;
    double texture = 0.06;    // amplitude of smooth texture in soft tissue
};

// Built-in scanners: 0 is a 1.5 T bSSFP cine; 1 is a low-contrast, noisier, lower-resolution
// domain with a strong bias field; 2 is a gradient-echo-like contrast (dark blood, bright fat)
// at a finer pixel size.
inline ScannerProfile scanner_profile(int scanner) {
    ScannerProfile p;
    switch (scanner) {
        case 0: return p;
        case 1:
            p.spacing = 1.8;
            p.psf_fwhm = 3.4;
            p.noise = 0.07;
            p.bias = 0.55;
            p.blood = 0.80;
            p.rv_blood = 0.74;
            p.myocardium = 0.36;
            p.fat = 0.85;
            p.lung = 0.10;
            p.liver = 0.52;
            p.muscle = 0.32;
            p.soft_tissue = 0.40;
            return p;
        case 2:
            p.spacing = 1.3;
            p.psf_fwhm = 2.2;
            p.noise = 0.045;
            p.bias = 0.35;
            p.blood = 0.55;
            p.rv_blood = 0.50;
            p.myocardium = 0.30;
            p.fat = 1.00;
            p.lung = 0.08;
            p.liver = 0.58;
            p.muscle = 0.33;
            p.soft_tissue = 0.38;
            p.bone = 0.55;
            return p;
        default:
            fail("scanner_profile", "unknown scanner ", scanner,
                 " (built-in scanners are 0, 1 and 2; pass a ScannerProfile for others)");
    }
}

struct PhantomOptions {
    index_t patients = 100;
    index_t slices = 10;          // per stack, base to apex
    index_t size = 128;           // images are size x size
    std::uint64_t seed = 0;
    std::int64_t first_patient = 1;  // patient ids are first_patient, first_patient + 1, ... (ACDC counts from 1)
    std::int32_t scanner = 0;
    std::optional<ScannerProfile> profile;  // replaces scanner_profile(scanner) when set
    NormalizeOptions normalize{};           // per volume; Normalization::none keeps raw signal
};

// One patient's anatomy (millimetres and radians; image frame: x right, y down).
struct PhantomPatient {
    std::int64_t id = 0;
    Pathology pathology = Pathology::normal;
    double scene_angle = 0;        // in-plane rotation of the whole scene about the heart
    double cx = 0, cy = 0;         // LV centre at the base
    double drift_x = 0, drift_y = 0;  // LV centre displacement from base to apex
    double rv_angle = 0;           // direction from the LV centre to the middle of the RV
    double lv_radius = 0;          // end-diastolic endocardial radius at the base
    double wall = 0;               // end-diastolic wall thickness
    double ejection_fraction = 0;  // LV
    double rv_ejection_fraction = 0;
    double lv_length = 0;          // end-diastolic cavity length, base plane to apex
    double coverage = 0;           // fraction of lv_length the stack covers
    double rv_thickness = 0;       // end-diastolic RV cavity thickness at the base
    double rv_span = 0;            // half-angle the RV wraps around the LV at the base
    double rv_length = 0;          // fraction of lv_length the RV reaches
    double rv_asymmetry = 0;
    double rv_wall = 0;
    std::array<double, 3> endo_amp{}, endo_phase{};  // harmonics 2, 3, 4 of the endocardium
    double trabeculation = 0, trab_phase = 0;
    double septal_thickening = 0;                     // hypertrophic septum
    double infarct_angle = 0, infarct_width = 0, infarct_depth = 0;
    double papillary_radius = 0;
    double epi_fat = 0, epi_fat_phase = 0;
    // Surroundings.
    double body_x = 0, body_y = 0, body_a = 0, body_b = 0, body_angle = 0, body_fat = 0, body_muscle = 0;
    std::array<double, 5> right_lung{}, left_lung{};  // x, y, a, b, angle
    std::array<std::array<double, 5>, 16> lung_vessels{};  // bright vessel cross-sections in the lungs
    std::array<double, 5> liver{};
    std::array<double, 5> stomach{};
    double aorta_x = 0, aorta_y = 0, aorta_r = 0;
    double spine_x = 0, spine_y = 0, spine_r = 0;
    // Appearance.
    std::array<double, 9> tissue_gain{};  // per-patient contrast jitter
    double noise_gain = 1;
    std::array<double, 5> bias_coef{};    // x, y, x^2, y^2, xy
    std::array<double, 12> texture{};     // 3 waves: kx, ky, phase_x, phase_y
    // Cine acquisition, for ACDC's Info.cfg.
    int frames = 25, es_frame = 10;
    double height_cm = 170, weight_kg = 70;

    double slice_spacing(index_t slices) const {
        return slices > 1 ? coverage * lv_length / static_cast<double>(slices - 1) : 10.0;
    }
};

namespace detail {

inline double uniform_in(Rng& r, double lo, double hi) { return r.uniform(lo, hi); }

// Draws patient `id`'s anatomy. The order of draws is part of the data set's definition.
inline PhantomPatient draw_patient(std::uint64_t seed, std::int64_t id) {
    Rng r = Rng(seed).split(static_cast<std::uint64_t>(id));
    PhantomPatient p;
    p.id = id;
    p.pathology = static_cast<Pathology>(r.below(5));
    constexpr double pi = std::numbers::pi;
    auto u = [&](double lo, double hi) { return uniform_in(r, lo, hi); };

    p.scene_angle = r.normal(0.0, 0.12);
    p.cx = std::clamp(r.normal(0.0, 5.0), -12.0, 12.0);
    p.cy = std::clamp(r.normal(0.0, 5.0), -12.0, 12.0);
    p.drift_x = r.normal(0.0, 3.0);
    p.drift_y = r.normal(0.0, 3.0);
    p.rv_angle = pi + 0.30 + r.normal(0.0, 0.12);

    double radius = 0, wall = 0, ef = 0, length = 0, rv_thick = 0, rv_ef = 0;
    switch (p.pathology) {
        case Pathology::normal: radius = 24; wall = 8.0; ef = 0.62; length = 86; rv_thick = 19; rv_ef = 0.55; break;
        case Pathology::dilated: radius = 32; wall = 6.5; ef = 0.22; length = 100; rv_thick = 20; rv_ef = 0.40; break;
        case Pathology::hypertrophic: radius = 20; wall = 13.5; ef = 0.70; length = 78; rv_thick = 17; rv_ef = 0.60; break;
        case Pathology::infarct: radius = 28; wall = 8.0; ef = 0.35; length = 92; rv_thick = 19; rv_ef = 0.48; break;
        case Pathology::abnormal_rv: radius = 22; wall = 7.5; ef = 0.58; length = 84; rv_thick = 30; rv_ef = 0.32; break;
    }
    const double size = std::exp(r.normal(0.0, 0.07));  // body-size scaling
    p.lv_radius = radius * size * std::exp(r.normal(0.0, 0.05));
    p.wall = wall * std::exp(r.normal(0.0, 0.08));
    p.ejection_fraction = std::clamp(ef + r.normal(0.0, 0.05), 0.1, 0.8);
    p.rv_ejection_fraction = std::clamp(rv_ef + r.normal(0.0, 0.05), 0.15, 0.7);
    p.lv_length = length * size * std::exp(r.normal(0.0, 0.05));
    p.coverage = u(0.92, 0.99);
    p.rv_thickness = rv_thick * size * std::exp(r.normal(0.0, 0.1));
    p.rv_span = u(1.15, 1.40);
    p.rv_length = u(0.72, 0.88);
    p.rv_asymmetry = u(-0.25, 0.25);
    p.rv_wall = u(2.5, 3.5);
    for (int k = 0; k < 3; ++k) {
        p.endo_amp[static_cast<std::size_t>(k)] = u(0.0, 0.05) / (1.0 + k);
        p.endo_phase[static_cast<std::size_t>(k)] = u(0.0, 2 * pi);
    }
    p.trabeculation = u(0.01, 0.035);
    p.trab_phase = u(0.0, 2 * pi);
    p.septal_thickening = p.pathology == Pathology::hypertrophic ? u(0.3, 0.7) : 0.0;
    p.infarct_angle = u(0.0, 2 * pi);
    p.infarct_width = u(0.5, 0.9);
    p.infarct_depth = p.pathology == Pathology::infarct ? u(0.35, 0.6) : 0.0;
    p.papillary_radius = u(2.8, 3.8) * size;
    p.epi_fat = u(1.5, 5.0);
    p.epi_fat_phase = u(0.0, 2 * pi);

    p.body_x = r.normal(0.0, 6.0);
    p.body_y = 30 + r.normal(0.0, 6.0);
    p.body_a = u(140, 175) * size;
    p.body_b = u(100, 120) * size;
    p.body_angle = r.normal(0.0, 0.08);
    p.body_fat = u(6, 18);
    p.body_muscle = u(7, 13);
    // The lungs fill the thorax laterally; the chest wall clips their outer side.
    p.right_lung = {p.cx - 88 + r.normal(0.0, 4.0), p.cy + 12 + r.normal(0.0, 5.0), u(52, 62), u(85, 100), u(0.05, 0.25)};
    p.left_lung = {p.cx + 86 + r.normal(0.0, 4.0), p.cy + 8 + r.normal(0.0, 5.0), u(50, 60), u(85, 100), u(-0.25, -0.05)};
    for (auto& vessel : p.lung_vessels) {
        // Position relative to the lung centre (in units of its semi-axes), radius, drift per unit position.
        vessel = {u(-0.8, 0.8), u(-0.8, 0.8), u(1.5, 3.2), r.normal(0.0, 0.25), r.normal(0.0, 0.25)};
    }
    p.liver = {p.cx - 40 + r.normal(0.0, 6.0), p.cy + 70 + r.normal(0.0, 6.0), u(70, 90), u(45, 60), u(0.25, 0.5)};
    p.stomach = {p.cx + 55 + r.normal(0.0, 5.0), p.cy + 62 + r.normal(0.0, 5.0), u(22, 32), u(16, 24), u(-0.5, 0.5)};
    p.aorta_x = p.cx + 24 + r.normal(0.0, 3.0);
    p.aorta_y = p.cy + 60 + r.normal(0.0, 3.0);
    p.aorta_r = u(9.0, 12.5);
    p.spine_x = p.cx + 2 + r.normal(0.0, 3.0);
    p.spine_y = p.cy + 88 + r.normal(0.0, 4.0);
    p.spine_r = u(13, 16);

    for (double& g : p.tissue_gain) g = std::exp(r.normal(0.0, 0.07));
    p.noise_gain = std::exp(r.normal(0.0, 0.2));
    for (double& b : p.bias_coef) b = r.normal(0.0, 1.0);
    for (int w = 0; w < 3; ++w) {
        const double wavelength = u(18, 60), angle = u(0, pi);
        p.texture[static_cast<std::size_t>(4 * w)] = 2 * pi / wavelength * std::cos(angle);
        p.texture[static_cast<std::size_t>(4 * w + 1)] = 2 * pi / wavelength * std::sin(angle);
        p.texture[static_cast<std::size_t>(4 * w + 2)] = u(0, 2 * pi);
        p.texture[static_cast<std::size_t>(4 * w + 3)] = u(0, 2 * pi);
    }
    p.frames = static_cast<int>(20 + r.below(16));
    p.es_frame = static_cast<int>(std::lround(p.frames * u(0.32, 0.45))) + 1;
    p.height_cm = std::round(10 * (170 + r.normal(0.0, 9.0))) / 10;
    p.weight_kg = std::round(10 * (75 * size * size * std::exp(r.normal(0.0, 0.15)))) / 10;
    return p;
}

// Fraction of a pixel of width `w` covered by a region whose signed distance is d (negative inside).
inline double coverage(double d, double w) { return std::clamp(0.5 - d / w, 0.0, 1.0); }

// Signed distance (approximate, exact for circles) to an ellipse at (x, y) with semi-axes a, b rotated by angle.
struct Ellipse {
    double x0, y0, inv_a, inv_b, c, s, reach;
    Ellipse(double x, double y, double a, double b, double angle)
        : x0(x),
          y0(y),
          inv_a(1.0 / std::max(a, 1e-3)),
          inv_b(1.0 / std::max(b, 1e-3)),
          c(std::cos(angle)),
          s(std::sin(angle)),
          reach(std::max(a, b)) {}
    double distance(double x, double y) const {
        const double dx = x - x0, dy = y - y0;
        const double ua = (c * dx + s * dy) * inv_a, vb = (-s * dx + c * dy) * inv_b;
        const double k0 = std::sqrt(ua * ua + vb * vb);
        const double k1 = std::sqrt(ua * ua * inv_a * inv_a + vb * vb * inv_b * inv_b);
        if (k1 < 1e-12) return -1.0 / std::max(inv_a, inv_b);
        return k0 * (k0 - 1.0) / k1;
    }
    // Pixel coverage, skipping the distance where the pixel is clearly outside.
    double cover(double x, double y, double w) const {
        const double dx = x - x0, dy = y - y0, r = reach + w;
        if (dx * dx + dy * dy > r * r) return 0.0;
        return coverage(distance(x, y), w);
    }
};

// Profile of a half-ellipsoid-like chamber: 1 at the base plane, 0 at the apex (u = z / length).
inline double chamber_profile(double u, double q) {
    if (u >= 1.0) return 0.0;
    if (u <= 0.0) return 1.0;
    return std::pow(1.0 - std::pow(u, q), 1.0 / q);
}

// The heart's geometry at one slice and phase.
struct HeartSlice {
    double cx, cy;
    double endo, epi;        // mean radii; endo 0 when the cavity has closed
    double rv_thickness;     // 0 when the RV has ended
    double rv_span;
    double papillary;        // radius, 0 when absent
    double fat;
    double position;
};

inline HeartSlice heart_slice(const PhantomPatient& p, Phase phase, index_t k, index_t slices) {
    const double position = slices > 1 ? static_cast<double>(k) / static_cast<double>(slices - 1) : 0.0;
    const double z = position * p.coverage * p.lv_length;
    const bool es = phase == Phase::es;
    // Longitudinal shortening and radial contraction give the ejection fraction:
    // (R_es / R_ed)^2 * (L_es / L_ed) = 1 - EF.
    const double shortening = es ? 1.0 - 0.15 * std::min(1.0, p.ejection_fraction / 0.6) : 1.0;
    const double length = p.lv_length * shortening;
    const double radius = es ? p.lv_radius * std::sqrt((1.0 - p.ejection_fraction) / shortening) : p.lv_radius;
    // Myocardial area at the base is conserved between phases.
    const double epi_ed = p.lv_radius + p.wall;
    const double epi_radius = std::sqrt(radius * radius + epi_ed * epi_ed - p.lv_radius * p.lv_radius);
    const double apex_wall = (epi_radius - radius) * 0.85;
    HeartSlice h;
    h.position = position;
    h.cx = p.cx + p.drift_x * position;
    h.cy = p.cy + p.drift_y * position;
    h.endo = radius * chamber_profile(z / length, 2.2);
    h.epi = epi_radius * chamber_profile(z / (length + apex_wall), 2.2);
    h.epi = std::max(h.epi, h.endo + 0.5 * (epi_radius - radius));  // keep a wall where the cavity is open
    const double rv_len = p.rv_length * length;
    const double rv_shrink = es ? std::sqrt(1.0 - p.rv_ejection_fraction) : 1.0;
    const double rv_u = z / rv_len;
    h.rv_thickness = rv_u < 1.0 ? p.rv_thickness * rv_shrink * std::pow(1.0 - rv_u * rv_u, 0.8) : 0.0;
    h.rv_span = p.rv_span * (0.75 + 0.25 * chamber_profile(rv_u, 2.0));
    const double pap = p.papillary_radius * (es ? 1.25 : 1.0);
    h.papillary = (position > 0.12 && position < 0.85 && h.endo > 3.0 * pap) ? pap : 0.0;
    h.fat = p.epi_fat * (1.25 - 0.5 * position);
    return h;
}

// cos(k t) and sin(k t) for k = 0..n from cos t and sin t (angle-addition recurrence).
template <int N>
inline void harmonics(double c, double s, std::array<double, N + 1>& ck, std::array<double, N + 1>& sk) {
    ck[0] = 1;
    sk[0] = 0;
    for (int k = 1; k <= N; ++k) {
        ck[static_cast<std::size_t>(k)] = ck[static_cast<std::size_t>(k - 1)] * c - sk[static_cast<std::size_t>(k - 1)] * s;
        sk[static_cast<std::size_t>(k)] = sk[static_cast<std::size_t>(k - 1)] * c + ck[static_cast<std::size_t>(k - 1)] * s;
    }
}

inline void paint(double& value, double tissue, double cover) { value += cover * (tissue - value); }

// Separable Gaussian blur with clamped borders.
inline void gaussian_blur(std::vector<double>& img, index_t n, double sigma) {
    if (sigma < 0.05) return;
    const int radius = std::max(1, static_cast<int>(std::ceil(3.0 * sigma)));
    std::vector<double> kernel(static_cast<std::size_t>(2 * radius + 1));
    double sum = 0;
    for (int i = -radius; i <= radius; ++i) sum += kernel[static_cast<std::size_t>(i + radius)] = std::exp(-0.5 * i * i / (sigma * sigma));
    for (double& k : kernel) k /= sum;
    std::vector<double> tmp(img.size());
    for (index_t r = 0; r < n; ++r)
        for (index_t c = 0; c < n; ++c) {
            double acc = 0;
            for (int i = -radius; i <= radius; ++i) {
                const index_t cc = std::clamp<index_t>(c + i, 0, n - 1);
                acc += kernel[static_cast<std::size_t>(i + radius)] * img[static_cast<std::size_t>(r * n + cc)];
            }
            tmp[static_cast<std::size_t>(r * n + c)] = acc;
        }
    for (index_t r = 0; r < n; ++r)
        for (index_t c = 0; c < n; ++c) {
            double acc = 0;
            for (int i = -radius; i <= radius; ++i) {
                const index_t rr = std::clamp<index_t>(r + i, 0, n - 1);
                acc += kernel[static_cast<std::size_t>(i + radius)] * tmp[static_cast<std::size_t>(rr * n + c)];
            }
            img[static_cast<std::size_t>(r * n + c)] = acc;
        }
}

// Renders slice k of patient p at `phase` into image and label (size x size each).
inline void render_slice(const PhantomPatient& p, const ScannerProfile& sc, Phase phase, index_t k, index_t slices,
                         index_t size, Rng noise_rng, float* image, std::uint8_t* label) {
    constexpr double pi = std::numbers::pi;
    const HeartSlice h = heart_slice(p, phase, k, slices);
    const double pos = h.position;
    const double sp = sc.spacing;
    const auto& g = p.tissue_gain;
    const double blood = sc.blood * g[0], rv_blood = sc.rv_blood * g[0], myo = sc.myocardium * g[1],
                 fat = sc.fat * g[2], lung = sc.lung * g[3], liver_t = sc.liver * g[4], muscle = sc.muscle * g[5],
                 soft = sc.soft_tissue * g[6], bone = sc.bone * g[7];

    const Ellipse body(p.body_x, p.body_y, p.body_a, p.body_b, p.body_angle);
    const double lung_scale = 1.0 - 0.15 * pos;
    const Ellipse rlung(p.right_lung[0], p.right_lung[1], p.right_lung[2] * lung_scale, p.right_lung[3] * lung_scale,
                        p.right_lung[4]);
    const Ellipse llung(p.left_lung[0], p.left_lung[1], p.left_lung[2] * lung_scale, p.left_lung[3] * lung_scale,
                        p.left_lung[4]);
    // Toward the apex the slices approach the diaphragm: liver and stomach rise into view.
    const double liver_scale = 0.55 + 0.45 * pos;
    const Ellipse liver(p.liver[0], p.liver[1] - 20 * pos, p.liver[2] * liver_scale, p.liver[3] * liver_scale, p.liver[4]);
    const double stomach_scale = std::max(0.0, pos - 0.3) / 0.7;
    const Ellipse stomach(p.stomach[0], p.stomach[1] - 15 * pos, p.stomach[2] * stomach_scale,
                          p.stomach[3] * stomach_scale, p.stomach[4]);
    const Ellipse aorta(p.aorta_x, p.aorta_y, p.aorta_r, p.aorta_r, 0);
    const Ellipse aorta_fat(p.aorta_x, p.aorta_y, p.aorta_r + 4, p.aorta_r + 4, 0);
    const Ellipse spine(p.spine_x, p.spine_y, p.spine_r, p.spine_r * 0.85, 0);

    const double cos_rv = std::cos(p.rv_angle), sin_rv = std::sin(p.rv_angle);
    const double cos_inf = std::cos(p.infarct_angle), sin_inf = std::sin(p.infarct_angle);
    const double cos_scene = std::cos(p.scene_angle), sin_scene = std::sin(p.scene_angle);
    const double heart_extent = h.epi + h.rv_thickness + p.rv_wall + h.fat + 4 * sp + 2;
    // Papillary muscles sit against the lateral wall, opposite the RV.
    std::array<std::array<double, 2>, 2> pap{};
    for (int i = 0; i < 2; ++i) {
        const double a = p.rv_angle + pi + (i == 0 ? 0.75 : -0.75);
        const double rho = h.endo - 1.05 * h.papillary;
        pap[static_cast<std::size_t>(i)] = {h.cx + rho * std::cos(a), h.cy + rho * std::sin(a)};
    }

    std::array<std::array<double, 3>, std::tuple_size_v<decltype(p.lung_vessels)>> vessels{};
    for (std::size_t i = 0; i < vessels.size(); ++i) {
        const auto& ves = p.lung_vessels[i];
        const auto& lg = i % 2 == 0 ? p.right_lung : p.left_lung;
        vessels[i] = {lg[0] + (ves[0] + ves[3] * pos) * lg[2] * lung_scale,
                      lg[1] + (ves[1] + ves[4] * pos) * lg[3] * lung_scale, ves[2]};
    }
    std::array<double, 3> endo_cos{}, endo_sin{};
    for (std::size_t m = 0; m < 3; ++m) {
        endo_cos[m] = p.endo_amp[m] * std::cos(p.endo_phase[m]);
        endo_sin[m] = p.endo_amp[m] * std::sin(p.endo_phase[m]);
    }
    const double trab_c1 = std::cos(p.trab_phase), trab_s1 = std::sin(p.trab_phase);
    const double trab_c2 = std::cos(2 * p.trab_phase), trab_s2 = std::sin(2 * p.trab_phase);
    const double fat_c = std::cos(p.epi_fat_phase), fat_s = std::sin(p.epi_fat_phase);
    const double inf_edge = std::cos(p.infarct_width);
    const double wall_span = h.rv_span + p.rv_wall / std::max(h.epi, 1.0);

    const double half = 0.5 * static_cast<double>(size);
    std::vector<double> img(static_cast<std::size_t>(size * size));
    for (index_t r = 0; r < size; ++r) {
        for (index_t c = 0; c < size; ++c) {
            // Millimetres from the field-of-view centre, then the scene rotation about the heart.
            const double fx = (static_cast<double>(c) + 0.5 - half) * sp, fy = (static_cast<double>(r) + 0.5 - half) * sp;
            const double x = p.cx + cos_scene * (fx - p.cx) - sin_scene * (fy - p.cy);
            const double y = p.cy + sin_scene * (fx - p.cx) + cos_scene * (fy - p.cy);

            double v = 0.0;  // air
            const double d_body = body.distance(x, y);
            paint(v, fat, coverage(d_body, sp));
            paint(v, muscle, coverage(d_body + p.body_fat, sp));
            const double d_inner = d_body + p.body_fat + p.body_muscle;
            paint(v, soft, coverage(d_inner, sp));
            const double thorax = coverage(d_inner + 4.0, sp);  // ribs and pleura keep lungs off the wall
            const double in_lung = thorax * std::max(rlung.cover(x, y, sp), llung.cover(x, y, sp));
            paint(v, lung, in_lung);
            if (in_lung > 0) {
                for (const auto& ves : vessels) {
                    const double vx = x - ves[0], vy = y - ves[1], reach = ves[2] + sp;
                    if (std::abs(vx) < reach && std::abs(vy) < reach)
                        paint(v, 0.5 * blood, in_lung * coverage(std::sqrt(vx * vx + vy * vy) - ves[2], sp));
                }
            }
            paint(v, liver_t, thorax * liver.cover(x, y, sp));
            if (stomach_scale > 0) paint(v, fat * 0.6, thorax * stomach.cover(x, y, sp));
            paint(v, fat, thorax * aorta_fat.cover(x, y, sp));
            paint(v, blood * 0.92, thorax * aorta.cover(x, y, sp));
            paint(v, bone, spine.cover(x, y, sp));

            std::uint8_t lab = cls::background;
            const double dx = x - h.cx, dy = y - h.cy;
            const double rho = std::sqrt(dx * dx + dy * dy);
            if (rho < heart_extent) {
                const double ct = rho > 1e-9 ? dx / rho : 1.0, st = rho > 1e-9 ? dy / rho : 0.0;
                std::array<double, 14> ck{}, sk{};
                harmonics<13>(ct, st, ck, sk);
                double shape = 0;
                for (std::size_t m = 0; m < 3; ++m) shape += ck[m + 2] * endo_cos[m] - sk[m + 2] * endo_sin[m];
                const double endo = h.endo * (1.0 + shape);
                // Wall thickness varies around the ring: septal hypertrophy, infarct thinning.
                const double toward_rv = ct * cos_rv + st * sin_rv;
                const double toward_inf = ct * cos_inf + st * sin_inf;
                const double inf = toward_inf > inf_edge ? (toward_inf - inf_edge) / (1.0 - inf_edge) : 0.0;
                const double thick = (h.epi - h.endo) * (1.0 + p.septal_thickening * std::max(0.0, toward_rv) *
                                                                   std::max(0.0, toward_rv)) *
                                     (1.0 - p.infarct_depth * inf);
                const double epi = endo + thick;
                // The RV crescent: angular offset from the RV direction, thickness tapering to the tips.
                double rv_outer = epi, rv_wall_outer = epi;
                if (h.rv_thickness > 0 && toward_rv > std::cos(std::min(wall_span, std::numbers::pi))) {
                    const double delta = std::atan2(st * cos_rv - ct * sin_rv, toward_rv);
                    const double t = delta / h.rv_span;
                    if (std::abs(t) < 1.0)
                        rv_outer = epi + h.rv_thickness * std::pow(1.0 - t * t, 0.6) * (1.0 + p.rv_asymmetry * t);
                    const double tw = delta / wall_span;
                    if (std::abs(tw) < 1.0)
                        rv_wall_outer = epi + (h.rv_thickness * std::pow(std::max(0.0, 1.0 - tw * tw), 0.6) *
                                                   (1.0 + p.rv_asymmetry * tw) +
                                               p.rv_wall) *
                                                  std::pow(1.0 - tw * tw, 0.25);
                }
                const double heart_outer = std::max(epi, rv_wall_outer);
                const double fat_band = h.fat * (0.5 + 0.5 * (ck[2] * fat_c - sk[2] * fat_s));
                paint(v, fat, coverage(rho - heart_outer - fat_band, sp));
                paint(v, myo, coverage(rho - heart_outer, sp));
                paint(v, rv_blood, coverage(std::max(rho - rv_outer, epi - rho), sp));
                paint(v, myo, coverage(rho - epi, sp));
                // Trabeculae roughen the blood-muscle border in the image; the contour stays smooth.
                const double trab = 1.0 + p.trabeculation * 0.5 *
                                              ((ck[9] * trab_c1 - sk[9] * trab_s1) + (ck[13] * trab_c2 - sk[13] * trab_s2));
                if (h.endo > 0) paint(v, blood, coverage(rho - endo * trab, sp));
                for (const auto& pm : pap)
                    if (h.papillary > 0) {
                        const double px = x - pm[0], py = y - pm[1];
                        paint(v, myo, coverage(std::sqrt(px * px + py * py) - h.papillary, sp));
                    }

                if (h.endo > 0 && rho < endo) lab = cls::lv;
                else if (rho < epi) lab = cls::myocardium;
                else if (rho < rv_outer) lab = cls::rv;
            }
            img[static_cast<std::size_t>(r * size + c)] = v;
            label[r * size + c] = lab;
        }
    }

    // Smooth tissue texture and the coil's bias field (both separable or polynomial: cheap).
    std::vector<double> tex_x(static_cast<std::size_t>(3 * size)), tex_y(static_cast<std::size_t>(3 * size));
    for (index_t i = 0; i < size; ++i) {
        const double t = (static_cast<double>(i) + 0.5 - half) * sp;
        for (int w = 0; w < 3; ++w) {
            const auto wi = static_cast<std::size_t>(4 * w);
            tex_x[static_cast<std::size_t>(w * size + i)] = std::cos(p.texture[wi] * t + p.texture[wi + 2] + 0.3 * pos);
            tex_y[static_cast<std::size_t>(w * size + i)] = std::cos(p.texture[wi + 1] * t + p.texture[wi + 3]);
        }
    }
    const double fov = sp * static_cast<double>(size);
    for (index_t r = 0; r < size; ++r)
        for (index_t c = 0; c < size; ++c) {
            double tex = 0;
            for (int w = 0; w < 3; ++w)
                tex += tex_x[static_cast<std::size_t>(w * size + c)] * tex_y[static_cast<std::size_t>(w * size + r)];
            const double bx = (static_cast<double>(c) + 0.5 - half) * sp / fov, by = (static_cast<double>(r) + 0.5 - half) * sp / fov;
            const auto& b = p.bias_coef;
            // The anterior coil makes the top of the image brighter; the rest is patient-specific.
            const double log_bias = sc.bias * (-0.8 * by + 0.5 * (b[0] * bx + b[1] * by) +
                                               0.6 * (b[2] * bx * bx + b[3] * by * by + b[4] * bx * by));
            double& v = img[static_cast<std::size_t>(r * size + c)];
            v *= (1.0 + sc.texture * tex / 3.0) * std::exp(log_bias);
        }

    gaussian_blur(img, size, sc.psf_fwhm / 2.3548 / sp);

    // Rician noise: the magnitude of a complex signal with Gaussian noise on both channels. One
    // Philox block per pixel gives both channels (the two outputs of a Box-Muller transform).
    const double sigma = sc.noise * p.noise_gain;
    const auto n = static_cast<std::uint64_t>(size * size);
    for (std::uint64_t i = 0; i < n; ++i) {
        const Philox4x32 bits = random_block(noise_rng.seed(), noise_rng.stream(), i);
        const double u1 = 1.0 - uniform_from_bits<double>(bits.v[0], bits.v[1]);
        const double u2 = uniform_from_bits<double>(bits.v[2], bits.v[3]);
        const double radius = sigma * std::sqrt(-2.0 * std::log(u1));
        const double re = img[i] + radius * std::cos(2.0 * std::numbers::pi * u2);
        const double im = radius * std::sin(2.0 * std::numbers::pi * u2);
        image[i] = static_cast<float>(std::sqrt(re * re + im * im));
    }
}

inline ScannerProfile checked_profile(const PhantomOptions& o) {
    const ScannerProfile s = o.profile ? *o.profile : scanner_profile(o.scanner);
    check(s.spacing > 0 && s.psf_fwhm >= 0 && s.noise >= 0 && s.bias >= 0 && std::isfinite(s.spacing + s.psf_fwhm + s.noise + s.bias),
          "phantom", "invalid scanner profile (spacing ", s.spacing, ", psf_fwhm ", s.psf_fwhm, ", noise ", s.noise,
          ", bias ", s.bias, ")");
    return s;
}

inline void check_options(const PhantomOptions& o) {
    check(o.patients >= 1, "phantom", "patients must be at least 1, got ", o.patients);
    check(o.slices >= 1 && o.slices <= 64, "phantom", "slices must be in [1, 64], got ", o.slices);
    check(o.size >= 16 && o.size <= 4096, "phantom", "size must be in [16, 4096], got ", o.size);
    check(o.first_patient >= 0, "phantom", "first_patient must not be negative, got ", o.first_patient);
}

}  // namespace detail

// Patient `id`'s anatomy under `seed` (the same whatever else is generated).
inline PhantomPatient phantom_patient(std::uint64_t seed, std::int64_t id) { return detail::draw_patient(seed, id); }

// One patient at one phase as a volume (slices, size, size), base first.
inline Volume phantom_volume(const PhantomOptions& options, std::int64_t patient, Phase phase) {
    detail::check_options(options);
    const ScannerProfile sc = detail::checked_profile(options);
    const PhantomPatient p = detail::draw_patient(options.seed, patient);
    Volume v;
    v.patient = patient;
    v.phase = phase;
    v.scanner = options.scanner;
    v.spacing = {sc.spacing, sc.spacing, p.slice_spacing(options.slices)};
    const index_t n = options.size;
    v.image = Tensor<float>(Shape{options.slices, n, n});
    v.label = Tensor<std::uint8_t>(Shape{options.slices, n, n});
    const Rng base = Rng(options.seed).split(static_cast<std::uint64_t>(patient)).split(1 + static_cast<std::uint64_t>(phase));
#pragma omp parallel for schedule(dynamic)
    for (index_t k = 0; k < options.slices; ++k)
        detail::render_slice(p, sc, phase, k, options.slices, n, base.split(static_cast<std::uint64_t>(k)),
                             v.image.data() + k * n * n, v.label.data() + k * n * n);
    normalize(v.image.view(), options.normalize);
    return v;
}

// Every patient at both phases: volumes ordered patient by patient, ED before ES.
inline std::vector<Volume> phantom_volumes(const PhantomOptions& options) {
    detail::check_options(options);
    const ScannerProfile sc = detail::checked_profile(options);
    const index_t count = options.patients * 2;
    std::vector<Volume> volumes(static_cast<std::size_t>(count));
    std::vector<PhantomPatient> patients(static_cast<std::size_t>(options.patients));
    const index_t n = options.size;
    for (index_t i = 0; i < options.patients; ++i) {
        patients[static_cast<std::size_t>(i)] = detail::draw_patient(options.seed, options.first_patient + i);
        for (int ph = 0; ph < 2; ++ph) {
            Volume& v = volumes[static_cast<std::size_t>(2 * i + ph)];
            v.patient = options.first_patient + i;
            v.phase = static_cast<Phase>(ph);
            v.scanner = options.scanner;
            v.spacing = {sc.spacing, sc.spacing, patients[static_cast<std::size_t>(i)].slice_spacing(options.slices)};
            v.image = Tensor<float>(Shape{options.slices, n, n});
            v.label = Tensor<std::uint8_t>(Shape{options.slices, n, n});
        }
    }
    const index_t tasks = count * options.slices;
#pragma omp parallel for schedule(dynamic)
    for (index_t t = 0; t < tasks; ++t) {
        const index_t vi = t / options.slices, k = t % options.slices;
        Volume& v = volumes[static_cast<std::size_t>(vi)];
        const Rng stream = Rng(options.seed)
                               .split(static_cast<std::uint64_t>(v.patient))
                               .split(1 + static_cast<std::uint64_t>(v.phase))
                               .split(static_cast<std::uint64_t>(k));
        detail::render_slice(patients[static_cast<std::size_t>(vi / 2)], sc, v.phase, k, options.slices, n, stream,
                             v.image.data() + k * n * n, v.label.data() + k * n * n);
    }
#pragma omp parallel for schedule(dynamic)
    for (index_t vi = 0; vi < count; ++vi) normalize(volumes[static_cast<std::size_t>(vi)].image.view(), options.normalize);
    return volumes;
}

// The whole data set as 2D slices with meta labels: patient by patient, ED then ES, base to apex.
inline std::vector<Slice> phantom_slices(const PhantomOptions& options) {
    std::vector<Slice> out;
    for (const Volume& v : phantom_volumes(options)) {
        std::vector<Slice> s = volume_slices(v);
        out.insert(out.end(), std::make_move_iterator(s.begin()), std::make_move_iterator(s.end()));
    }
    return out;
}

}  // namespace gcl::data
