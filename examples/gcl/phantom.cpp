// gcl phantom: the built-in cardiac MRI phantom written as an ACDC-layout tree of NIfTI files,
// with an overview picture (mid-ventricular slices with their labels).
#include <memory>

#include "cli.hpp"
#include "gcl/data/montage.hpp"
#include "gcl/data/phantom_acdc.hpp"
#include "gcl/data/png.hpp"
#include "gcl/report/overlay.hpp"

namespace gcl_cli {
namespace {

class PhantomCommand : public Command {
public:
    void add_to(CLI::App& parent) override {
        app = parent.add_subcommand("phantom", "Write the built-in cardiac MRI phantom as an ACDC-layout folder");
        app->add_option("--out", out_, "Folder to write (patientNNN/ folders, overview.png, config.toml)")->required();
        app->add_option("--patients", options_.patients, "Number of patients")
            ->check(integer_at_least(1))
            ->capture_default_str();
        app->add_option("--first-patient", options_.first_patient, "Id of the first patient (patientNNN)")
            ->check(integer_at_least(0))
            ->capture_default_str();
        app->add_option("--slices", options_.slices, "Short-axis slices per stack")
            ->check(integer_at_least(1))
            ->capture_default_str();
        app->add_option("--size", options_.size, "Image size in pixels (size x size)")
            ->check(integer_at_least(16))
            ->capture_default_str();
        app->add_option("--scanner", options_.scanner, "Scanner profile: 0 or 1 (another field strength and contrast)")
            ->check(CLI::IsMember({0, 1}))
            ->capture_default_str();
        app->add_option("--seed", options_.seed, "Random seed of the anatomy and the noise")->capture_default_str();
        common.add_to(*app);
    }

    void validate() override {
        if (options_.first_patient + options_.patients - 1 > 999999)
            usage_error("--patients", "patient ids would pass 999999");
    }

    fs::path output_folder() const override { return out_; }

    void run() override {
        const std::vector<gcl::data::Volume> volumes = gcl::data::write_phantom_acdc(out_, options_);
        // Mid-ventricular end-diastolic slices of up to 24 patients, labels overlaid.
        std::vector<gcl::Tensor<std::uint8_t>> tiles;
        for (std::size_t v = 0; v < volumes.size() && tiles.size() < 24; v += 2)
            tiles.push_back(gcl::report::overlay_labels(volumes[v].image.cview().select(0, options_.slices / 2),
                                                        volumes[v].label.cview().select(0, options_.slices / 2)));
        gcl::data::write_png(out_ / "overview.png", gcl::data::montage(tiles, 6).cview());
        say(common, "wrote ", options_.patients, " patients (", volumes.size(), " volumes of ", options_.slices, " x ",
            options_.size, " x ", options_.size, ", scanner ", options_.scanner, ", seed ", options_.seed, ") to ",
            out_.string());
    }

private:
    fs::path out_;
    gcl::data::PhantomOptions options_ = [] {
        gcl::data::PhantomOptions o;
        o.patients = 10;
        o.seed = 1;
        return o;
    }();
};

}  // namespace

std::unique_ptr<Command> make_phantom_command() { return std::make_unique<PhantomCommand>(); }

}  // namespace gcl_cli
