// Writes gcl's built-in cardiac MRI phantom as an ACDC-layout tree of NIfTI files, with PNG
// montages to look at, and prints a summary.
//
//   phantom_to_nifti --out DIR [--patients N] [--seed S] [--slices K] [--size PX] [--scanner ID]
//
// DIR/patientNNN/...          Info.cfg, patientNNN_frameXX.nii.gz and _gt.nii.gz (ED and ES)
// DIR/montage/summary.png     the first patient at ED, base to apex, without and with labels
// DIR/montage/overview.png    mid-ventricular ED slices of up to 24 patients, labels overlaid
// DIR/montage/patientNNN.png  every slice of a patient (first 8 patients): ED, ED with labels,
//                             ES, ES with labels, base on the left, apex on the right
// Overlay colours: RV blue, myocardium green, LV red.
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "gcl/data/montage.hpp"
#include "gcl/data/phantom_acdc.hpp"
#include "gcl/data/png.hpp"

namespace gd = gcl::data;
using gcl::index_t;

namespace {

void usage() {
    std::cerr << "usage: phantom_to_nifti --out DIR [--patients N] [--seed S] [--slices K] [--size PX] [--scanner ID]\n";
}

gcl::Tensor<std::uint8_t> picture(const gd::Volume& v, index_t k, bool labels) {
    gd::OverlayOptions o;
    o.high = 1.1f;  // a little headroom above the 99th percentile keeps blood from saturating
    return gd::overlay(v.image.cview().select(0, k),
                       labels ? v.label.cview().select(0, k) : gcl::ConstView<std::uint8_t>(), o);
}

}  // namespace

int main(int argc, char** argv) {
    std::filesystem::path out;
    gd::PhantomOptions options;
    options.patients = 10;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const std::string value = argv[++i];
        try {
            if (arg == "--out") out = value;
            else if (arg == "--patients") options.patients = std::stoll(value);
            else if (arg == "--seed") options.seed = std::stoull(value);
            else if (arg == "--slices") options.slices = std::stoll(value);
            else if (arg == "--size") options.size = std::stoll(value);
            else if (arg == "--scanner") options.scanner = std::stoi(value);
            else {
                usage();
                return 2;
            }
        } catch (const std::exception&) {
            std::cerr << "phantom_to_nifti: invalid value '" << value << "' for " << arg << "\n";
            return 2;
        }
    }
    if (out.empty()) {
        usage();
        return 2;
    }

    try {
        const auto start = std::chrono::steady_clock::now();
        const std::vector<gd::Volume> volumes = gd::write_phantom_acdc(out, options);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        std::filesystem::create_directories(out / "montage");
        std::vector<gcl::Tensor<std::uint8_t>> overview;
        const index_t mid = options.slices / 2;
        for (std::size_t v = 0; v < volumes.size() && overview.size() < 24; v += 2)
            overview.push_back(picture(volumes[v], mid, true));
        gd::write_png(out / "montage" / "overview.png", gd::montage(overview, 6).cview());
        // A compact picture of the first patient at end-diastole: five slices from base to apex,
        // without and with labels.
        std::vector<gcl::Tensor<std::uint8_t>> compact;
        for (bool labels : {false, true})
            for (int j = 0; j < 5; ++j) compact.push_back(picture(volumes[0], j * (options.slices - 1) / 4, labels));
        gd::write_png(out / "montage" / "summary.png", gd::montage(compact, 5).cview());
        for (std::size_t v = 0; v + 1 < volumes.size() && v < 16; v += 2) {
            std::vector<gcl::Tensor<std::uint8_t>> tiles;
            for (const gd::Volume* vol : {&volumes[v], &volumes[v + 1]})
                for (bool labels : {false, true})
                    for (index_t k = 0; k < options.slices; ++k) tiles.push_back(picture(*vol, k, labels));
            gd::write_png(out / "montage" / (gd::acdc_patient_name(volumes[v].patient) + ".png"),
                          gd::montage(tiles, options.slices).cview());
        }

        std::array<double, gd::cls::count> pixels{};
        std::map<std::string, int> groups;
        for (const gd::Volume& v : volumes) {
            for (index_t i = 0; i < v.label.numel(); ++i) pixels[v.label.data()[i]] += 1;
            if (v.phase == gd::Phase::ed) ++groups[gd::pathology_code(gd::phantom_patient(options.seed, v.patient).pathology)];
        }
        double total = 0;
        for (double p : pixels) total += p;
        std::cout << "wrote " << options.patients << " patients (" << volumes.size() << " volumes, "
                  << static_cast<index_t>(volumes.size()) * options.slices << " slices of " << options.size << " x "
                  << options.size << ", scanner " << options.scanner << ", seed " << options.seed << ") to "
                  << out.string() << " in " << std::fixed << std::setprecision(2) << seconds << " s\n";
        std::cout << "class fractions:";
        for (int c = 0; c < gd::cls::count; ++c)
            std::cout << " " << gd::acdc_class_names[static_cast<std::size_t>(c)] << " " << std::setprecision(4) << pixels[static_cast<std::size_t>(c)] / total;
        std::cout << "\ngroups:";
        for (const auto& [g, n] : groups) std::cout << " " << g << " " << n;
        std::cout << "\nmontages in " << (out / "montage").string() << "\n";
    } catch (const gcl::Error& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}
