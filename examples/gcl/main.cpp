// gcl: the command-line program for GCL pre-training, fine-tuning, prediction and evaluation on
// ACDC-layout folders of NIfTI files (docs/programs.md).
//
//   gcl phantom  --out DIR                        the built-in phantom as an ACDC tree
//   gcl pretrain --data DIR --out RUN             GCL (or a baseline) on unlabelled slices
//   gcl finetune --data DIR --init RUN/pretrained.gclckpt --labelled 2 --out FT
//   gcl predict  --model FT/model.gclckpt --data DIR --out PRED
//   gcl evaluate --data DIR --predictions PRED --out EVAL
//
// Exit codes: 0 success, 2 usage error (the message names the option and the value), 1 runtime
// error (the gcl::Error message). Every run writes DIR/config.toml; `gcl --config FILE` re-runs it.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <ctime>
#include <exception>
#include <iostream>
#include <memory>
#include <new>
#include <vector>

#include "cli.hpp"
#include "gcl/core/error.hpp"
#include "gcl/io/atomic_file.hpp"

namespace {

std::string toml_string(const std::string& value) {
    // CLI11's reader takes a double-quoted or single-quoted string as it stands.
    return value.find('"') == std::string::npos ? "\"" + value + "\"" : "'" + value + "'";
}

// The run's options as a TOML file beside its outputs: every option of the subcommand, as given
// or as defaulted (options without a value are listed as comments). `gcl --config FILE` repeats
// the run; options given on the command line then win over the file's.
void write_config(const gcl_cli::Command& command) {
    const gcl_cli::fs::path folder = command.output_folder();
    if (folder.empty()) return;
    gcl_cli::fs::create_directories(folder);
    const gcl_cli::fs::path path = folder / "config.toml";
    const CLI::App& sub = *command.app;
    std::string text = "# gcl " + sub.get_name() + ": every option of the run; repeat it with\n#   gcl --config " +
                       path.string() + "\n# or change some with\n#   gcl " + sub.get_name() + " --config " + path.string() +
                       " --out OTHER ...\n[" + sub.get_name() + "]\n";
    for (const CLI::Option* o : sub.get_options()) {
        if (o->get_lnames().empty() || o->get_lnames().front() == "help" || !o->get_configurable()) continue;
        const std::string key = o->get_lnames().front();
        const bool flag = o->get_expected_min() == 0;
        std::vector<std::string> values = o->count() > 0 ? o->results() : std::vector<std::string>{};
        if (values.empty() && !o->get_default_str().empty()) values.push_back(o->get_default_str());
        if (values.empty() && flag) values.push_back("false");
        if (values.empty()) {
            text += "# " + key + " (not set)\n";
        } else if (flag) {
            text += key + "=" + values.back() + "\n";
        } else if (values.size() == 1) {
            text += key + "=" + toml_string(values.front()) + "\n";
        } else {
            text += key + "=[";
            for (std::size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + toml_string(values[i]);
            text += "]\n";
        }
    }
    gcl::io::write_file_atomic(path, text, "write_config");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"gcl: gradient-guided contrastive learning for cardiac MRI segmentation.\n"
                 "Pre-train an encoder on unlabelled slices, fine-tune a U-Net on a few labelled patients,\n"
                 "predict NIfTI label maps and score them. Run `gcl SUBCOMMAND --help` for each one's options.",
                 "gcl"};
    app.require_subcommand(1, 1);
    app.fallthrough();  // --config is the main program's option, accepted after the subcommand too
    app.set_config("--config", "", "Read the options of a run from the config.toml it wrote (options given here win)");
    app.allow_config_extras(CLI::config_extras_mode::error);
    app.footer("Exit codes: 0 success, 2 usage error, 1 runtime error.");

    std::vector<std::unique_ptr<gcl_cli::Command>> commands;
    commands.push_back(gcl_cli::make_phantom_command());
    commands.push_back(gcl_cli::make_pretrain_command());
    commands.push_back(gcl_cli::make_finetune_command());
    commands.push_back(gcl_cli::make_predict_command());
    commands.push_back(gcl_cli::make_evaluate_command());
    for (auto& c : commands) {
        c->add_to(app);
        c->app->configurable();  // a config file names its subcommand as a [section]
        c->app->footer("Also: --config FILE reads the options of an earlier run (its config.toml).");
    }

    gcl_cli::Command* chosen = nullptr;
    try {
        app.parse(argc, argv);
        for (auto& c : commands)
            if (c->app->parsed()) chosen = c.get();
        if (!chosen) throw CLI::RequiredError("a subcommand");
        chosen->validate();
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);  // prints the message and the --help hint
        return 2;
    } catch (const std::exception& e) {  // a folder that cannot be listed, say
        std::cerr << "gcl: " << e.what() << "\n";
        return 2;
    }

    const std::string name = "gcl " + chosen->app->get_name();
    try {
        chosen->common.apply();
        write_config(*chosen);
        chosen->run();
        return 0;
    } catch (const gcl::Error& e) {
        std::cerr << name << ": " << e.what() << "\n";
    } catch (const std::bad_alloc&) {
        std::cerr << name << ": out of memory\n";
    } catch (const std::filesystem::filesystem_error& e) {
        std::cerr << name << ": " << e.code().message() << ": " << e.path1().string() << "\n";
    } catch (const std::exception& e) {
        std::cerr << name << ": unexpected error: " << e.what() << "\n";
    }
    return 1;
}
