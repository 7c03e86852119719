// The protocol of the semi-supervised cardiac segmentation papers, on the built-in phantom:
// pre-train with each method, fine-tune with 1, 2 and 5 labelled patients, several seeds, and
// test on held-out patients of scanner 0 and of the unseen scanners 1 and 2.
//
// Methods: random-init (no pre-training), simclr (instance contrast only), pcl-position (one
// meta label, slice position), summed-no-surgery (patient, position and phase, losses summed),
// gcl-no-filter (GradMitigator over the parameters, no GradFilter), gcl-parameters and
// gcl-representation (GradMitigator over the parameters or at the encoder output, GradFilter).
//
//   gcl_experiment [--out DIR] [--seeds 1 2 3] [--labelled 1 2 5] [--methods NAME ...] [--full] [--report-only]
//                  [--device cpu|cuda] ...
//   gcl_experiment --help
//   mpirun -np N gcl_experiment ...      data-parallel on N ranks (built with MPI); rank 0 writes
//   gcl_experiment --device cuda ...     every run on the GPU (a build with CUDA)
//
// Writes to DIR: results.json (every run), results.csv (one row per run and test set), report.md
// (mean +- std tables over the seeds), figures/*.png (mean Dice against labelled patients per
// method with error bars; pre-training loss curves per label; predictions next to the ground
// truth), and pretrain/ (each pre-training's record and encoder checkpoint). Run it again with
// the same --out and it skips the runs already finished.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gcl/report/chart.hpp"
#include "gcl/report/overlay.hpp"
#include "gcl_runs.hpp"

using namespace gcl_runs;
namespace fs = std::filesystem;

namespace {

struct MeanStd {
    double mean = NAN, std = NAN;
    int n = 0;
};

MeanStd mean_std(const std::vector<double>& v) {
    MeanStd r;
    std::vector<double> x;
    for (double a : v)
        if (std::isfinite(a)) x.push_back(a);
    r.n = static_cast<int>(x.size());
    if (x.empty()) return r;
    double s = 0;
    for (double a : x) s += a;
    r.mean = s / static_cast<double>(x.size());
    double q = 0;
    for (double a : x) q += (a - r.mean) * (a - r.mean);
    r.std = x.size() > 1 ? std::sqrt(q / static_cast<double>(x.size() - 1)) : 0.0;  // sample standard deviation
    return r;
}

std::string format(const MeanStd& m, int digits) {
    if (m.n == 0) return "-";
    char b[64];
    std::snprintf(b, sizeof b, "%.*f +- %.*f", digits, m.mean, digits, m.std);
    return b;
}

double json_number(const Json& j) { return j.is_number() ? j.get<double>() : NAN; }

std::string run_key(const std::string& method, index_t labelled, std::uint64_t seed) {
    return method + "/" + std::to_string(labelled) + "/" + std::to_string(seed);
}

std::string csv(const Json& runs) {
    std::string out = "method,labelled_patients,seed,test_set,dice_RV,dice_Myo,dice_LV,dice_mean,hd95_RV,hd95_Myo,hd95_LV\n";
    for (const Json& r : runs)
        for (const auto& [set, dice] : r["dice"].items()) {
            const Json& h = r["hd95"][set];
            std::ostringstream line;
            line << r["method"].get<std::string>() << ',' << r["labelled_patients"].get<int>() << ','
                 << r["seed"].get<std::uint64_t>() << ',' << set;
            for (const char* c : {"RV", "Myo", "LV", "mean"}) line << ',' << json_number(dice[c]);
            for (const char* c : {"RV", "Myo", "LV"}) line << ',' << json_number(h[c]);
            out += line.str() + "\n";
        }
    return out;
}

struct Options {
    Protocol protocol;
    fs::path out = "gcl-experiment-out";
    std::vector<std::uint64_t> seeds{1, 2, 3};
    std::vector<index_t> labelled{1, 2, 5};
    std::vector<std::string> methods;
};

// The Markdown report and the figures, from everything in results.json and pretrain/.
void write_report(const Options& o, const Json& results, const std::map<std::string, Json>& pretrainings,
                  double wall_seconds) {
    const Json& runs = results["runs"];
    std::vector<std::string> methods = o.methods;
    std::vector<std::string> sets;
    for (const Json& r : runs)
        for (const auto& [set, d] : r["dice"].items())
            if (std::find(sets.begin(), sets.end(), set) == sets.end()) sets.push_back(set);
    const auto values = [&](const std::string& m, index_t n, const std::string& set, const char* what, const char* cls) {
        std::vector<double> v;
        for (const Json& r : runs)
            if (r["method"] == m && r["labelled_patients"].get<index_t>() == n && r[what].contains(set))
                v.push_back(json_number(r[what][set][cls]));
        return v;
    };

    std::string md = "# gcl_experiment\n\n";
    char line[1024];
    std::snprintf(line, sizeof line,
                  "Phantom %lldx%lld; %lld unlabelled patients, %lld held-out probe patients, labelled patients from a "
                  "pool of %lld, %lld test patients per scanner. Pre-training %lld steps of B = %lld (%s, lr %.3g), "
                  "fine-tuning %lld steps. Seeds:",
                  static_cast<long long>(o.protocol.size), static_cast<long long>(o.protocol.size),
                  static_cast<long long>(o.protocol.pretrain_patients), static_cast<long long>(o.protocol.probe_patients),
                  static_cast<long long>(o.protocol.labelled_pool), static_cast<long long>(o.protocol.test_patients),
                  static_cast<long long>(o.protocol.pretrain_steps), static_cast<long long>(o.protocol.pretrain_batch),
                  tr::to_string(o.protocol.pretrain_optimizer), pretrain_learning_rate(o.protocol),
                  static_cast<long long>(o.protocol.finetune_steps));
    md += line;
    for (auto s : o.seeds) md += " " + std::to_string(s);
    md += ". Pre-training: " + describe(o.protocol.variant);
    std::snprintf(line, sizeof line, ". Wall time of this invocation: %.0f s.\n\n", wall_seconds);
    md += line;
    md += "Mean +- standard deviation over the seeds (sample std).\n\n";

    for (const std::string& set : sets) {
        md += "## Mean foreground Dice, " + set + "\n\n| method |";
        for (index_t n : o.labelled) md += " " + std::to_string(n) + " labelled |";
        md += "\n|---|";
        for (std::size_t i = 0; i < o.labelled.size(); ++i) md += "---|";
        md += "\n";
        for (const std::string& m : methods) {
            md += "| " + m + " |";
            for (index_t n : o.labelled) md += " " + format(mean_std(values(m, n, set, "dice", "mean")), 3) + " |";
            md += "\n";
        }
        md += "\n";
    }
    for (const std::string& set : sets) {
        md += "## Per class, " + set + ", 2 labelled patients (Dice; HD95 in mm)\n\n| method | RV | Myo | LV | HD95 RV | HD95 Myo | HD95 LV |\n|---|---|---|---|---|---|---|\n";
        const index_t n = std::find(o.labelled.begin(), o.labelled.end(), 2) != o.labelled.end() ? 2 : o.labelled.front();
        for (const std::string& m : methods) {
            md += "| " + m + " |";
            for (const char* c : {"RV", "Myo", "LV"}) md += " " + format(mean_std(values(m, n, set, "dice", c)), 3) + " |";
            for (const char* c : {"RV", "Myo", "LV"}) md += " " + format(mean_std(values(m, n, set, "hd95", c)), 1) + " |";
            md += "\n";
        }
        md += "\n";
    }

    md += "## Pre-training\n\nFinal image loss per contrasted label (mean of the last tenth of the steps; a collapsed "
          "embedding sits at log(2B - 1)), k-NN probe accuracy on held-out patients per meta label (chance in "
          "brackets), conflicting gradient pairs per step, mean cosine between the label gradients, fraction of pixel "
          "pairs GradFilter kept, seconds.\n\n"
          "| method | final image loss | log(2B-1) | probe patient | probe position | probe phase | conflicts / step | cosines | kept | s |\n"
          "|---|---|---|---|---|---|---|---|---|---|\n";
    std::map<std::string, std::vector<const Json*>> by_method;
    for (const auto& [key, j] : pretrainings) by_method[j["method"].get<std::string>()].push_back(&j);
    for (const std::string& m : methods) {
        const auto it = by_method.find(m);
        if (it == by_method.end()) continue;
        const auto& recs = it->second;
        const Json& first = *recs.front();
        std::string losses;
        for (std::size_t k = 0; k < first["labels"].size(); ++k) {
            std::vector<double> v;
            for (const Json* r : recs) v.push_back(json_number((*r)["final_image_loss"][k]));
            losses += first["labels"][k].get<std::string>() + " " + format(mean_std(v), 2) + "; ";
        }
        md += "| " + m + " | " + losses + " | " + format(mean_std({json_number(first["log_2b_minus_1"])}), 3).substr(0, 5) + " |";
        for (std::size_t k = 0; k < 3; ++k) {
            std::vector<double> v;
            for (const Json* r : recs) v.push_back(json_number((*r)["probe_accuracy"][k]));
            std::snprintf(line, sizeof line, " %s (%.2f) |", format(mean_std(v), 2).c_str(),
                          json_number(first["probe_chance"][k]));
            md += line;
        }
        std::vector<double> conf, sec, kept;
        std::vector<std::vector<double>> cos(first["mean_label_cosines"].size());
        for (const Json* r : recs) {
            conf.push_back(json_number((*r)["conflicts"]) / static_cast<double>((*r)["conflicts_per_step"].size()));
            sec.push_back(json_number((*r)["seconds"]));
            kept.push_back(json_number((*r)["kept_pair_fraction"]));
            for (std::size_t i = 0; i < cos.size(); ++i) cos[i].push_back(json_number((*r)["mean_label_cosines"][i]));
        }
        std::string cosines;
        for (const auto& c : cos) cosines += format(mean_std(c), 3) + "; ";
        md += " " + format(mean_std(conf), 1) + " | " + (cosines.empty() ? "-" : cosines) + " | " +
              format(mean_std(kept), 2) + " | " + format(mean_std(sec), 0) + " |\n";
    }
    md += "\nCosines are over all parameters (gcl-no-filter, gcl-parameters) or over the whole encoder output "
          "(gcl-representation), in the pair order (patient, position), (patient, phase), (position, phase).\n\n";

    // ---- figures ----
    const fs::path figures = o.out / "figures";
    fs::create_directories(figures);
    md += "## Figures\n\n";
    for (const std::string& set : sets) {
        std::vector<gcl::report::Series> series;
        for (const std::string& m : methods) {
            gcl::report::Series s;
            s.label = m;
            for (index_t n : o.labelled) {
                const MeanStd v = mean_std(values(m, n, set, "dice", "mean"));
                s.x.push_back(static_cast<double>(n));
                s.y.push_back(v.mean);
                s.y_error.push_back(v.n > 0 ? v.std : NAN);
            }
            series.push_back(std::move(s));
        }
        const std::string name = "dice_" + set + ".png";
        gcl::report::write_line_chart(figures / name, series,
                                      {.title = "Mean foreground Dice, " + set + " (mean +- std over seeds)",
                                       .x_label = "labelled patients",
                                       .y_label = "Dice"});
        md += "![Dice on " + set + "](figures/" + name + ")\n\n";
    }
    const std::vector<std::string> label_names{"patient", "position", "phase"};
    for (std::size_t k = 0; k < label_names.size(); ++k) {
        std::vector<gcl::report::Series> series;
        for (const std::string& m : methods) {
            const auto it = by_method.find(m);
            if (it == by_method.end()) continue;
            const Json& first = *it->second.front();
            const auto& labels = first["labels"];
            const auto pos = std::find(labels.begin(), labels.end(), label_names[k]);
            if (pos == labels.end()) continue;
            const auto idx = static_cast<std::size_t>(pos - labels.begin());
            gcl::report::Series s;
            s.label = m;
            const std::size_t steps = first["image_loss_curve"].size();
            const std::size_t window = std::max<std::size_t>(1, steps / 20);  // running mean: one batch is noisy
            for (std::size_t t = 0; t < steps; ++t) {
                double sum = 0;
                int n = 0;
                for (const Json* r : it->second)
                    for (std::size_t u = t + 1 >= window ? t + 1 - window : 0; u <= t; ++u) {
                        sum += json_number((*r)["image_loss_curve"][u][idx]);
                        ++n;
                    }
                s.x.push_back(static_cast<double>(t + 1));
                s.y.push_back(sum / n);
            }
            series.push_back(std::move(s));
        }
        if (series.empty()) continue;
        const std::string name = "pretrain_loss_" + label_names[k] + ".png";
        char title[256];
        std::snprintf(title, sizeof title, "Image loss under %s (running mean, all seeds); collapse at %.3f",
                      label_names[k].c_str(), std::log(2.0 * static_cast<double>(o.protocol.pretrain_batch) - 1.0));
        gcl::report::write_line_chart(figures / name, series,
                                      {.title = title, .x_label = "pre-training step", .y_label = "SupCon loss"});
        md += "![pre-training loss, " + label_names[k] + "](figures/" + name + ")\n\n";
    }
    for (const std::string& set : sets) {
        const std::string name = "predictions_" + set + ".png";
        if (fs::exists(figures / name))
            md += "Predictions (left) next to the ground truth (right), " + set + ", one row per method in table order "
                  "(first seed, 2 labelled patients):\n\n![predictions " + set + "](figures/" + name + ")\n\n";
    }
    gcl::io::write_file_atomic(o.out / "report.md", md, "gcl_experiment");
}

}  // namespace

int experiment(int argc, char** argv, const Job& job) {
    Options o;
    Protocol& p = o.protocol;
    p.pretrain_steps = 300;  // the default protocol's 20-minute budget
    p.finetune_steps = 50;
    p.test_patients = 3;
    bool full = false, report_only = false, pretrain_only = false;
    std::string out = o.out.string();

    CLI::App app{"gcl_experiment: every method x labelled patients x seed on the phantom, with a report"};
    app.add_option("--out", out, "output directory (a second run with the same one resumes)");
    app.add_option("--seeds", o.seeds, "seeds")->expected(1, 100);
    app.add_option("--labelled", o.labelled, "labelled patient counts (at most 5)")
        ->expected(1, 5)
        ->check(CLI::Range(1, 5));
    std::vector<std::string> names;
    for (Method m : all_methods()) names.push_back(method_name(m));
    app.add_option("--methods", o.methods, "methods to run (default: all)")->expected(1, 7)->check(CLI::IsMember(names));
    app.add_flag("--full", full,
                 "the full protocol: 48 unlabelled patients, 400 pre-training and 150 fine-tuning steps, 10 test patients "
                 "per scanner");
    app.add_flag("--report-only", report_only,
                 "run nothing: write report.md and the figures from what --out already holds (pass the same protocol flags)");
    app.add_flag("--pretrain-only", pretrain_only,
                 "pre-train and probe each method (random-init is skipped), no fine-tuning: the report's pre-training "
                 "table only");
    std::string device_flag = "cpu";
    add_device_flag(app, device_flag);
    add_protocol_flags(app, p);
    if (const auto code = parse_or_exit(app, argc, argv)) return *code;
    const Device device = parse_device(device_flag);
    if (!report_only) check_device(device, job);
    if (full) {
        const auto unset = [&](const char* flag) { return app.count(flag) == 0; };
        if (unset("--pretrain-patients")) p.pretrain_patients = 48;
        if (unset("--pretrain-steps")) p.pretrain_steps = 400;
        if (unset("--finetune-steps")) p.finetune_steps = 150;
        if (unset("--test-patients")) p.test_patients = 10;
    }
    if (o.methods.empty()) o.methods = names;
    o.out = out;
    const fs::path pre_dir = o.out / "pretrain", figures = o.out / "figures";
    if (job.leader()) {
        fs::create_directories(pre_dir);
        fs::create_directories(figures);
    }
    if (job.size() > 1) std::printf("data-parallel on %d ranks\n", job.size());
    if (device != Device::cpu && !report_only) std::printf("device: %s\n", device_name(device));
    const auto start = Clock::now();

    // Resume: the runs already in results.json are kept and skipped.
    Json results;
    results["program"] = "gcl_experiment";
    results["runs"] = Json::array();
    std::set<std::string> done;
    if (fs::exists(o.out / "results.json")) {
        std::ifstream in(o.out / "results.json");
        Json previous;
        try {
            previous = Json::parse(in);
        } catch (const Json::exception& e) {
            gcl::fail("gcl_experiment", (o.out / "results.json").string(), " is not valid JSON (", e.what(),
                      "); move it away to start afresh");
        }
        for (const Json& r : previous["runs"]) {
            results["runs"].push_back(r);
            done.insert(run_key(r["method"], r["labelled_patients"].get<index_t>(), r["seed"].get<std::uint64_t>()));
        }
        std::printf("resuming: %zu runs already in %s\n", done.size(), (o.out / "results.json").string().c_str());
    }
    std::map<std::string, Json> pretrainings;  // "<method>-seed<s>" -> record with curves
    const auto save = [&] {
        if (!job.leader()) return;
        write_json(o.out / "results.json", results);
        gcl::io::write_file_atomic(o.out / "results.csv", csv(results["runs"]), "gcl_experiment");
    };

    const std::map<std::string, Method> by_name = method_names();
    for (std::uint64_t seed : o.seeds) {
        const Data d = report_only ? Data{} : make_data(p, seed);
        std::map<std::string, std::vector<gcl::Tensor<std::uint8_t>>> shown;  // method -> one prediction per test set
        for (const std::string& name : o.methods) {
            const Method m = by_name.at(name);
            const std::string tag = name + "-seed" + std::to_string(seed);
            std::vector<index_t> to_run;
            for (index_t n : o.labelled)
                if (!pretrain_only && !done.contains(run_key(name, n, seed))) to_run.push_back(n);
            const fs::path record = pre_dir / (tag + ".json"), checkpoint = pre_dir / (tag + ".ckpt");
            if (m != Method::random && fs::exists(record)) {
                std::ifstream in(record);
                pretrainings[tag] = Json::parse(in);
            }
            if (report_only || (pretrain_only && m == Method::random)) continue;
            if (to_run.empty() && !pretrain_only) {
                std::printf("%s, seed %llu: done\n", name.c_str(), static_cast<unsigned long long>(seed));
                continue;
            }
            const std::unique_ptr<MethodSession> session = make_method_session(device, m, p, d, seed, job);
            if (m != Method::random) {
                if (fs::exists(record) && fs::exists(checkpoint)) {
                    if (pretrain_only) {
                        std::printf("%s, seed %llu: pre-training done\n", name.c_str(), static_cast<unsigned long long>(seed));
                        continue;
                    }
                    session->load_pretrained(checkpoint);
                    std::printf("%s, seed %llu: pre-training loaded from %s\n", name.c_str(),
                                static_cast<unsigned long long>(seed), checkpoint.string().c_str());
                } else {
                    std::printf("%s, seed %llu: pre-training\n", name.c_str(), static_cast<unsigned long long>(seed));
                    const Pretraining pre = session->pretrain(20);
                    Json j = pretraining_json(pre, true);
                    j["method"] = name;
                    j["seed"] = seed;
                    j["device"] = device_name(device);
                    if (job.leader()) {
                        session->save_pretrained(checkpoint);
                        write_json(record, j);
                    }
                    pretrainings[tag] = j;
                }
            }
            for (index_t n : to_run) {
                const bool picture = seed == o.seeds.front() && n == 2;
                std::vector<gcl::Tensor<std::uint8_t>> predictions;
                const Finetuning f = session->finetune(n, false, picture ? &predictions : nullptr);
                if (picture) shown[name] = std::move(predictions);
                Json run = run_json(f, nullptr);
                run["device"] = device_name(device);
                if (m != Method::random) {
                    Json summary = pretrainings[tag];
                    for (const char* curve : {"image_loss_curve", "pixel_loss_curve", "conflicts_per_step", "method", "seed"})
                        summary.erase(curve);
                    run["pretrain"] = summary;
                    run["pretrain_seconds"] = summary["seconds"];
                }
                results["runs"].push_back(run);
                done.insert(run_key(name, n, seed));
                save();
                std::printf("  %s, %lld labelled, seed %llu: Dice", name.c_str(), static_cast<long long>(n),
                            static_cast<unsigned long long>(seed));
                for (std::size_t t = 0; t < f.test_sets.size(); ++t)
                    std::printf(" %s %.3f", f.test_sets[t].c_str(), f.mean_dice[t]);
                std::printf("  (%.0f s)\n", f.seconds);
                std::fflush(stdout);
            }
        }
        // Predictions of every method on the same slice, one row per method (only where all were run now).
        if (job.leader() && !shown.empty() && shown.size() == o.methods.size())
            for (std::size_t t = 0; t < d.test.size(); ++t) {
                const gd::Slice& slice = d.test[t][d.test[t].size() / 4];
                std::vector<gcl::Tensor<std::uint8_t>> rows;
                for (const std::string& name : o.methods)
                    rows.push_back(gcl::report::overlay_comparison(slice.image.cview(), shown[name][t].cview().select(0, 0),
                                                                   slice.label.cview()));
                gcl::data::write_png(figures / ("predictions_scanner" + std::to_string(p.test_scanners[t]) + ".png"),
                                     gcl::data::montage(rows, 1, 4).cview());
            }
    }
    if (!report_only) save();
    if (job.leader()) write_report(o, results, pretrainings, seconds_since(start));
    std::printf("wrote %s in %.0f s\n", report_only ? "report.md and figures/" : "results.json, results.csv, report.md and figures/",
                seconds_since(start));
    return 0;
}

int main(int argc, char** argv) { return run_program(argc, argv, experiment); }
