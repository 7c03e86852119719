// gcl evaluate: Dice, HD95 and ASSD per class and volume of label maps against an ACDC folder's
// ground truth, on each file's own voxel grid and spacing; written as CSV and JSON.
//
// Conventions, each chosen by name (--dice, --hd95, --assd) and named in scores.json: by default
// a class absent from both maps has no Dice (left out of the means, as nnU-Net does), HD95 is
// MedPy's (both directions' surface distances pooled), ASSD the pooled mean (MedPy 0.5, MONAI).
// HD95 and ASSD are undefined when the class is absent from either map.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include "cli.hpp"
#include "gcl/io/atomic_file.hpp"
#include "gcl/metrics/hausdorff.hpp"
#include "gcl/metrics/segmentation_metrics.hpp"
#include "segment_volume.hpp"
#include "training_options.hpp"

namespace gcl_cli {
namespace {

namespace gd = gcl::data;
namespace gm = gcl::metrics;


struct ClassScore {
    double dice = std::nan(""), hd95 = std::nan(""), assd = std::nan("");
};

struct VolumeScore {
    std::int64_t patient;
    gd::Phase phase;
    std::vector<ClassScore> classes;  // index c: class c (0 unused)
};

// Mean and population standard deviation of the finite values, and how many there were.
struct Summary {
    double mean = std::nan(""), std = std::nan("");
    std::size_t count = 0;
};

Summary summarise(const std::vector<double>& values) {
    Summary s;
    double sum = 0, sq = 0;
    for (double v : values)
        if (std::isfinite(v)) sum += v, sq += v * v, ++s.count;
    if (s.count > 0) {
        const double n = static_cast<double>(s.count);
        s.mean = sum / n;
        s.std = std::sqrt(std::max(0.0, sq / n - s.mean * s.mean));
    }
    return s;
}

std::string csv_number(double v) {
    if (!std::isfinite(v)) return "";
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.6g", v);
    return buffer;
}

nlohmann::json json_number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// Scores one prediction against its ground truth (both as read from their files).
struct Conventions {
    gm::DiceConvention dice = gm::DiceConvention::nnunet;
    gm::Hd95Definition hd95 = gm::Hd95Definition::medpy;
    gm::AssdDefinition assd = gm::AssdDefinition::pooled;
};

VolumeScore score_volume(const gd::NiftiImage<std::uint8_t>& prediction, const gd::NiftiImage<std::uint8_t>& truth,
                         std::int64_t patient, gd::Phase phase, const std::string& name, const Conventions& conventions) {
    constexpr const char* op = "evaluate";
    gcl::check(prediction.header.dim == truth.header.dim, op, name, ": the prediction has shape ",
               prediction.data.shape(), ", the ground truth ", truth.data.shape());
    const auto pa = prediction.header.affine(), ta = truth.header.affine();
    gcl::check((pa - ta).cwiseAbs().maxCoeff() <= 1e-3 * std::max(1.0, ta.cwiseAbs().maxCoeff()), op, name,
               ": the prediction's affine differs from the ground truth's; it is not on the same grid");
    const gcl::index_t nx = truth.header.dim[0], ny = truth.header.dim[1], nz = truth.header.numel() / (nx * ny);
    const gcl::ConstView<std::uint8_t> p(prediction.data.data(), gcl::Shape{nz, ny, nx});
    const gcl::ConstView<std::uint8_t> t(truth.data.data(), gcl::Shape{nz, ny, nx});
    for (const auto* map : {&prediction, &truth})
        for (gcl::index_t i = 0; i < map->data.numel(); ++i)
            gcl::check(map->data.data()[i] < gd::cls::count, op, name, ": label ", int(map->data.data()[i]),
                       " at element ", i, " of the ", map == &prediction ? "prediction" : "ground truth",
                       "; ACDC classes are 0 to 3");
    const std::vector<double> spacing{std::abs(truth.header.pixdim[3]), std::abs(truth.header.pixdim[2]),
                                      std::abs(truth.header.pixdim[1])};
    VolumeScore v{patient, phase, std::vector<ClassScore>(gd::cls::count)};
    const std::vector<double> dice = gm::dice_per_class<std::uint8_t>(p, t, gd::cls::count, conventions.dice);
    for (int c = 1; c < gd::cls::count; ++c) {
        ClassScore& s = v.classes[static_cast<std::size_t>(c)];
        s.dice = dice[static_cast<std::size_t>(c)];
        if (const auto d = gm::surface_distance<std::uint8_t>(p, t, static_cast<std::uint8_t>(c), spacing)) {
            s.hd95 = d->hd95(conventions.hd95);
            s.assd = d->assd(conventions.assd);
        }
    }
    return v;
}

class EvaluateCommand : public Command {
public:
    void add_to(CLI::App& parent) override {
        app = parent.add_subcommand(
            "evaluate", "Score label maps against ground truth: Dice, HD95 and ASSD per class and volume (CSV, JSON)");
        CLI::App& a = *app;
        folder_.add_to(a, " and the _gt.nii.gz ground truth");
        auto* predictions = a.add_option("--predictions", predictions_, "Folder written by gcl predict")
                                ->check(CLI::ExistingDirectory);
        auto* model = a.add_option("--model", model_path_, "Or: model.gclckpt from gcl finetune, predicted here")
                          ->check(CLI::ExistingFile);
        predictions->excludes(model);
        a.add_option("--phases", phases_, "Cardiac phases to score")
            ->delimiter(',')
            ->check(CLI::IsMember({"ED", "ES"}))
            ->default_str("ED,ES");
        a.add_option("--dice", dice_, "Dice of a class absent from both maps: nnunet (none, left out of means) or "
                                      "empty_is_one")
            ->check(CLI::IsMember({"nnunet", "empty_is_one"}))
            ->capture_default_str();
        a.add_option("--hd95", hd95_, "HD95: medpy (both directions pooled) or monai (larger directed percentile)")
            ->check(CLI::IsMember({"medpy", "monai"}))
            ->capture_default_str();
        a.add_option("--assd", assd_, "ASSD: pooled (MedPy 0.5, MONAI) or mean_of_directed (MedPy 0.4)")
            ->check(CLI::IsMember({"pooled", "mean_of_directed"}))
            ->capture_default_str();
        a.add_option("--out", out_, "Output folder: scores.csv, scores.json, config.toml")->required();
        common.add_to(a);
    }

    void validate() override {
        if (folder_.data.empty()) usage_error("--data", "is required: the folder with the ground truth");
        folder_.resolve();
        if (predictions_.empty() == model_path_.empty())
            usage_error("--predictions", "give either --predictions DIR or --model FILE");
        if (phases_.empty()) usage_error("--phases", "choose ED, ES or both");
        conventions_.dice = dice_ == "empty_is_one" ? gm::DiceConvention::empty_is_one : gm::DiceConvention::nnunet;
        conventions_.hd95 = hd95_ == "monai" ? gm::Hd95Definition::monai : gm::Hd95Definition::medpy;
        conventions_.assd = assd_ == "mean_of_directed" ? gm::AssdDefinition::mean_of_directed : gm::AssdDefinition::pooled;
        for (std::int64_t patient : folder_.ids)
            for (gd::Phase phase : parse_phases(phases_)) {
                const fs::path gt = acdc_image_path(folder_.data, patient, phase, true);
                if (!fs::exists(gt)) usage_error("--data", gt.string() + " is missing: evaluation needs ground truth");
                if (!predictions_.empty() && !fs::exists(prediction_path(patient, phase)))
                    usage_error("--predictions", prediction_path(patient, phase).string() + " is missing");
            }
        if (!model_path_.empty()) try {
                net_ = std::make_unique<LoadedUNet>(model_path_);
            } catch (const gcl::Error& e) {
                usage_error("--model", e.what());
            }
    }

    fs::path output_folder() const override { return out_; }

    void run() override {
        std::vector<VolumeScore> scores;
        gcl::report::Progress progress("evaluate", static_cast<std::int64_t>(folder_.ids.size() * phases_.size()),
                                       common.progress("volume"));
        for (std::int64_t patient : folder_.ids)
            for (gd::Phase phase : parse_phases(phases_)) {
                const fs::path gt = acdc_image_path(folder_.data, patient, phase, true);
                const gd::NiftiImage<std::uint8_t> truth = gd::read_nifti<std::uint8_t>(gt);
                gd::NiftiImage<std::uint8_t> prediction;
                if (net_) {
                    SegmentedVolume v = segment_volume(*net_, folder_.data, patient, phase);
                    prediction.header = v.header;
                    prediction.data = std::move(v.labels);
                } else {
                    prediction = gd::read_nifti<std::uint8_t>(prediction_path(patient, phase));
                }
                scores.push_back(score_volume(prediction, truth, patient, phase, gt.string(), conventions_));
                progress.update(static_cast<std::int64_t>(scores.size()));
            }
        progress.finish();
        write_reports(scores);
    }

private:
    fs::path prediction_path(std::int64_t patient, gd::Phase phase) const {
        const std::string stem = acdc_image_path(folder_.data, patient, phase, false).filename().string();
        return predictions_ / gd::acdc_patient_name(patient) / (stem.substr(0, stem.find(".nii")) + "_pred.nii.gz");
    }

    void write_reports(const std::vector<VolumeScore>& scores) const {
        std::ostringstream csv;
        csv << "patient,phase,class,dice,hd95_mm,assd_mm\n";
        nlohmann::json volumes = nlohmann::json::array();
        for (const VolumeScore& v : scores) {
            nlohmann::json classes;
            for (int c = 1; c < gd::cls::count; ++c) {
                const ClassScore& s = v.classes[static_cast<std::size_t>(c)];
                csv << gd::acdc_patient_name(v.patient) << ',' << gd::phase_name(v.phase) << ',' << gd::acdc_class_names[c] << ','
                    << csv_number(s.dice) << ',' << csv_number(s.hd95) << ',' << csv_number(s.assd) << '\n';
                classes[gd::acdc_class_names[c]] = {
                    {"dice", json_number(s.dice)}, {"hd95_mm", json_number(s.hd95)}, {"assd_mm", json_number(s.assd)}};
            }
            volumes.push_back({{"patient", gd::acdc_patient_name(v.patient)},
                               {"phase", gd::phase_name(v.phase)},
                               {"classes", classes}});
        }
        nlohmann::json summary;
        std::ostringstream table;
        table << "\n  class        Dice mean +- std     HD95 mm (n)       ASSD mm (n)\n";
        for (int c = 1; c < gd::cls::count; ++c) {
            std::vector<double> dice, hd95, assd;
            for (const VolumeScore& v : scores) {
                dice.push_back(v.classes[static_cast<std::size_t>(c)].dice);
                hd95.push_back(v.classes[static_cast<std::size_t>(c)].hd95);
                assd.push_back(v.classes[static_cast<std::size_t>(c)].assd);
            }
            const Summary d = summarise(dice), h = summarise(hd95), a = summarise(assd);
            summary[gd::acdc_class_names[c]] = {
                {"dice", {{"mean", json_number(d.mean)}, {"std", json_number(d.std)}, {"volumes", d.count}}},
                {"hd95_mm", {{"mean", json_number(h.mean)}, {"std", json_number(h.std)}, {"volumes", h.count}}},
                {"assd_mm", {{"mean", json_number(a.mean)}, {"std", json_number(a.std)}, {"volumes", a.count}}}};
            char line[160];
            std::snprintf(line, sizeof line, "  %-12s %6.3f +- %.3f      %7.2f (%zu)      %7.2f (%zu)\n", gd::acdc_class_names[c],
                          d.mean, d.std, h.mean, h.count, a.mean, a.count);
            table << line;
        }
        const nlohmann::json report{
            {"volumes", volumes},
            {"summary", summary},
            {"conventions",
             {{"dice", {{"name", gm::name(conventions_.dice)}, {"meaning", gm::describe(conventions_.dice)}}},
              {"hd95_mm", {{"name", gm::name(conventions_.hd95)}, {"meaning", gm::describe(conventions_.hd95)}}},
              {"assd_mm", {{"name", gm::name(conventions_.assd)}, {"meaning", gm::describe(conventions_.assd)}}},
              {"undefined", "HD95 and ASSD are null where a class is absent from either map"},
              {"std", "population standard deviation over the volumes with a value"}}}};
        const std::string csv_text = csv.str(), json_text = report.dump(2) + "\n";
        for (const auto& [name, text] : {std::pair{"scores.csv", &csv_text}, std::pair{"scores.json", &json_text}})
            gcl::io::write_file_atomic(out_ / name, *text, "evaluate");
        if (!common.quiet) std::cout << table.str();
        say(common, "scored ", scores.size(), " volumes; wrote ", (out_ / "scores.csv").string(), " and scores.json");
    }

    FolderOptions folder_;
    fs::path predictions_, model_path_, out_;
    std::vector<std::string> phases_{"ED", "ES"};
    std::string dice_ = "nnunet", hd95_ = "medpy", assd_ = "pooled";
    Conventions conventions_;
    std::unique_ptr<LoadedUNet> net_;
};

}  // namespace

std::unique_ptr<Command> make_evaluate_command() { return std::make_unique<EvaluateCommand>(); }

}  // namespace gcl_cli
