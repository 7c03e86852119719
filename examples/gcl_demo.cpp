// GCL on the built-in cardiac MRI phantom: pre-train an encoder with gradient-guided contrastive
// learning on unlabelled slices and their meta labels (patient, slice position, cardiac phase),
// fine-tune a U-Net on two labelled patients, and compare it with the same U-Net trained from a
// random initialisation and from the same contrastive pre-training without gradient surgery
// (skipped with --no-compare), on held-out patients of the same scanner and of a different one.
//
//   gcl_demo [--quick] [--no-compare] [--seed S] [--pretrain-steps N] [--pretrain-lr LR] [--finetune-steps N] [--mitigation parameters|representation|none]
//
// Prints the progress, a table of Dice and HD95 per class, and as its last line
//   gcl_demo mean_dice random <x> gcl <y>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gcl/gcl.hpp"

namespace gd = gcl::data;
namespace nn = gcl::nn;
namespace tr = gcl::train;
using gcl::index_t;
using Clock = std::chrono::steady_clock;

namespace {

struct Settings {
    std::uint64_t seed = 1;
    std::int64_t pretrain_steps = 150;
    std::int64_t finetune_steps = 150;
    double pretrain_lr = 0.05;
    index_t pretrain_patients = 48;
    index_t labelled_patients = 2;
    index_t test_patients = 10;
    index_t size = 64;
    tr::Mitigation mitigation = tr::Mitigation::parameters;
    bool compare = true;  // also pre-train without gradient surgery
};

Settings parse(int argc, char** argv) {
    Settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw gcl::Error("gcl_demo", "missing value after " + a);
            return argv[++i];
        };
        if (a == "--quick") {
            s.pretrain_steps = 30;
            s.finetune_steps = 60;
            s.pretrain_patients = 16;
            s.test_patients = 4;
        } else if (a == "--no-compare") {
            s.compare = false;
        } else if (a == "--seed") {
            s.seed = std::stoull(value());
        } else if (a == "--pretrain-steps") {
            s.pretrain_steps = std::stoll(value());
        } else if (a == "--pretrain-lr") {
            s.pretrain_lr = std::stod(value());
        } else if (a == "--finetune-steps") {
            s.finetune_steps = std::stoll(value());
        } else if (a == "--mitigation") {
            const std::string m = value();
            if (m == "parameters") s.mitigation = tr::Mitigation::parameters;
            else if (m == "representation") s.mitigation = tr::Mitigation::representation;
            else if (m == "none") s.mitigation = tr::Mitigation::none;
            else throw gcl::Error("gcl_demo", "unknown mitigation '" + m + "'");
        } else {
            throw gcl::Error("gcl_demo", "unknown argument '" + a + "' (see the comment at the top of gcl_demo.cpp)");
        }
    }
    return s;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<gd::Slice> phantom(const Settings& s, index_t first, index_t patients, int scanner) {
    gd::PhantomOptions o;
    o.patients = patients;
    o.first_patient = first;
    o.size = s.size;
    o.seed = s.seed;
    o.scanner = scanner;
    return gd::phantom_slices(o);
}

nn::UNetOptions unet_options() {
    return {.in_channels = 1, .classes = gd::cls::count, .depth = 3, .base_width = 16};
}

gd::AugmentOptions augmentation() {
    gd::AugmentOptions a;
    a.max_rotation = 15;
    a.min_scale = 0.9;
    a.max_scale = 1.1;
    a.max_noise = 0.03;
    return a;
}

struct Data {
    std::vector<gd::Slice> unlabelled, labelled, test, shifted_test;
};

// Encoder + heads pre-trained with the given objective; returns the arena that holds them.
nn::ParameterArena<float> pretrain(const Settings& s, const Data& d, tr::Mitigation mitigation, tr::PixelFilter filter) {
    nn::ParameterArena<float> arena;
    nn::PretrainModel<float> model(arena,
                                   {.encoder = unet_options().encoder(), .image_hidden = 128, .image_out = 96,
                                    .pixel_hidden = 64, .pixel_out = 48},
                                   s.seed);
    tr::GclPretrainerOptions po;
    po.steps = s.pretrain_steps;
    po.sgd.learning_rate = s.pretrain_lr;
    po.sampler.batch_size = 16;
    po.sampler.seed = s.seed;
    po.augment = augmentation();
    po.objective.mitigation = mitigation;
    po.objective.filter = filter;
    po.objective.mitigate.seed = s.seed;
    po.objective.seed = s.seed;
    po.seed = s.seed;
    tr::GclPretrainer<float> pretrainer(model, arena, d.unlabelled, po);
    std::printf("pre-training: %lld parameters, meta labels patient / position (4 partitions) / phase, "
                "mitigation %s, pixel filter %s (%.0f%% of anchors, image-guided)\n",
                static_cast<long long>(arena.size()), tr::to_string(mitigation), tr::to_string(filter),
                100 * po.objective.anchor_ratio);
    const auto t0 = Clock::now();
    index_t conflicts = 0, projections = 0;
    while (!pretrainer.done()) {
        const tr::GclStepReport r = pretrainer.step();
        conflicts += r.conflicting_pairs;
        projections += r.projections;
        if (pretrainer.steps_done() % 10 == 0 || pretrainer.done())
            std::printf("  [pre-train] step %4lld/%lld  loss %.3f  image %.3f %.3f %.3f  pixel %.3f %.3f %.3f  "
                        "conflicts %lld  kept %lld/%lld pairs  (%.2f s/step)\n",
                        static_cast<long long>(pretrainer.steps_done()), static_cast<long long>(s.pretrain_steps),
                        r.total, r.image_losses[0], r.image_losses[1], r.image_losses[2], r.pixel_losses[0],
                        r.pixel_losses[1], r.pixel_losses[2], static_cast<long long>(r.conflicting_pairs),
                        static_cast<long long>(r.kept_pairs), static_cast<long long>(r.candidate_pairs),
                        seconds_since(t0) / static_cast<double>(pretrainer.steps_done()));
    }
    std::printf("pre-training done in %.0f s: %lld conflicting gradient pairs met, %lld projections\n",
                seconds_since(t0), static_cast<long long>(conflicts), static_cast<long long>(projections));
    return arena;
}

struct Scores {
    tr::EvaluationReport same_scanner, other_scanner;
};

// Fine-tunes a U-Net (from `encoder` when given, else from its random initialisation) on the
// labelled slices and evaluates it on both test sets.
Scores finetune(const char* name, const Settings& s, const Data& d, const nn::ParameterArena<float>* encoder) {
    nn::ParameterArena<float> arena;
    nn::UNet<float> unet(arena, unet_options(), s.seed + 100);
    if (encoder)
        std::printf("encoder transfer: %s\n",
                    nn::transfer_parameters(*encoder, arena, {.source_prefix = "encoder."}).summary(3).c_str());
    tr::SegmentationTrainerOptions o;
    o.steps = s.finetune_steps;
    o.batch_size = 8;
    o.adam.learning_rate = 2e-3;
    o.augment = augmentation();
    o.seed = s.seed;
    tr::SegmentationTrainer<float, nn::UNet<float>> trainer(unet, arena, d.labelled, o);
    const auto t0 = Clock::now();
    double running = 0;
    while (!trainer.done()) {
        const tr::SegmentationStepReport r = trainer.step();
        running = trainer.steps_done() == 1 ? r.loss : 0.9 * running + 0.1 * r.loss;
        if (trainer.steps_done() % 25 == 0 || trainer.done())
            std::printf("  [fine-tune %-8s] step %4lld/%lld  loss %.4f  (%.2f s/step)\n", name,
                        static_cast<long long>(trainer.steps_done()), static_cast<long long>(s.finetune_steps), running,
                        seconds_since(t0) / static_cast<double>(trainer.steps_done()));
    }
    return {tr::evaluate_segmentation<float>(unet, d.test, {.classes = gd::cls::count}),
            tr::evaluate_segmentation<float>(unet, d.shifted_test, {.classes = gd::cls::count})};
}

void print_row(const char* name, const tr::EvaluationReport& r) {
    std::printf("  %-24s %6.3f %6.3f %6.3f | %6.3f | %6.1f %6.1f %6.1f\n", name, r.mean_dice[1], r.mean_dice[2],
                r.mean_dice[3], r.mean_foreground_dice(), r.mean_hd95[1], r.mean_hd95[2], r.mean_hd95[3]);
}

}  // namespace

int main(int argc, char** argv) try {
    const Settings s = parse(argc, argv);
    const auto start = Clock::now();

    // ---- data: the built-in phantom; patient ranges never overlap ----
    const index_t first_labelled = 1 + s.pretrain_patients, first_test = first_labelled + s.labelled_patients;
    Data d;
    d.unlabelled = phantom(s, 1, s.pretrain_patients, 0);
    d.labelled = phantom(s, first_labelled, s.labelled_patients, 0);
    d.test = phantom(s, first_test, s.test_patients, 0);
    d.shifted_test = phantom(s, first_test + s.test_patients, s.test_patients, 1);
    std::printf("gcl demo: phantom %lldx%lld; %zu unlabelled slices (%lld patients), %zu labelled (%lld patients), "
                "%zu test (%lld patients), %zu test on scanner 1\n",
                static_cast<long long>(s.size), static_cast<long long>(s.size), d.unlabelled.size(),
                static_cast<long long>(s.pretrain_patients), d.labelled.size(),
                static_cast<long long>(s.labelled_patients), d.test.size(), static_cast<long long>(s.test_patients),
                d.shifted_test.size());

    // ---- GCL pre-training, then fine-tuning from it and from a random start ----
    const nn::ParameterArena<float> gcl_encoder = pretrain(s, d, s.mitigation, tr::PixelFilter::anchors);
    const Scores random = finetune("random", s, d, nullptr);
    const Scores gcl = finetune("gcl", s, d, &gcl_encoder);
    // The same contrastive pre-training without gradient surgery (summed losses, no filter).
    Scores plain;
    if (s.compare) {
        const nn::ParameterArena<float> plain_encoder = pretrain(s, d, tr::Mitigation::none, tr::PixelFilter::none);
        plain = finetune("no-surgery", s, d, &plain_encoder);
    }

    std::printf("\n  %-24s %6s %6s %6s | %6s | %6s %6s %6s\n", "Dice / HD95 (mm)", "RV", "Myo", "LV", "mean", "RV",
                "Myo", "LV");
    std::printf("  scanner 0 (%zu volumes)\n", random.same_scanner.volumes.size());
    print_row("random init", random.same_scanner);
    if (s.compare) print_row("contrastive, no surgery", plain.same_scanner);
    print_row("GCL pre-trained", gcl.same_scanner);
    std::printf("  scanner 1, unseen (%zu volumes)\n", random.other_scanner.volumes.size());
    print_row("random init", random.other_scanner);
    if (s.compare) print_row("contrastive, no surgery", plain.other_scanner);
    print_row("GCL pre-trained", gcl.other_scanner);
    std::printf("total %.0f s\n", seconds_since(start));
    std::printf("gcl_demo mean_dice random %.4f gcl %.4f\n", random.same_scanner.mean_foreground_dice(),
                gcl.same_scanner.mean_foreground_dice());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
