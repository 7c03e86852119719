// gcl finetune: supervised training of a U-Net on labelled patients, from a pre-trained encoder
// (--init) or from a random start, with an optional validation Dice curve.
#include <chrono>
#include <memory>

#include "cli.hpp"
#include "gcl/nn/transfer.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/metrics/evaluate.hpp"
#include "gcl/train/segmentation_trainer.hpp"
#include "model_file.hpp"
#include "training_options.hpp"

namespace gcl_cli {
namespace {

namespace tr = gcl::train;
namespace gd = gcl::data;


class FinetuneCommand : public Command {
public:
    FinetuneCommand() {
        model_.kind = "segmentation";
        options_.steps = 150;
        options_.batch_size = 8;
        options_.adam.learning_rate = 2e-3;
        options_.augment.max_rotation = 15;
        options_.augment.min_scale = 0.9;
        options_.augment.max_scale = 1.1;
        options_.augment.max_noise = 0.03;
    }

    void add_to(CLI::App& parent) override {
        app = parent.add_subcommand("finetune", "Train a U-Net on labelled patients, from a pre-trained encoder or random");
        CLI::App& a = *app;
        folder_.add_to(a, " and _gt.nii.gz label maps");
        a.add_option("--labelled", labelled_, "Train on the first K of the chosen patients (0: all of them)")
            ->check(integer_at_least(0))
            ->capture_default_str();
        a.add_option("--init", init_,
                     "pretrained.gclckpt from gcl pretrain: its encoder starts the U-Net, and its --spacing, --size, "
                     "--depth and --base-width are used (default: a random start)")
            ->check(CLI::ExistingFile);
        a.add_option("--out", out_, "Output folder: model.gclckpt, metrics.jsonl, loss.png, dice.png, config.toml")
            ->required();
        geometry_.add_to(a);
        add_architecture_options(a, model_);
        a.add_option("--steps", options_.steps, "Training steps")->check(integer_at_least(1))->capture_default_str();
        a.add_option("--warmup-steps", options_.warmup_steps, "Linear learning-rate warm-up steps, then cosine decay (default: 10, at most a tenth of --steps)")
            ->check(integer_at_least(0))
            ->capture_default_str();
        a.add_option("--batch-size", options_.batch_size, "Slices per batch")->check(integer_at_least(1))->capture_default_str();
        a.add_option("--lr", options_.adam.learning_rate, "Adam learning rate")->check(positive_number())->capture_default_str();
        a.add_option("--min-lr", options_.min_learning_rate, "Floor of the cosine schedule")
            ->check(non_negative_number())
            ->capture_default_str();
        a.add_option("--weight-decay", options_.adam.weight_decay, "Adam weight decay (L2)")
            ->check(non_negative_number())
            ->capture_default_str();
        a.add_option("--ce-weight", options_.objective.cross_entropy_weight, "Weight of the cross-entropy loss")
            ->check(non_negative_number())
            ->capture_default_str();
        a.add_option("--dice-weight", options_.objective.dice_weight, "Weight of the soft Dice loss")
            ->check(non_negative_number())
            ->capture_default_str();
        add_augmentation_options(a, options_.augment);
        a.add_option("--val-patients", val_patients_,
                     "Patients of --data to validate on (Dice per class, in dice.png), e.g. 41-50")
            ->check(patient_list());
        a.add_option("--eval-every", eval_every_, "Validate every N steps (0: only after the last step)")
            ->check(integer_at_least(0))
            ->capture_default_str();
        a.add_option("--seed", seed_, "Seed of initialisation, batches and augmentation")->capture_default_str();
        common.add_to(a);
    }

    void validate() override {
        if (folder_.data.empty()) usage_error("--data", "is required: the folder of labelled patients");
        folder_.resolve();
        if (labelled_ > static_cast<std::int64_t>(folder_.ids.size()))
            usage_error("--labelled", std::to_string(labelled_) + " is more than the " +
                                          std::to_string(folder_.ids.size()) + " chosen patients");
        if (labelled_ > 0) folder_.ids.resize(static_cast<std::size_t>(labelled_));
        if (!val_patients_.empty()) {
            validation_.data = folder_.data;
            validation_.patients = val_patients_;
            try {
                validation_.resolve();
            } catch (const CLI::ValidationError& e) {
                usage_error("--val-patients", e.what());
            }
            for (std::int64_t id : validation_.ids)
                if (std::binary_search(folder_.ids.begin(), folder_.ids.end(), id))
                    usage_error("--val-patients", gd::acdc_patient_name(id) + " is also a training patient");
        }
        geometry_.apply(model_);
        if (!init_.empty()) {
            // The pre-trained model fixes the network's shape and its input geometry.
            try {
                const tr::Checkpoint checkpoint = tr::Checkpoint::read(init_);
                const ModelFile pre = read_model_file(checkpoint, "pretrain");
                for (const auto& [flag, ours, theirs] :
                     {std::tuple<const char*, double, double>{"--depth", model_.encoder.depth, pre.encoder.depth},
                      {"--base-width", double(model_.encoder.base_width), double(pre.encoder.base_width)}})
                    if (app->count(flag) > 0 && ours != theirs)
                        usage_error(flag, number_text(ours) + " differs from the pre-trained encoder's " +
                                              number_text(theirs) + " in " + init_.string());
                model_.encoder = pre.encoder;
                if (app->count("--spacing") == 0) model_.spacing = pre.spacing;
                if (app->count("--size") == 0) model_.size = pre.size;
            } catch (const gcl::Error& e) {
                usage_error("--init", e.what());
            }
        }
        check_geometry(model_);
        check_augmentation(options_.augment);
        check_schedule(*app, options_.steps, options_.warmup_steps, options_.adam.learning_rate,
                       options_.min_learning_rate);
    }

    fs::path output_folder() const override { return out_; }

    void run() override {
        options_.seed = seed_;
        const std::vector<gd::Slice> labelled = load_slices(folder_, model_, true);
        std::vector<gd::Slice> validation;
        if (!validation_.ids.empty()) validation = load_slices(validation_, model_, true);

        gcl::nn::ParameterArena<float> arena;
        gcl::nn::UNet<float> unet(arena, model_.unet(), seed_ + 100);
        std::string start = "random initialisation";
        if (!init_.empty()) {
            // Only the encoder transfers; the heads of the pre-training are dropped.
            const tr::Checkpoint checkpoint = tr::Checkpoint::read(init_);
            gcl::nn::ParameterArena<float> pre_arena;
            gcl::nn::PretrainModel<float> pre(pre_arena, read_model_file(checkpoint, "pretrain").pretrain_model(), 0);
            tr::load_parameters(checkpoint, pre_arena);
            const auto transfer = gcl::nn::transfer_parameters(pre_arena, arena, {.source_prefix = "encoder."});
            start = "encoder of " + init_.string() + " (" + transfer.summary(2) + ")";
        }
        tr::SegmentationTrainer<float, gcl::nn::UNet<float>> trainer(unet, arena, labelled, options_);
        say(common, "gcl finetune: ", folder_.ids.size(), " labelled patients (", labelled.size(), " slices of ",
            model_.size, " x ", model_.size, "), ", arena.size(), " parameters, from ", start);

        gcl::report::MetricsLog log(out_ / "metrics.jsonl");
        gcl::report::Progress progress("finetune", options_.steps, common.progress());
        Curves losses, dice;
        const auto t0 = std::chrono::steady_clock::now();
        while (!trainer.done()) {
            const tr::SegmentationStepReport r = trainer.step();
            const std::int64_t step = trainer.steps_done();
            const double lr = trainer.learning_rate();  // the rate this step used
            log.write({{"phase", std::string("finetune")}, {"step", step}, {"loss", r.loss},
                       {"cross_entropy", r.cross_entropy}, {"dice_loss", r.dice_loss}, {"lr", lr}});
            losses.add("total", static_cast<double>(step), r.loss);
            losses.add("cross-entropy", static_cast<double>(step), r.cross_entropy);
            losses.add("soft Dice", static_cast<double>(step), r.dice_loss);
            progress.update(step, {{"loss", r.loss}, {"ce", r.cross_entropy}, {"dice", r.dice_loss}});
            const bool validate_now = !validation.empty() && (trainer.done() || (eval_every_ > 0 && step % eval_every_ == 0));
            if (validate_now) {
                const gcl::metrics::EvaluationReport e =
                    gcl::metrics::evaluate_segmentation<float>(unet, validation, {.classes = model_.classes});
                gcl::report::MetricsRecord record{{"phase", std::string("validation")}, {"step", step},
                                                  {"mean_dice", e.mean_foreground_dice()}};
                for (int c = 1; c < model_.classes; ++c) {
                    record.emplace_back(std::string("dice/") + gd::acdc_class_names[c], e.mean_dice[static_cast<std::size_t>(c)]);
                    dice.add(gd::acdc_class_names[c], static_cast<double>(step), e.mean_dice[static_cast<std::size_t>(c)]);
                }
                dice.add("mean", static_cast<double>(step), e.mean_foreground_dice());
                log.write(record);
            }
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        progress.finish("done in " + gcl::report::format_duration(seconds));
        write_model(out_ / "model.gclckpt", arena, model_);
        losses.write(out_ / "loss.png", "Fine-tuning loss", "step", "loss");
        dice.write(out_ / "dice.png", "Validation Dice", "step", "Dice");
        say(common, "wrote ", (out_ / "model.gclckpt").string(), ", metrics.jsonl, loss.png",
            dice.empty() ? "" : " and dice.png");
    }

private:
    FolderOptions folder_, validation_;
    GeometryOptions geometry_;
    std::int64_t labelled_ = 0;
    fs::path init_, out_;
    ModelFile model_;
    tr::SegmentationTrainerOptions options_;
    std::string val_patients_;
    std::int64_t eval_every_ = 0;
    std::uint64_t seed_ = 1;
};

}  // namespace

std::unique_ptr<Command> make_finetune_command() { return std::make_unique<FinetuneCommand>(); }

}  // namespace gcl_cli
