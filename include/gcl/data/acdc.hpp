#pragma once
// The ACDC challenge's layout (Bernard et al., IEEE TMI 2018), read and written:
//
//   <root>/patient001/Info.cfg                  "ED: 1", "ES: 12", "Group: DCM", "Height: ...",
//                                               "NbFrame: 30", "Weight: ..."
//   <root>/patient001/patient001_frame01.nii.gz     short-axis stack at end-diastole (x, y, z)
//   <root>/patient001/patient001_frame01_gt.nii.gz  its ground truth: 0 background, 1 RV,
//                                                   2 myocardium, 3 LV
//   <root>/patient001/patient001_frame12.nii.gz     ... and at end-systole
//
// The loader yields 2D slices with meta labels (patient, position, phase), each resampled to a
// target in-plane spacing (bilinear for images, nearest for labels) and cropped or padded about
// its centre to a fixed size. Slice 0 of the stack is taken as the base (position 0).
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/intensity.hpp"
#include "gcl/data/nifti.hpp"
#include "gcl/data/resample.hpp"
#include "gcl/data/slice.hpp"
#include "gcl/io/atomic_file.hpp"

namespace gcl::data {

// The names of the ground truth's classes, indexed by label value.
inline constexpr std::array<const char*, 4> acdc_class_names{"background", "RV", "myocardium", "LV"};

// The contents of a patient's Info.cfg.
struct AcdcInfo {
    int ed = 1;  // end-diastolic frame number
    int es = 1;  // end-systolic frame number
    std::string group;
    double height = 0;  // cm
    double weight = 0;  // kg
    int frames = 0;

    int frame(Phase p) const { return p == Phase::ed ? ed : es; }
};

// "patient001" for id 1.
inline std::string acdc_patient_name(std::int64_t id) {
    check(id >= 0 && id <= 999999, "acdc_patient_name", "patient id ", id, " out of range");
    char buf[32];
    std::snprintf(buf, sizeof(buf), "patient%03lld", static_cast<long long>(id));
    return buf;
}

// "patient001_frame01.nii.gz", or with `gt` "patient001_frame01_gt.nii.gz".
inline std::string acdc_frame_file(std::int64_t id, int frame, bool gt) {
    check(frame >= 0 && frame <= 9999, "acdc_frame_file", "frame ", frame, " out of range");
    char buf[32];
    std::snprintf(buf, sizeof(buf), "_frame%02d", frame);
    return acdc_patient_name(id) + buf + (gt ? "_gt" : "") + ".nii.gz";
}

inline AcdcInfo parse_acdc_info(const std::string& text, const std::string& name) {
    AcdcInfo info;
    bool has_ed = false, has_es = false;
    std::istringstream in(text);
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        const auto colon = line.find(':');
        check(colon != std::string::npos, "read_acdc_info", name, " line ", line_no, ": expected \"Key: value\", got \"",
              line, "\"");
        auto trim = [](std::string s) {
            const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
            return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
        };
        const std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
        auto number = [&](double& out) {
            std::size_t used = 0;
            try {
                out = std::stod(value, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            check(used > 0 && used == value.size() && std::isfinite(out), "read_acdc_info", name, " line ", line_no,
                  ": ", key, " must be a number, got \"", value, "\"");
        };
        auto integer = [&](int& out) {
            double v = 0;
            number(v);
            check(v == std::floor(v) && v >= 0 && v < 1e6, "read_acdc_info", name, " line ", line_no, ": ", key,
                  " must be a non-negative integer, got \"", value, "\"");
            out = static_cast<int>(v);
        };
        if (key == "ED") {
            integer(info.ed);
            has_ed = true;
        } else if (key == "ES") {
            integer(info.es);
            has_es = true;
        } else if (key == "Group") {
            info.group = value;
        } else if (key == "Height") {
            number(info.height);
        } else if (key == "Weight") {
            number(info.weight);
        } else if (key == "NbFrame") {
            integer(info.frames);
        }
        // Other keys are kept out of AcdcInfo but are not an error.
    }
    check(has_ed && has_es, "read_acdc_info", name, ": missing ", !has_ed ? "ED" : "ES", " frame number");
    return info;
}

inline AcdcInfo read_acdc_info(const std::filesystem::path& path) {
    std::ifstream in(path);
    check(static_cast<bool>(in), "read_acdc_info", "cannot open ", path.string());
    std::ostringstream text;
    text << in.rdbuf();
    return parse_acdc_info(text.str(), path.string());
}

inline void write_acdc_info(const std::filesystem::path& path, const AcdcInfo& info) {
    std::ostringstream out;
    out << "ED: " << info.ed << "\nES: " << info.es << "\nGroup: " << info.group << "\nHeight: " << info.height
        << "\nNbFrame: " << info.frames << "\nWeight: " << info.weight << "\n";
    io::write_file_atomic(path, out.str(), "write_acdc_info");
}

// The patient ids under root (folders named patientNNN holding an Info.cfg), ascending.
inline std::vector<std::int64_t> acdc_patients(const std::filesystem::path& root) {
    check(std::filesystem::is_directory(root), "acdc_patients", root.string(), " is not a directory");
    std::vector<std::int64_t> ids;
    std::error_code ec;
    std::filesystem::directory_iterator listing(root, ec);
    check(!ec, "acdc_patients", "cannot list ", root.string(), ": ", ec.message());
    for (const auto& entry : listing) {
        if (!entry.is_directory()) continue;
        const std::string name = entry.path().filename().string();
        if (name.size() <= 7 || name.compare(0, 7, "patient") != 0) continue;
        const std::string digits = name.substr(7);
        if (digits.size() > 6 || !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }))
            continue;
        if (!std::filesystem::exists(entry.path() / "Info.cfg")) continue;
        ids.push_back(std::stoll(digits));
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

struct AcdcOptions {
    std::optional<double> spacing = 1.5;  // target in-plane spacing in mm; empty keeps each file's
    index_t size = 128;                   // crop / pad to size x size; 0 keeps the resampled size
    bool labels = true;                   // read the _gt files too (then they must exist)
    std::vector<std::int64_t> patients;   // empty: every patient under the root
    std::vector<Phase> phases{Phase::ed, Phase::es};
    NormalizeOptions normalize{};         // per volume, before resampling
    std::int32_t scanner = 0;             // domain id written into the meta labels
};

// Reads one patient at one phase: the volume as stored, normalised, then every slice resampled
// and cropped / padded. The result's spacing is the target spacing (and the file's z spacing).
inline Volume load_acdc_volume(const std::filesystem::path& root, std::int64_t patient, Phase phase,
                               const AcdcOptions& options = {}) {
    constexpr const char* op = "load_acdc";
    check(!options.spacing || (*options.spacing > 0 && std::isfinite(*options.spacing)), op,
          "target spacing must be positive, got ", options.spacing.value_or(0));
    check(options.size >= 0, op, "size must not be negative, got ", options.size);
    const std::filesystem::path dir = root / acdc_patient_name(patient);
    const AcdcInfo info = read_acdc_info(dir / "Info.cfg");
    const int frame = info.frame(phase);
    const std::filesystem::path image_path = dir / acdc_frame_file(patient, frame, false);
    const std::filesystem::path label_path = dir / acdc_frame_file(patient, frame, true);
    check(std::filesystem::exists(image_path), op, "missing ", image_path.string());
    NiftiImage<float> image = read_nifti<float>(image_path);
    check(image.header.rank() == 3 || (image.header.rank() == 4 && image.header.dim[3] == 1), op, image_path.string(),
          " must be a 3D stack, got NIfTI dims of rank ", image.header.rank());
    const index_t nx = image.header.dim[0], ny = image.header.dim[1], nz = image.header.dim[2];
    image.data.reshape(Shape{nz, ny, nx});
    const std::string image_name = image_path.string(), label_name = label_path.string();
    for (index_t i = 0; i < image.data.numel(); ++i)
        check(std::isfinite(image.data.data()[i]), op, image_name, " holds a non-finite value at element ", i);
    Tensor<std::uint8_t> label;
    if (options.labels) {
        check(std::filesystem::exists(label_path), op, "missing ", label_path.string());
        NiftiImage<std::uint8_t> gt = read_nifti<std::uint8_t>(label_path);
        check(gt.header.numel() == image.header.numel() && gt.header.dim[0] == nx && gt.header.dim[1] == ny, op,
              label_path.string(), " has shape ", gt.data.shape(), ", its image ", image.data.shape());
        label = std::move(gt.data);
        label.reshape(Shape{nz, ny, nx});
        for (index_t i = 0; i < label.numel(); ++i)
            check(label.data()[i] < cls::count, op, label_name, " holds label ", int(label.data()[i]),
                  " at element ", i, "; ACDC classes are 0 to 3");
    }
    normalize(image.data.view(), options.normalize);

    const std::array<double, 2> native{std::abs(image.header.pixdim[2]), std::abs(image.header.pixdim[1])};  // rows, cols
    check(native[0] > 0 && native[1] > 0, op, image_path.string(), " has non-positive in-plane spacing");
    const std::array<double, 2> target = options.spacing ? std::array<double, 2>{*options.spacing, *options.spacing} : native;
    index_t out_h = resampled_extent(ny, native[0], target[0]), out_w = resampled_extent(nx, native[1], target[1]);
    if (options.size > 0) out_h = out_w = options.size;

    Volume v;
    v.patient = patient;
    v.phase = phase;
    v.scanner = options.scanner;
    v.spacing = {target[1], target[0], std::abs(image.header.pixdim[3])};
    v.image = Tensor<float>(Shape{nz, out_h, out_w});
    if (options.labels) v.label = Tensor<std::uint8_t>(Shape{nz, out_h, out_w});
    const bool same_grid = target == native;
    for (index_t k = 0; k < nz; ++k) {
        const ConstView<float> slice = image.data.cview().select(0, k);
        const Tensor<float> resampled = same_grid ? Tensor<float>::copy_of(slice) : resample_image(slice, native, target);
        const Tensor<float> fitted = options.size > 0 ? crop_or_pad<float>(resampled.cview(), out_h, out_w) : resampled;
        std::copy(fitted.data(), fitted.data() + fitted.numel(), v.image.data() + k * out_h * out_w);
        if (options.labels) {
            const ConstView<std::uint8_t> ls = label.cview().select(0, k);
            const Tensor<std::uint8_t> lr =
                same_grid ? Tensor<std::uint8_t>::copy_of(ls) : resample_label<std::uint8_t>(ls, native, target);
            const Tensor<std::uint8_t> lf = options.size > 0 ? crop_or_pad<std::uint8_t>(lr.cview(), out_h, out_w) : lr;
            std::copy(lf.data(), lf.data() + lf.numel(), v.label.data() + k * out_h * out_w);
        }
    }
    return v;
}

// Every chosen patient at every chosen phase, patient by patient.
inline std::vector<Volume> load_acdc_volumes(const std::filesystem::path& root, const AcdcOptions& options = {}) {
    const std::vector<std::int64_t> ids = options.patients.empty() ? acdc_patients(root) : options.patients;
    check(!ids.empty(), "load_acdc", "no patientNNN folders with an Info.cfg under ", root.string());
    check(!options.phases.empty(), "load_acdc", "no phases chosen");
    std::vector<Volume> volumes;
    for (std::int64_t id : ids)
        for (Phase phase : options.phases) volumes.push_back(load_acdc_volume(root, id, phase, options));
    return volumes;
}

// The data set as 2D slices with meta labels.
inline std::vector<Slice> load_acdc(const std::filesystem::path& root, const AcdcOptions& options = {}) {
    std::vector<Slice> out;
    for (const Volume& v : load_acdc_volumes(root, options)) {
        std::vector<Slice> s = volume_slices(v);
        out.insert(out.end(), std::make_move_iterator(s.begin()), std::make_move_iterator(s.end()));
    }
    return out;
}

// Writes one patient (its ED and ES volumes) in the ACDC layout under root. Images are stored
// as float32 and labels as uint8, with the volume's spacing as a diagonal affine.
inline void write_acdc_patient(const std::filesystem::path& root, const Volume& ed, const Volume& es, AcdcInfo info) {
    constexpr const char* op = "write_acdc";
    check(ed.patient == es.patient, op, "ED and ES volumes belong to patients ", ed.patient, " and ", es.patient);
    check(ed.phase == Phase::ed && es.phase == Phase::es, op, "volumes must be given as ED, then ES");
    check(info.ed != info.es, op, "ED and ES frames must differ, both are ", info.ed);
    const std::filesystem::path dir = root / acdc_patient_name(ed.patient);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    check(!ec, op, "cannot create the folder ", dir.string(), ": ", ec.message());
    for (const Volume* v : {&ed, &es}) {
        check(v->image.rank() == 3, op, "volume image must be (slices, H, W), got ", v->image.shape());
        NiftiWriteOptions o;
        o.spacing = {v->spacing[0], v->spacing[1], v->spacing[2]};
        o.description = "gcl ACDC layout";
        write_nifti<float>(dir / acdc_frame_file(ed.patient, info.frame(v->phase), false), v->image.cview(), o);
        if (v->labelled())
            write_nifti<std::uint8_t>(dir / acdc_frame_file(ed.patient, info.frame(v->phase), true), v->label.cview(), o);
    }
    // Info.cfg last: a patient folder counts as present only once its volumes are in place.
    write_acdc_info(dir / "Info.cfg", info);
}

}  // namespace gcl::data
