// gcl predict: label maps of an ACDC-layout folder's images as NIfTI files with each input's
// shape and affine (readable by nibabel, ITK-SNAP, 3D Slicer), and overlay pictures.
#include <memory>

#include "cli.hpp"
#include "gcl/data/montage.hpp"
#include "gcl/data/png.hpp"
#include "gcl/report/overlay.hpp"
#include "segment_volume.hpp"
#include "training_options.hpp"

namespace gcl_cli {
namespace {

namespace gd = gcl::data;

// Every slice of a volume as seen by the model, the prediction overlaid; with ground truth a
// second row shows it.
gcl::Tensor<std::uint8_t> volume_overlay(const SegmentedVolume& v) {
    std::vector<gcl::Tensor<std::uint8_t>> tiles;
    const gcl::index_t n = v.prepared.slices();
    for (gcl::index_t k = 0; k < n; ++k)
        tiles.push_back(gcl::report::overlay_labels(v.prepared.image.cview().select(0, k),
                                                    v.prepared_labels.cview().select(0, k)));
    if (v.prepared.labelled())
        for (gcl::index_t k = 0; k < n; ++k)
            tiles.push_back(gcl::report::overlay_labels(v.prepared.image.cview().select(0, k),
                                                        v.prepared.label.cview().select(0, k)));
    return gd::montage(tiles, n);
}

class PredictCommand : public Command {
public:
    void add_to(CLI::App& parent) override {
        app = parent.add_subcommand("predict", "Predict NIfTI label maps of an ACDC-layout folder with a fine-tuned model");
        CLI::App& a = *app;
        a.add_option("--model", model_path_, "model.gclckpt from gcl finetune")->check(CLI::ExistingFile)->required();
        folder_.add_to(a, "; ground truth, when present, is drawn beside the prediction");
        a.add_option("--phases", phases_, "Cardiac phases to predict")
            ->delimiter(',')
            ->check(CLI::IsMember({"ED", "ES"}))
            ->default_str("ED,ES");
        a.add_option("--out", out_,
                     "Output folder: patientNNN/patientNNN_frameXX_pred.nii.gz, overlays/*.png, config.toml")
            ->required();
        a.add_flag("--overlays,!--no-overlays", overlays_, "Write a PNG per volume: the slices with the prediction")
            ->default_str("true");
        a.add_option("--batch-size", batch_size_, "Slices per forward pass")->check(integer_at_least(1))->capture_default_str();
        common.add_to(a);
    }

    void validate() override {
        if (folder_.data.empty()) usage_error("--data", "is required: the folder of images to segment");
        folder_.resolve();
        if (phases_.empty()) usage_error("--phases", "choose ED, ES or both");
        try {
            net_ = std::make_unique<LoadedUNet>(model_path_);
        } catch (const gcl::Error& e) {
            usage_error("--model", e.what());
        }
    }

    fs::path output_folder() const override { return out_; }

    void run() override {
        gcl::report::Progress progress("predict", static_cast<std::int64_t>(folder_.ids.size() * phases_.size()),
                                       common.progress("volume"));
        std::int64_t done = 0;
        for (std::int64_t patient : folder_.ids)
            for (gd::Phase phase : parse_phases(phases_)) {
                const SegmentedVolume v = segment_volume(*net_, folder_.data, patient, phase, batch_size_);
                const std::string stem = acdc_image_path(folder_.data, patient, phase, false).filename().string();
                const std::string base = stem.substr(0, stem.find(".nii"));
                fs::create_directories(out_ / gd::acdc_patient_name(patient));
                write_label_volume(out_ / gd::acdc_patient_name(patient) / (base + "_pred.nii.gz"), v);
                if (overlays_) {
                    fs::create_directories(out_ / "overlays");
                    gd::write_png(out_ / "overlays" / (base + ".png"), volume_overlay(v).cview());
                }
                progress.update(++done);
            }
        progress.finish();
        say(common, "wrote ", done, " label maps to ", out_.string());
    }

private:
    fs::path model_path_, out_;
    FolderOptions folder_;
    std::vector<std::string> phases_{"ED", "ES"};
    bool overlays_ = true;
    gcl::index_t batch_size_ = 16;
    std::unique_ptr<LoadedUNet> net_;
};

}  // namespace

std::unique_ptr<Command> make_predict_command() { return std::make_unique<PredictCommand>(); }

}  // namespace gcl_cli
