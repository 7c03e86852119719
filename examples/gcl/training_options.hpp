#pragma once
// Options that pretrain and finetune share: where the slices come from and how they are
// prepared, augmentation, the network's shape, and the pictures and logs of a training run.
#include <cstdint>
#include <string>
#include <vector>

#include "cli.hpp"
#include "gcl/data/acdc.hpp"
#include "gcl/data/augment.hpp"
#include "gcl/report/chart.hpp"
#include "gcl/report/metrics_log.hpp"
#include "model_file.hpp"

namespace gcl_cli {

// An ACDC-layout folder and the patients taken from it.
struct FolderOptions {
    fs::path data;
    std::string patients;  // empty: all
    std::vector<std::int64_t> ids;  // filled by resolve()

    void add_to(CLI::App& app, const std::string& what) {
        app.add_option("--data", data, "ACDC-layout folder (patientNNN/Info.cfg, patientNNN_frameXX.nii.gz" + what + ")")
            ->check(CLI::ExistingDirectory);
        app.add_option("--patients", patients, "Patients to use, e.g. 1-40,45 (default: every patient in --data)")
            ->check(patient_list());
    }
    void resolve() { ids = select_patients(data, patients); }
};

// Resampling and size of the slices (the model's input geometry).
struct GeometryOptions {
    double spacing = 1.5;  // mm; 0 keeps each file's spacing
    gcl::index_t size = 128;

    void add_to(CLI::App& app) {
        app.add_option("--spacing", spacing, "In-plane spacing in mm that slices are resampled to (0: keep each file's)")
            ->check(non_negative_number())
            ->capture_default_str();
        app.add_option("--size", size, "Slices are cropped or padded to size x size pixels")
            ->check(integer_at_least(16))
            ->capture_default_str();
    }
    void apply(ModelFile& model) const {
        model.spacing = spacing > 0 ? std::optional<double>(spacing) : std::nullopt;
        model.size = size;
    }
};

inline void add_architecture_options(CLI::App& app, ModelFile& model) {
    app.add_option("--depth", model.encoder.depth, "U-Net depth (down-samplings)")
        ->check(integer_in(1, 8))
        ->capture_default_str();
    app.add_option("--base-width", model.encoder.base_width, "Channels of the first U-Net level (doubled per level)")
        ->check(integer_at_least(1))
        ->capture_default_str();
}

inline void check_geometry(const ModelFile& model) {
    const gcl::index_t multiple = gcl::index_t{1} << model.encoder.depth;
    if (model.size % multiple != 0)
        usage_error("--size", std::to_string(model.size) + " is not a multiple of 2^depth = " + std::to_string(multiple));
}

inline void add_augmentation_options(CLI::App& app, gcl::data::AugmentOptions& a) {
    app.add_option("--max-rotation", a.max_rotation, "Augmentation: largest rotation in degrees")
        ->check(number_in(0, 180))
        ->capture_default_str();
    app.add_option("--min-scale", a.min_scale, "Augmentation: smallest zoom factor")
        ->check(positive_number())
        ->capture_default_str();
    app.add_option("--max-scale", a.max_scale, "Augmentation: largest zoom factor")
        ->check(positive_number())
        ->capture_default_str();
    app.add_option("--max-noise", a.max_noise, "Augmentation: largest Gaussian noise sigma")
        ->check(non_negative_number())
        ->capture_default_str();
}

inline void check_augmentation(const gcl::data::AugmentOptions& a) {
    if (a.min_scale > a.max_scale)
        usage_error("--min-scale", number_text(a.min_scale) + " is above --max-scale " + number_text(a.max_scale));
}

// The warm-up and the learning-rate floor against the run's length and rate. The default
// warm-up, 10 steps, shrinks for short runs; the config file records the value used.
inline void check_schedule(CLI::App& app, std::int64_t steps, std::int64_t& warmup_steps, double learning_rate,
                           double min_learning_rate) {
    if (app.count("--warmup-steps") == 0) {
        warmup_steps = std::min<std::int64_t>(10, steps / 10);
        app.get_option("--warmup-steps")->default_str(std::to_string(warmup_steps));
    }
    if (warmup_steps >= steps)
        usage_error("--warmup-steps",
                    std::to_string(warmup_steps) + " must be below --steps " + std::to_string(steps));
    if (min_learning_rate > learning_rate)
        usage_error("--min-lr", number_text(min_learning_rate) + " is above --lr " + number_text(learning_rate));
}

// The slices of the chosen patients, prepared as the model expects them.
inline std::vector<gcl::data::Slice> load_slices(const FolderOptions& folder, const ModelFile& model, bool labels) {
    gcl::data::AcdcOptions o;
    o.spacing = model.spacing;
    o.size = model.size;
    o.labels = labels;
    o.patients = folder.ids;
    return gcl::data::load_acdc(folder.data, o);
}

// A curve per named quantity, filled as a run goes, drawn as a PNG at the end.
class Curves {
public:
    void add(const std::string& name, double x, double y) {
        for (auto& s : series_)
            if (s.label == name) {
                s.x.push_back(x), s.y.push_back(y);
                return;
            }
        series_.push_back({name, {x}, {y}, {}});
    }
    bool empty() const { return series_.empty(); }
    void write(const fs::path& png, const std::string& title, const std::string& x_label, const std::string& y_label) const {
        if (series_.empty()) return;
        gcl::report::write_line_chart(png, series_, {.title = title, .x_label = x_label, .y_label = y_label});
    }

private:
    std::vector<gcl::report::Series> series_;
};

}  // namespace gcl_cli
