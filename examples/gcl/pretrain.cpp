// gcl pretrain: contrastive pre-training of a U-Net encoder with image and pixel heads on
// unlabelled slices and their meta labels: GCL by default, the surgery-free baseline with
// --mitigation none --filter none.
#include <chrono>
#include <memory>

#include "cli.hpp"
#include "gcl/data/phantom.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/train/gcl_pretrainer.hpp"
#include "model_file.hpp"
#include "training_options.hpp"

namespace gcl_cli {
namespace {

namespace tr = gcl::train;
namespace gd = gcl::data;

// The enumerator whose name (train::to_string) is `name`; the option's IsMember check has
// already ruled out other names.
template <class E>
E enum_named(const std::string& name, std::initializer_list<E> values) {
    for (E v : values)
        if (name == tr::to_string(v)) return v;
    return *values.begin();
}

class PretrainCommand : public Command {
public:
    PretrainCommand() {
        model_.kind = "pretrain";
        options_.steps = 200;
        options_.sgd.momentum = 0.9;
        options_.sampler.batch_size = 16;
        options_.augment.max_rotation = 15;
        options_.augment.min_scale = 0.9;
        options_.augment.max_scale = 1.1;
        options_.augment.max_noise = 0.03;
    }

    void add_to(CLI::App& parent) override {
        app = parent.add_subcommand("pretrain",
                                    "Pre-train an encoder with GCL (or a contrastive baseline) on unlabelled slices");
        CLI::App& a = *app;
        folder_.add_to(a, "; labels are not read");
        a.add_option("--phantom", phantom_patients_,
                     "Pre-train on this many patients of the built-in phantom instead of --data")
            ->check(integer_at_least(2));
        a.add_option("--out", out_, "Output folder: pretrained.gclckpt, metrics.jsonl, loss.png, config.toml")
            ->required();
        geometry_.add_to(a);
        add_architecture_options(a, model_);
        a.add_option("--image-hidden", model_.image_hidden, "Image head: hidden units")
            ->check(integer_at_least(1))
            ->capture_default_str();
        a.add_option("--image-out", model_.image_out, "Image head: embedding size")
            ->check(integer_at_least(1))
            ->capture_default_str();
        a.add_option("--pixel-hidden", model_.pixel_hidden, "Pixel head: hidden channels")
            ->check(integer_at_least(1))
            ->capture_default_str();
        a.add_option("--pixel-out", model_.pixel_out, "Pixel head: embedding channels")
            ->check(integer_at_least(1))
            ->capture_default_str();

        // ---- schedule and optimizer ----
        a.add_option("--steps", options_.steps, "Pre-training steps")->check(integer_at_least(1))->capture_default_str();
        a.add_option("--warmup-steps", options_.warmup_steps, "Linear learning-rate warm-up steps, then cosine decay (default: 10, at most a tenth of --steps)")
            ->check(integer_at_least(0))
            ->capture_default_str();
        a.add_option("--batch-size", options_.sampler.batch_size, "Slices per batch (two views each)")
            ->check(integer_at_least(4))
            ->capture_default_str();
        a.add_option("--optimizer", optimizer_, "adamw or sgd (with --momentum)")
            ->check(CLI::IsMember({"adamw", "sgd"}))
            ->capture_default_str();
        a.add_option("--lr", lr_, "Base learning rate (default: 0.003 with adamw, 0.05 with sgd)")->check(positive_number());
        a.add_option("--min-lr", options_.min_learning_rate, "Floor of the cosine schedule")
            ->check(non_negative_number())
            ->capture_default_str();
        a.add_option("--momentum", options_.sgd.momentum, "SGD momentum (sgd only)")->check(number_in(0, 1))->capture_default_str();
        a.add_option("--weight-decay", weight_decay_, "Weight decay (decoupled with adamw)")
            ->check(non_negative_number())
            ->capture_default_str();

        // ---- the objective (train/gcl_objective.hpp) ----
        a.add_option("--meta-labels", meta_labels_, "Meta labels to contrast, in order")
            ->delimiter(',')
            ->check(CLI::IsMember({"patient", "position", "phase", "scanner"}))
            ->default_str("patient,position,phase");
        a.add_option("--position-partitions", options_.sampler.position_partitions,
                     "Position meta label: the stack cut into this many ranges, base to apex")
            ->check(integer_at_least(1))
            ->capture_default_str();
        a.add_option("--temperature", options_.objective.temperature, "Contrastive temperature")
            ->check(positive_number())
            ->capture_default_str();
        a.add_option("--mitigation", mitigation_,
                     "GradMitigator level: parameters, representation, or none (summed losses)")
            ->check(CLI::IsMember({"parameters", "representation", "none"}))
            ->capture_default_str();
        a.add_option("--reduction", reduction_, "How mitigated gradients combine: sum or mean")
            ->check(CLI::IsMember({"sum", "mean"}))
            ->capture_default_str();
        a.add_option("--label-space", label_space_, "Embedding space per meta label: per_label (a part each) or shared")
            ->check(CLI::IsMember({"per_label", "shared"}))
            ->capture_default_str();
        a.add_flag("--pixel-contrast,!--no-pixel-contrast", options_.objective.pixel_contrast,
                   "Pixel-wise contrast beside the image-wise one")
            ->default_str("true");
        a.add_option("--pixel-weight", options_.objective.pixel_weight, "Weight of the pixel losses")
            ->check(non_negative_number())
            ->capture_default_str();
        a.add_option("--pixel-samples", options_.objective.pixel_samples, "Sampled locations per feature map")
            ->check(integer_at_least(1))
            ->capture_default_str();
        a.add_option("--filter", filter_, "GradFilter on the pixel pairs: anchors, pairs, or none")
            ->check(CLI::IsMember({"anchors", "pairs", "none"}))
            ->capture_default_str();
        a.add_option("--anchor-ratio", options_.objective.anchor_ratio, "--filter anchors: fraction of anchors kept")
            ->check(number_in(0, 1, true))
            ->capture_default_str();
        a.add_option("--filter-rule", filter_rule_, "--filter pairs: top_k_per_anchor or top_ratio_global")
            ->check(CLI::IsMember({"top_k_per_anchor", "top_ratio_global"}))
            ->capture_default_str();
        a.add_option("--filter-k", options_.objective.filter_options.k, "--filter pairs: pairs kept per anchor")
            ->check(integer_at_least(1))
            ->capture_default_str();
        a.add_option("--filter-ratio", options_.objective.filter_options.ratio, "--filter pairs: fraction of pairs kept")
            ->check(number_in(0, 1, true))
            ->capture_default_str();
        a.add_flag("--image-guidance,!--no-image-guidance", options_.objective.image_guidance,
                   "Weight GradFilter's scores by the image branch's gradient at each anchor")
            ->default_str("true");
        add_augmentation_options(a, options_.augment);
        a.add_option("--seed", seed_, "Seed of initialisation, batches, augmentation and projection orders")
            ->capture_default_str();
        a.add_option("--save-every", save_every_, "Also write the model every N steps (0: only at the end)")
            ->check(integer_at_least(0))
            ->capture_default_str();
        common.add_to(a);
    }

    void validate() override {
        if (folder_.data.empty() == (phantom_patients_ == 0))
            usage_error("--data", "give either --data DIR or --phantom N (and not both)");
        if (!folder_.data.empty()) folder_.resolve();
        geometry_.apply(model_);
        check_geometry(model_);
        check_augmentation(options_.augment);
        options_.optimizer = optimizer_ == "sgd" ? tr::PretrainOptimizer::sgd : tr::PretrainOptimizer::adamw;
        if (app->count("--lr") == 0) {  // the library's default for the optimizer
            lr_ = options_.learning_rate();
            app->get_option("--lr")->default_str(number_text(lr_));
        }
        options_.set_learning_rate(lr_);
        options_.sgd.weight_decay = options_.adamw.weight_decay = weight_decay_;
        check_schedule(*app, options_.steps, options_.warmup_steps, lr_, options_.min_learning_rate);
        if (meta_labels_.empty()) usage_error("--meta-labels", "choose at least one meta label");
        std::vector<gd::MetaLabel> labels;
        for (const std::string& name : meta_labels_) {
            gd::MetaLabel m = gd::MetaLabel::patient;
            for (gd::MetaLabel c : {gd::MetaLabel::patient, gd::MetaLabel::position, gd::MetaLabel::phase,
                                    gd::MetaLabel::scanner})
                if (name == gd::meta_label_name(c)) m = c;
            if (std::find(labels.begin(), labels.end(), m) != labels.end())
                usage_error("--meta-labels", "'" + name + "' is given twice");
            labels.push_back(m);
        }
        options_.sampler.positives = labels;
        auto& o = options_.objective;
        o.mitigation = enum_named(mitigation_, {tr::Mitigation::parameters, tr::Mitigation::representation,
                                                tr::Mitigation::none});
        o.label_space = enum_named(label_space_, {tr::LabelSpace::per_label, tr::LabelSpace::shared});
        o.filter = enum_named(filter_, {tr::PixelFilter::anchors, tr::PixelFilter::pairs, tr::PixelFilter::none});
        o.mitigate.reduction = reduction_ == "mean" ? gcl::surgery::Reduction::mean : gcl::surgery::Reduction::sum;
        o.filter_options.rule = filter_rule_ == "top_ratio_global" ? gcl::surgery::FilterRule::top_ratio_global
                                                                   : gcl::surgery::FilterRule::top_k_per_anchor;
        if (options_.objective.label_space == tr::LabelSpace::per_label &&
            (model_.image_out % static_cast<gcl::index_t>(labels.size()) != 0 ||
             model_.pixel_out % static_cast<gcl::index_t>(labels.size()) != 0))
            usage_error("--label-space", "per_label cuts the embeddings into " + std::to_string(labels.size()) +
                                             " equal parts: --image-out and --pixel-out must be multiples of it");
    }

    fs::path output_folder() const override { return out_; }

    void run() override {
        options_.sampler.seed = seed_;
        options_.objective.mitigate.seed = seed_;
        options_.objective.seed = seed_;
        options_.seed = seed_;
        std::vector<gd::Slice> slices;
        if (phantom_patients_ > 0) {
            gd::PhantomOptions p;
            p.patients = phantom_patients_;
            p.size = model_.size;
            p.seed = seed_;
            slices = gd::phantom_slices(p);
        } else {
            slices = load_slices(folder_, model_, false);
        }
        gcl::nn::ParameterArena<float> arena;
        gcl::nn::PretrainModel<float> model(arena, model_.pretrain_model(), seed_);
        tr::GclPretrainer<float> pretrainer(model, arena, slices, options_);
        say(common, "gcl pretrain: ", slices.size(), " slices of ", model_.size, " x ", model_.size, ", ",
            arena.size(), " parameters, meta labels ", CLI::detail::join(meta_labels_, ", "), ", mitigation ",
            tr::to_string(options_.objective.mitigation), ", filter ", tr::to_string(options_.objective.filter));

        gcl::report::MetricsLog log(out_ / "metrics.jsonl");
        gcl::report::Progress progress("pretrain", options_.steps, common.progress());
        Curves curves;
        const auto start = std::chrono::steady_clock::now();
        while (!pretrainer.done()) {
            const tr::GclStepReport r = pretrainer.step();
            const std::int64_t step = pretrainer.steps_done();
            const double lr = pretrainer.learning_rate();  // the rate this step used
            gcl::report::MetricsRecord record{{"phase", std::string("pretrain")}, {"step", step}, {"loss", r.total},
                                              {"lr", lr}};
            std::vector<gcl::report::ProgressTerm> terms{{"loss", r.total}};
            curves.add("total", static_cast<double>(step), r.total);
            for (std::size_t m = 0; m < meta_labels_.size(); ++m) {
                const std::string& name = meta_labels_[m];
                record.emplace_back("image/" + name, r.image_losses[m]);
                terms.push_back({name, r.image_losses[m]});
                curves.add("image " + name, static_cast<double>(step), r.image_losses[m]);
                if (!r.pixel_losses.empty()) {
                    record.emplace_back("pixel/" + name, r.pixel_losses[m]);
                    curves.add("pixel " + name, static_cast<double>(step), r.pixel_losses[m]);
                }
            }
            record.emplace_back("conflicting_pairs", static_cast<std::int64_t>(r.conflicting_pairs));
            record.emplace_back("projections", static_cast<std::int64_t>(r.projections));
            record.emplace_back("kept_pairs", static_cast<std::int64_t>(r.kept_pairs));
            record.emplace_back("candidate_pairs", static_cast<std::int64_t>(r.candidate_pairs));
            log.write(record);
            progress.update(step, terms);
            if (save_every_ > 0 && step % save_every_ == 0 && !pretrainer.done())
                write_model(out_ / "pretrained.gclckpt", arena, model_);
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        progress.finish("done in " + gcl::report::format_duration(seconds));
        write_model(out_ / "pretrained.gclckpt", arena, model_);
        curves.write(out_ / "loss.png", "Pre-training loss", "step", "loss");
        say(common, "wrote ", (out_ / "pretrained.gclckpt").string(), ", metrics.jsonl and loss.png");
    }

private:
    FolderOptions folder_;
    GeometryOptions geometry_;
    gcl::index_t phantom_patients_ = 0;
    fs::path out_;
    ModelFile model_;
    tr::GclPretrainerOptions options_;
    std::vector<std::string> meta_labels_{"patient", "position", "phase"};
    std::string mitigation_ = "parameters", reduction_ = "sum", label_space_ = "per_label", filter_ = "anchors",
                filter_rule_ = "top_k_per_anchor";
    std::string optimizer_ = "adamw";
    double lr_ = 0, weight_decay_ = 1e-4;  // the chosen optimizer's; --lr's default depends on it
    std::uint64_t seed_ = 1;
    std::int64_t save_every_ = 0;
};

}  // namespace

std::unique_ptr<Command> make_pretrain_command() { return std::make_unique<PretrainCommand>(); }

}  // namespace gcl_cli
