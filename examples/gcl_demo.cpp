// GCL on the built-in cardiac MRI phantom: pre-train an encoder with gradient-guided contrastive
// learning on unlabelled slices and their meta labels (patient, slice position, cardiac phase),
// check the pre-training with a k-NN probe per meta label on held-out patients, fine-tune a U-Net
// on two labelled patients, and compare it with the same U-Net trained from a random
// initialisation and from the same contrastive pre-training without gradient surgery (skipped
// with --no-compare), on held-out patients of the same scanner and of two others.
//
//   gcl_demo [--quick] [--no-compare] [--seed S] [--mitigation parameters|representation] [--device cpu|cuda]
//            [--out DIR] ...
//   gcl_demo --help
//   mpirun -np N gcl_demo ...      data-parallel on N ranks (built with MPI), the same results
//   gcl_demo --device cuda ...     the whole pipeline on the GPU (a build with CUDA)
//
// Writes DIR/results.json (every run: Dice and HD95 per class and test scanner, and for a
// pre-trained run its final per-label losses, log(2B - 1) and the probe) and DIR/report.md.
// Prints the progress, the tables, and as its last line
//   gcl_demo mean_dice random <x> gcl <y>
#include <cstdio>
#include <string>
#include <vector>

#include "gcl_runs.hpp"

using namespace gcl_runs;

namespace {

std::string table(const std::vector<Finetuning>& runs) {
    std::string out;
    char line[256];
    std::snprintf(line, sizeof line, "| | RV | Myo | LV | mean | HD95 RV | HD95 Myo | HD95 LV |\n|---|---|---|---|---|---|---|---|\n");
    out += line;
    for (std::size_t t = 0; t < runs.front().test_sets.size(); ++t) {
        std::snprintf(line, sizeof line, "| **%s** | | | | | | | |\n", runs.front().test_sets[t].c_str());
        out += line;
        for (const Finetuning& f : runs) {
            std::snprintf(line, sizeof line, "| %s | %.3f | %.3f | %.3f | %.3f | %.1f | %.1f | %.1f |\n", f.method.c_str(),
                          f.dice[t][0], f.dice[t][1], f.dice[t][2], f.mean_dice[t], f.hd95[t][0], f.hd95[t][1],
                          f.hd95[t][2]);
            out += line;
        }
    }
    return out;
}

}  // namespace

int demo(int argc, char** argv, const Job& job) {
    Protocol p;
    p.pretrain_patients = 48;
    p.test_patients = 10;
    p.finetune_steps = 150;
    std::uint64_t seed = 1;
    bool quick = false, no_compare = false;
    std::string mitigation = "parameters";
    std::string out_dir = "gcl-demo-out";
    index_t labelled = 2;

    CLI::App app{"gcl_demo: GCL pre-training, fine-tuning and evaluation on the built-in phantom"};
    app.add_flag("--quick", quick, "a short run (at most 3 minutes on 2 idle cores): 16 unlabelled patients, 4 test patients per scanner, 60 fine-tuning steps");
    app.add_flag("--no-compare", no_compare, "skip the pre-training without gradient surgery");
    app.add_option("--seed", seed, "seed of the data, the weights and every random choice");
    app.add_option("--mitigation", mitigation, "where GradMitigator acts")
        ->check(CLI::IsMember({"parameters", "representation"}));
    app.add_option("--labelled-patients", labelled, "labelled patients to fine-tune on")->check(CLI::Range(1, 5));
    app.add_option("--out", out_dir, "directory for results.json and report.md");
    std::string device_flag = "cpu";
    add_device_flag(app, device_flag);
    add_protocol_flags(app, p);
    if (const auto code = parse_or_exit(app, argc, argv)) return *code;
    // --quick sets smaller sizes; flags given explicitly with it still win.
    if (quick) {
        const auto unset = [&](const char* flag) { return app.count(flag) == 0; };
        if (unset("--pretrain-patients")) p.pretrain_patients = 16;
        if (unset("--test-patients")) p.test_patients = 4;
        if (unset("--finetune-steps")) p.finetune_steps = 60;
    }
    const Method gcl_method = mitigation == "representation" ? Method::gcl_representation : Method::gcl_parameters;
    const Device device = parse_device(device_flag);
    check_device(device, job);

    const auto start = Clock::now();
    const Data d = make_data(p, seed);
    std::printf("gcl demo: phantom %lldx%lld; %zu unlabelled slices (%lld patients), %lld labelled patients, "
                "%zu probe slices (%lld held-out patients), %lld test patients on each of scanners 0, 1, 2\n",
                static_cast<long long>(p.size), static_cast<long long>(p.size), d.unlabelled.size(),
                static_cast<long long>(p.pretrain_patients), static_cast<long long>(labelled), d.probe.size(),
                static_cast<long long>(p.probe_patients), static_cast<long long>(p.test_patients));
    if (job.size() > 1) std::printf("data-parallel on %d ranks\n", job.size());
    if (device != Device::cpu) std::printf("device: %s\n", device_name(device));

    std::vector<Method> pretrained{gcl_method};
    if (!no_compare) pretrained.push_back(Method::summed);
    std::vector<Finetuning> runs;
    std::vector<Pretraining> pres;
    runs.push_back(run_method(device, Method::random, p, d, labelled, seed, job).finetuning);
    for (Method m : pretrained) {
        MethodRun run = run_method(device, m, p, d, labelled, seed, job);
        pres.push_back(std::move(*run.pretraining));
        runs.push_back(std::move(run.finetuning));
    }

    Json results;
    results["program"] = "gcl_demo";
    results["seed"] = seed;
    results["device"] = device_name(device);
    results["runs"] = Json::array();
    results["runs"].push_back(run_json(runs[0], nullptr));
    for (std::size_t i = 0; i < pres.size(); ++i) results["runs"].push_back(run_json(runs[i + 1], &pres[i]));
    const std::filesystem::path out(out_dir);
    if (job.leader()) {
        std::filesystem::create_directories(out);
        write_json(out / "results.json", results);
    }

    std::string report = "# gcl_demo, seed " + std::to_string(seed) + "\n\nMean Dice per class and HD95 (mm), " +
                         std::to_string(labelled) + " labelled patients:\n\n" + table(runs) +
                         "\nPre-training (" + describe(p.variant) + "): final image loss per meta label (log(2B - 1) = collapse) and k-NN probe "
                         "accuracy on held-out patients (chance in brackets), conflicting gradient pairs met and projections "
                         "applied by GradMitigator over the whole pre-training:\n\n| run | losses | probe | conflicts | projections |\n"
                         "|---|---|---|---|---|\n";
    for (const Pretraining& r : pres) {
        char cell[512];
        std::string losses, probe;
        for (std::size_t k = 0; k < r.labels.size(); ++k) {
            std::snprintf(cell, sizeof cell, "%s %.3f ", r.labels[k].c_str(), r.final_image_loss[k]);
            losses += cell;
        }
        for (std::size_t k = 0; k < r.probe_labels.size(); ++k) {
            std::snprintf(cell, sizeof cell, "%s %.2f (%.2f) ", r.probe_labels[k].c_str(), r.probe_accuracy[k],
                          r.probe_chance[k]);
            probe += cell;
        }
        std::snprintf(cell, sizeof cell, "(log(2B-1) %.3f)", r.log_2b_minus_1);
        report += "| " + r.method + " | " + losses + cell + " | " + probe + "| " + std::to_string(r.conflicts) + " | " +
                  std::to_string(r.projections) + " |\n";
    }
    if (job.leader()) gcl::io::write_file_atomic(out / "report.md", report, "gcl_demo");

    std::printf("\n%s", table(runs).c_str());
    std::printf("results: %s\ntotal %.0f s\n", (out / "results.json").string().c_str(), seconds_since(start));
    std::printf("gcl_demo mean_dice random %.4f gcl %.4f\n", runs[0].mean_dice[0], runs[1].mean_dice[0]);
    return 0;
}

int main(int argc, char** argv) { return run_program(argc, argv, demo); }
