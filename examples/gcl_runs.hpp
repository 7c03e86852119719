#pragma once
// What gcl_demo and gcl_experiment share: the phantom data of one seed, one pre-training per
// method (with its per-label losses, conflicts and k-NN probe), one fine-tuning with its Dice and
// HD95 on every test scanner, and the JSON form of both (results.json).
//
// Pre-training and fine-tuning are templates over the device (pretrain<D>, finetune<D>,
// MethodSessionOn<D>); the programs reach them through make_method_session. This header compiles
// with a plain C++ compiler. The cpu session is compiled once in gcl_runs_cpu.cpp; the cuda one
// in gcl_runs_cuda.cu, an nvcc translation unit that the build links into both programs where
// CUDA is enabled (it then defines GCL_RUNS_WITH_CUDA), so the programs' own .cpp files never
// include the CUDA headers.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "gcl/dist/launcher.hpp"
#include "gcl/gcl.hpp"
#include "gcl/train/pretrain_probe.hpp"
#ifdef GCL_RUNS_WITH_MPI
#include "gcl/dist/data_parallel_gcl.hpp"
#include "gcl/dist/data_parallel_segmentation.hpp"
#include "gcl/dist/mpi_communicator.hpp"
#endif

namespace gcl_runs {

namespace gd = gcl::data;
namespace nn = gcl::nn;
namespace tr = gcl::train;
using gcl::index_t;
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The processes that run one program: one, or (built with MPI and started by mpirun -np N) the N
// ranks of an MPI job. The ranks pre-train and fine-tune data-parallel on the same global
// batches, so they hold the same networks after every step and compute the same evaluations;
// rank 0 alone prints (the others' standard output goes to /dev/null) and writes files.
class Job {
public:
    Job() = default;
#ifdef GCL_RUNS_WITH_MPI
    explicit Job(gcl::dist::MpiCommunicator& comm) : comm_(&comm) {
        if (comm.rank() > 0 && std::freopen("/dev/null", "w", stdout) == nullptr)
            gcl::fail("gcl_runs", "rank ", comm.rank(), " cannot silence its standard output");
    }
    gcl::dist::MpiCommunicator& communicator() const { return *comm_; }
    // The GPUs' communicator of a data-parallel job on cuda (an NcclCommunicator, which
    // gcl_runs_cuda.cu makes on first use): held here, so that it ends with the job, before MPI.
    std::shared_ptr<void>& device_communicator() const { return device_communicator_; }
    int rank() const { return comm_ ? comm_->rank() : 0; }
    int size() const { return comm_ ? comm_->size() : 1; }
#else
    int rank() const { return 0; }
    int size() const { return 1; }
#endif
    bool leader() const { return rank() == 0; }

private:
#ifdef GCL_RUNS_WITH_MPI
    gcl::dist::MpiCommunicator* comm_ = nullptr;
    mutable std::shared_ptr<void> device_communicator_;
#endif
};

// Runs `program(argc, argv, job)`: as the ranks of an MPI job where mpirun started this process
// (an error on one rank ends the whole job with that rank's message), otherwise as one process.
// An error is printed on standard error and gives exit code 1.
template <class Program>
int run_program(int argc, char** argv, Program&& program) {
#ifdef GCL_RUNS_WITH_MPI
    if (gcl::dist::started_by_mpi_launcher())
        return gcl::dist::run_on_ranks(argc, argv, [&](gcl::dist::MpiCommunicator& comm) {
            Job job(comm);
            return program(argc, argv, job);
        });
#endif
    try {
        Job job;
        return program(argc, argv, job);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}

// The methods of the protocol, in table order.
enum class Method {
    random,              // no pre-training
    instance,            // instance contrast only (SimCLR-style: the other view is the one positive)
    position,            // one meta label, slice position (PCL-style)
    summed,              // patient, position, phase, losses summed: no GradMitigator, no GradFilter
    gcl_no_filter,       // GCL at the parameter level without GradFilter
    gcl_parameters,      // GCL: GradMitigator over the parameters, GradFilter on the pixel branch
    gcl_representation,  // GCL: GradMitigator at the encoder output, GradFilter on the pixel branch
};

inline const std::vector<Method>& all_methods() {
    static const std::vector<Method> m{Method::random,        Method::instance,       Method::position,
                                       Method::summed,        Method::gcl_no_filter,  Method::gcl_parameters,
                                       Method::gcl_representation};
    return m;
}

inline std::string method_name(Method m) {
    switch (m) {
        case Method::random: return "random-init";
        case Method::instance: return "simclr";
        case Method::position: return "pcl-position";
        case Method::summed: return "summed-no-surgery";
        case Method::gcl_no_filter: return "gcl-no-filter";
        case Method::gcl_parameters: return "gcl-parameters";
        case Method::gcl_representation: return "gcl-representation";
    }
    return "?";
}

inline std::map<std::string, Method> method_names() {
    std::map<std::string, Method> out;
    for (Method m : all_methods()) out[method_name(m)] = m;
    return out;
}

// Pre-training augmentations that docs/training.md compares.
enum class PretrainAugment {
    intensity,          // gamma, contrast, noise (train::pretrain_augmentation(), the default)
    geometric,          // those plus flips, rotations and zooms (data::AugmentOptions' defaults)
    geometric_no_flip,  // rotations and zooms, no flips
};

// The pre-training choices that docs/training.md measures; the defaults are the library's.
struct PretrainVariant {
    std::vector<gd::MetaLabel> labels{};   // empty: patient, position, phase (the sampler's default)
    index_t per_patient = 0;               // images per patient in a batch; 0: the sampler chooses
    std::vector<double> temperatures{};    // image-loss temperature: one for all labels or one per label; empty: 0.5
    nn::HeadNorm head_norm = nn::HeadNorm::hidden_and_output;
    PretrainAugment augment = PretrainAugment::intensity;
    bool pixel_contrast = true;
};

// One line naming the variant's choices, for reports.
inline std::string describe(const PretrainVariant& v) {
    std::string labels;
    for (gd::MetaLabel l : v.labels) labels += (labels.empty() ? "" : " ") + std::string(gd::meta_label_name(l));
    std::string temperatures;
    for (double t : v.temperatures) {
        char b[32];
        std::snprintf(b, sizeof b, "%s%g", temperatures.empty() ? "" : " / ", t);
        temperatures += b;
    }
    const char* augment = v.augment == PretrainAugment::intensity   ? "intensity"
                          : v.augment == PretrainAugment::geometric ? "geometric + intensity"
                                                                    : "geometric (no flips) + intensity";
    return "labels " + (labels.empty() ? std::string("patient position phase") : labels) + ", images per patient " +
           (v.per_patient > 0 ? std::to_string(v.per_patient) : std::string("chosen by the sampler")) +
           ", image temperature " + (temperatures.empty() ? std::string("0.5") : temperatures) + ", head batch norm " +
           nn::to_string(v.head_norm) + ", augmentation " + augment +
           (v.pixel_contrast ? ", pixel contrast" : ", no pixel contrast");
}

// Sizes, lengths and rates of one protocol.
struct Protocol {
    index_t size = 64;                // phantom images are size x size
    index_t pretrain_patients = 16;   // unlabelled, scanner 0
    index_t probe_patients = 10;      // held out, scanner 0, unlabelled: the k-NN probe
    index_t labelled_pool = 5;        // labelled patients, scanner 0; a run uses the first n
    index_t test_patients = 4;        // per test scanner
    std::vector<int> test_scanners{0, 1, 2};
    std::int64_t pretrain_steps = 400;  // enough for AdamW to learn the cardiac phase (docs/training.md)
    std::int64_t finetune_steps = 60;
    index_t pretrain_batch = 16;
    tr::PretrainOptimizer pretrain_optimizer = tr::PretrainOptimizer::adamw;
    double pretrain_lr = 0;  // 0: the optimizer's default (pretrain_learning_rate)
    index_t finetune_batch = 8;
    double finetune_lr = 2e-3;
    int depth = 3;
    index_t base_width = 16;
    PretrainVariant variant = {};
};

// The pre-training's base learning rate: --pretrain-lr, or the library's default for the optimizer.
inline double pretrain_learning_rate(const Protocol& p) {
    if (p.pretrain_lr > 0) return p.pretrain_lr;
    tr::GclPretrainerOptions defaults;
    defaults.optimizer = p.pretrain_optimizer;
    return defaults.learning_rate();
}

inline nn::UNetOptions unet_options(const Protocol& p) {
    return {.in_channels = 1, .classes = gd::cls::count, .depth = p.depth, .base_width = p.base_width};
}

// Fine-tuning augmentation (pre-training uses GclPretrainerOptions' own default).
inline gd::AugmentOptions finetune_augmentation() {
    gd::AugmentOptions a;
    a.max_rotation = 15;
    a.min_scale = 0.9;
    a.max_scale = 1.1;
    a.max_noise = 0.03;
    return a;
}

struct Data {
    std::vector<gd::Slice> unlabelled, probe, labelled_pool;
    std::vector<std::vector<gd::Slice>> test;  // one per test scanner
};

// Patient ranges never overlap: unlabelled, probe, labelled pool, then the test patients of each scanner.
inline Data make_data(const Protocol& p, std::uint64_t seed) {
    const auto phantom = [&](index_t first, index_t patients, int scanner) {
        gd::PhantomOptions o;
        o.patients = patients;
        o.first_patient = first;
        o.size = p.size;
        o.seed = seed;
        o.scanner = scanner;
        return gd::phantom_slices(o);
    };
    Data d;
    index_t next = 1;
    d.unlabelled = phantom(next, p.pretrain_patients, 0);
    next += p.pretrain_patients;
    d.probe = phantom(next, p.probe_patients, 0);
    next += p.probe_patients;
    d.labelled_pool = phantom(next, p.labelled_pool, 0);
    next += p.labelled_pool;
    for (int scanner : p.test_scanners) {
        d.test.push_back(phantom(next, p.test_patients, scanner));
        next += p.test_patients;
    }
    return d;
}

// The slices of the first n patients of the labelled pool.
inline std::vector<gd::Slice> first_patients(const std::vector<gd::Slice>& pool, index_t n) {
    std::vector<std::int64_t> ids;
    for (const gd::Slice& s : pool)
        if (std::find(ids.begin(), ids.end(), s.meta.patient) == ids.end()) ids.push_back(s.meta.patient);
    gcl::check(n >= 1 && n <= static_cast<index_t>(ids.size()), "gcl_runs", "asked for ", n,
               " labelled patients, the pool has ", ids.size());
    std::vector<gd::Slice> out;
    for (const gd::Slice& s : pool)
        if (std::find(ids.begin(), ids.begin() + n, s.meta.patient) != ids.begin() + n) out.push_back(s);
    return out;
}

// One pre-training's record.
struct Pretraining {
    std::string method;
    std::uint64_t seed = 0;
    std::vector<std::string> labels;                   // what the losses contrast
    std::string optimizer;                             // "adamw" or "sgd"
    double learning_rate = 0;                          // the schedule's peak
    std::vector<std::vector<double>> image_curve;      // [steps][K]
    std::vector<std::vector<double>> pixel_curve;      // [steps][K]
    std::vector<double> final_image_loss, final_pixel_loss;  // [K] mean over the last tenth of the steps
    double log_2b_minus_1 = 0;
    std::vector<std::string> probe_labels;
    std::vector<double> probe_accuracy, probe_chance;
    std::int64_t conflicts = 0, projections = 0;       // summed over the steps
    std::vector<std::int64_t> conflicts_per_step;
    std::vector<double> mean_label_cosines;            // mean over the steps, pairs (0,1), (0,2), ...
    double kept_pair_fraction = 1;                     // of GradFilter, mean over the steps
    double seconds = 0;
};

inline tr::GclPretrainerOptions pretrainer_options(Method m, const Protocol& p, std::uint64_t seed) {
    tr::GclPretrainerOptions po;
    po.steps = p.pretrain_steps;
    po.warmup_steps = std::min<std::int64_t>(po.warmup_steps, p.pretrain_steps / 5);  // short runs warm up less
    po.optimizer = p.pretrain_optimizer;
    po.set_learning_rate(pretrain_learning_rate(p));
    po.sampler.batch_size = p.pretrain_batch;
    po.sampler.seed = seed;
    po.objective.mitigate.seed = seed;
    po.objective.seed = seed;
    po.seed = seed;
    switch (m) {
        case Method::random: gcl::fail("gcl_runs", "random-init is not pre-trained");
        case Method::instance:
            po.instance_contrast = true;
            po.sampler.positives = {};
            po.objective.mitigation = tr::Mitigation::none;
            po.objective.filter = tr::PixelFilter::none;
            break;
        case Method::position:
            po.sampler.positives = {gd::MetaLabel::position};
            po.objective.mitigation = tr::Mitigation::none;
            po.objective.filter = tr::PixelFilter::none;
            break;
        case Method::summed:
            po.objective.mitigation = tr::Mitigation::none;
            po.objective.filter = tr::PixelFilter::none;
            break;
        case Method::gcl_no_filter:
            po.objective.mitigation = tr::Mitigation::parameters;
            po.objective.filter = tr::PixelFilter::none;
            break;
        case Method::gcl_parameters: po.objective.mitigation = tr::Mitigation::parameters; break;
        case Method::gcl_representation: po.objective.mitigation = tr::Mitigation::representation; break;
    }
    const PretrainVariant& v = p.variant;
    if (!v.labels.empty() && m != Method::instance && m != Method::position) po.sampler.positives = v.labels;
    po.sampler.per_patient = v.per_patient;
    const std::size_t K = po.instance_contrast ? 1 : po.sampler.positives.size();
    gcl::check(v.temperatures.size() <= 1 || v.temperatures.size() == K, "gcl_runs", "give one image temperature or one per ",
               "contrasted label (", K, "), got ", v.temperatures.size());
    if (v.temperatures.size() == 1) po.objective.temperature = v.temperatures.front();
    if (v.temperatures.size() > 1) po.objective.image_temperatures = v.temperatures;
    switch (v.augment) {
        case PretrainAugment::intensity: po.augment = tr::pretrain_augmentation(); break;
        case PretrainAugment::geometric: po.augment = gd::AugmentOptions{}; break;
        case PretrainAugment::geometric_no_flip:
            po.augment = gd::AugmentOptions{};
            po.augment.flip_horizontal = 0;
            break;
    }
    po.objective.pixel_contrast = v.pixel_contrast;
    return po;
}

#ifdef GCL_RUNS_WITH_MPI
// A data-parallel setup attached to a trainer (dist::DataParallelGcl or DataParallelSegmentation,
// held for as long as `setup` lives) and this rank's share of each batch.
struct ParallelTraining {
    std::shared_ptr<void> setup;
    index_t own_images = 0;
};

// Makes the data-parallel setup Setup over `comm` and attaches it to `trainer`.
template <class Setup, class Comm, class Arena, class Trainer>
ParallelTraining attach_data_parallel(Comm& comm, Arena& arena, Trainer& trainer, index_t global_batch) {
    auto setup = std::make_shared<Setup>(comm, arena, global_batch);
    trainer.set_batch_exchange(&setup->exchange());
    return {.setup = setup, .own_images = setup->exchange().own_images()};
}

// Data-parallel training on device D over the ranks of the job: pretraining(job, arena,
// pretrainer, B) and finetuning(job, arena, trainer, B). On the cpu over the MPI job; cuda's
// (over NCCL) is in gcl_runs_cuda.cu.
template <class D>
struct DataParallelOn;

template <>
struct DataParallelOn<gcl::cpu> {
    static ParallelTraining pretraining(const Job& job, nn::ParameterArena<float>& arena,
                                        tr::GclPretrainer<float>& pretrainer, index_t global_batch) {
        return attach_data_parallel<gcl::dist::DataParallelGcl<float, gcl::dist::MpiCommunicator>>(
            job.communicator(), arena, pretrainer, global_batch);
    }
    static ParallelTraining finetuning(const Job& job, nn::ParameterArena<float>& arena,
                                       tr::SegmentationTrainer<float, nn::UNet<float>>& trainer, index_t global_batch) {
        return attach_data_parallel<gcl::dist::DataParallelSegmentation<float, gcl::dist::MpiCommunicator>>(
            job.communicator(), arena, trainer, global_batch);
    }
};
#endif

inline nn::PretrainModelOptions pretrain_model_options(const Protocol& p) {
    return {.encoder = unet_options(p).encoder(), .image_hidden = 128, .image_out = 96,
            .image_norm = p.variant.head_norm, .pixel_hidden = 64, .pixel_out = 48};
}

// Pre-trains `model` (in `arena`) with method m; prints a line every `print_every` steps (0: never).
// On device D (the model's); data parallel on a job of several ranks (DataParallelOn<D>).
template <class D>
Pretraining pretrain(Method m, const Protocol& p, const Data& d, std::uint64_t seed, nn::PretrainModel<float, D>& model,
                     nn::ParameterArena<float, D>& arena, std::int64_t print_every, const Job& job) {
    const tr::GclPretrainerOptions po = pretrainer_options(m, p, seed);
    tr::GclPretrainer<float, D> pretrainer(model, arena, d.unlabelled, po);
#ifdef GCL_RUNS_WITH_MPI
    ParallelTraining data_parallel;
    if (job.size() > 1) {
        data_parallel = DataParallelOn<D>::pretraining(job, arena, pretrainer, po.sampler.batch_size);
        if (print_every > 0)
            std::printf("  [pre-train %s] data-parallel: %lld of the %lld images of each batch on rank 0\n",
                        method_name(m).c_str(), static_cast<long long>(data_parallel.own_images),
                        static_cast<long long>(po.sampler.batch_size));
    }
#endif
    Pretraining r;
    r.method = method_name(m);
    r.seed = seed;
    r.optimizer = tr::to_string(po.optimizer);
    r.learning_rate = po.learning_rate();
    if (po.instance_contrast)
        r.labels = {"instance"};
    else
        for (gd::MetaLabel l : pretrainer.meta_spec().labels) r.labels.emplace_back(gd::meta_label_name(l));
    r.log_2b_minus_1 = std::log(2.0 * static_cast<double>(p.pretrain_batch) - 1.0);
    const auto K = r.labels.size();
    std::vector<double> cosine_sum;
    double kept = 0;
    const auto t0 = Clock::now();
    while (!pretrainer.done()) {
        const tr::GclStepReport s = pretrainer.step();
        r.image_curve.push_back(s.image_losses);
        r.pixel_curve.push_back(s.pixel_losses);
        r.conflicts += s.conflicting_pairs;
        r.projections += s.projections;
        r.conflicts_per_step.push_back(s.conflicting_pairs);
        if (cosine_sum.empty()) cosine_sum.assign(s.label_cosines.size(), 0.0);
        for (std::size_t i = 0; i < s.label_cosines.size() && i < cosine_sum.size(); ++i) cosine_sum[i] += s.label_cosines[i];
        kept += s.candidate_pairs > 0 ? static_cast<double>(s.kept_pairs) / static_cast<double>(s.candidate_pairs) : 1.0;
        if (print_every > 0 && (pretrainer.steps_done() % print_every == 0 || pretrainer.done())) {
            std::printf("  [pre-train %s] step %lld/%lld  image", r.method.c_str(),
                        static_cast<long long>(pretrainer.steps_done()), static_cast<long long>(p.pretrain_steps));
            for (double l : s.image_losses) std::printf(" %.3f", l);
            std::printf("  pixel");
            for (double l : s.pixel_losses) std::printf(" %.3f", l);
            std::printf("  conflicts %lld  (%.2f s/step)\n", static_cast<long long>(s.conflicting_pairs),
                        seconds_since(t0) / static_cast<double>(pretrainer.steps_done()));
            std::fflush(stdout);
        }
    }
    r.seconds = seconds_since(t0);
    const auto steps = static_cast<std::int64_t>(r.image_curve.size());
    for (double c : cosine_sum) r.mean_label_cosines.push_back(c / static_cast<double>(steps));
    r.kept_pair_fraction = kept / static_cast<double>(steps);
    // The final losses: the mean over the last tenth of the steps (at least one), since one batch is noisy.
    const std::int64_t tail = std::max<std::int64_t>(1, steps / 10);
    r.final_image_loss.assign(K, 0.0);
    r.final_pixel_loss.assign(r.pixel_curve.back().size(), 0.0);
    for (std::int64_t t = steps - tail; t < steps; ++t) {
        for (std::size_t k = 0; k < K; ++k) r.final_image_loss[k] += r.image_curve[t][k] / static_cast<double>(tail);
        for (std::size_t k = 0; k < r.final_pixel_loss.size(); ++k)
            r.final_pixel_loss[k] += r.pixel_curve[t][k] / static_cast<double>(tail);
    }
    // Probe every meta label, in the space its loss contrasts (its own part when the three are contrasted).
    const gd::MetaSpec probe_spec;  // patient, position, phase
    const bool parts = K == probe_spec.labels.size() && !po.instance_contrast &&
                       po.objective.label_space == tr::LabelSpace::per_label;
    const tr::MetaProbeResult probe =
        tr::probe_meta_labels<float>(model, d.probe, probe_spec, parts ? tr::LabelSpace::per_label : tr::LabelSpace::shared);
    r.probe_labels = probe.labels;
    r.probe_accuracy = probe.accuracy;
    r.probe_chance = probe.chance;
    return r;
}

// One fine-tuning's record.
struct Finetuning {
    std::string method;
    index_t labelled_patients = 0;
    std::uint64_t seed = 0;
    std::vector<std::string> test_sets;              // "scanner0", ...
    std::vector<std::vector<double>> dice, hd95;     // [test set][class 1..3]
    std::vector<double> mean_dice;                   // [test set] mean foreground Dice
    double seconds = 0;
};

inline const char* class_name(int c) {
    static const char* names[] = {"background", "RV", "Myo", "LV"};
    return names[c];
}

// Fine-tunes a U-Net (from `encoder` when given) on the labelled slices and evaluates it on
// every test set; `unet_out` (when given) receives the network for pictures.
// On device D; the evaluation brings the predictions back to the host for the metrics.
template <class D = gcl::cpu>
Finetuning finetune(const std::string& method, const Protocol& p, const Data& d, index_t labelled_patients,
                    std::uint64_t seed, const nn::ParameterArena<float, D>* encoder, bool print, const Job& job,
                    std::vector<gcl::Tensor<std::uint8_t>>* predictions = nullptr) {
    const auto t0 = Clock::now();
    nn::ParameterArena<float, D> arena;
    nn::UNet<float, D> unet(arena, unet_options(p), seed + 100);
    if (encoder) nn::transfer_parameters(*encoder, arena, {.source_prefix = "encoder."});
    const std::vector<gd::Slice> labelled = first_patients(d.labelled_pool, labelled_patients);
    tr::SegmentationTrainerOptions o;
    o.steps = p.finetune_steps;
    o.warmup_steps = std::min<std::int64_t>(o.warmup_steps, p.finetune_steps / 5);  // short runs warm up less
    o.batch_size = std::min<index_t>(p.finetune_batch, static_cast<index_t>(labelled.size()));
    o.adam.learning_rate = p.finetune_lr;
    o.augment = finetune_augmentation();
    o.seed = seed;
    tr::SegmentationTrainer<float, nn::UNet<float, D>> trainer(unet, arena, labelled, o);
#ifdef GCL_RUNS_WITH_MPI
    ParallelTraining data_parallel;
    if (job.size() > 1) {
        data_parallel = DataParallelOn<D>::finetuning(job, arena, trainer, trainer.batch_images());
        if (print)
            std::printf("  [fine-tune %s] data-parallel: %lld of the %lld images of each batch on rank 0\n",
                        method.c_str(), static_cast<long long>(data_parallel.own_images),
                        static_cast<long long>(trainer.batch_images()));
    }
#endif
    double running = 0;
    while (!trainer.done()) {
        const tr::SegmentationStepReport r = trainer.step();
        running = trainer.steps_done() == 1 ? r.loss : 0.9 * running + 0.1 * r.loss;
        if (print && (trainer.steps_done() % 25 == 0 || trainer.done())) {
            std::printf("  [fine-tune %s, %lld labelled] step %lld/%lld  loss %.4f\n", method.c_str(),
                        static_cast<long long>(labelled_patients), static_cast<long long>(trainer.steps_done()),
                        static_cast<long long>(p.finetune_steps), running);
            std::fflush(stdout);
        }
    }
    Finetuning f;
    f.method = method;
    f.labelled_patients = labelled_patients;
    f.seed = seed;
    for (std::size_t t = 0; t < d.test.size(); ++t) {
        const gcl::metrics::EvaluationReport e =
            gcl::metrics::evaluate_segmentation<float>(unet, d.test[t], {.classes = gd::cls::count});
        f.test_sets.push_back("scanner" + std::to_string(p.test_scanners[t]));
        f.dice.push_back({e.mean_dice[1], e.mean_dice[2], e.mean_dice[3]});
        f.hd95.push_back({e.mean_hd95[1], e.mean_hd95[2], e.mean_hd95[3]});
        f.mean_dice.push_back(e.mean_foreground_dice());
        if (predictions) {  // the middle slice of the first test volume
            const index_t mid = static_cast<index_t>(d.test[t].size()) / 4;
            const std::vector<index_t> one{mid};
            predictions->push_back(gcl::metrics::predict_slices<float>(unet, d.test[t], one));
        }
    }
    f.seconds = seconds_since(t0);
    return f;
}

// ---- the device a program trains on (--device) ----

enum class Device { cpu, cuda };

inline const char* device_name(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

// --device cpu|cuda (a bad value: CLI11's message naming the flag, exit 2).
inline void add_device_flag(CLI::App& app, std::string& device) {
    app.add_option("--device", device, "where the networks train and run: cpu (default) or cuda (a build with CUDA)")
        ->check(CLI::IsMember({"cpu", "cuda"}));
}

inline Device parse_device(const std::string& device) { return device == "cuda" ? Device::cuda : Device::cpu; }

#ifdef GCL_RUNS_WITH_CUDA
// gcl_runs_cuda.cu: the number of CUDA devices (0 without a GPU or a driver), and whether this
// build trains data-parallel on GPUs (it has NCCL).
int cuda_devices();
bool cuda_data_parallel();
inline constexpr const char* no_nccl_message =
    "--device cuda under mpirun trains data-parallel over NCCL, which this build did not find";
#endif

// Raises gcl::Error, naming --device, unless this build and machine can train on `device`.
inline void check_device(Device device, const Job& job) {
    if (device == Device::cpu) return;
#ifdef GCL_RUNS_WITH_CUDA
    gcl::check(cuda_devices() > 0, "gcl_runs", "--device cuda: no CUDA device is available on this machine");
    gcl::check(job.size() == 1 || cuda_data_parallel(), "gcl_runs", no_nccl_message);
#else
    (void)job;
    gcl::fail("gcl_runs", "--device cuda: this build has no CUDA backend (configure with -DGCL_ENABLE_CUDA=ON where the "
              "CUDA toolkit and cuDNN are installed)");
#endif
}

// One method's networks on one device: the pre-training model (none for Method::random) and the
// U-Nets fine-tuned from its encoder. The programs hold it through this interface, so that their
// own files never instantiate the pipeline: make_method_session picks the device, and the cpu
// and cuda sessions are compiled once each (gcl_runs_cpu.cpp, gcl_runs_cuda.cu).
class MethodSession {
public:
    virtual ~MethodSession() = default;
    // Parameters of the pre-training model (0 for Method::random).
    virtual index_t pretrain_parameters() const = 0;
    // Pre-trains the model; prints a line every `print_every` steps (0: never).
    virtual Pretraining pretrain(std::int64_t print_every) = 0;
    // The pre-trained parameters to a checkpoint, and back (instead of pretrain).
    virtual void save_pretrained(const std::filesystem::path& checkpoint) const = 0;
    virtual void load_pretrained(const std::filesystem::path& checkpoint) = 0;
    // Fine-tunes a fresh U-Net from the pre-trained encoder (from a random start for
    // Method::random) on the first `labelled` patients and evaluates it on every test set.
    virtual Finetuning finetune(index_t labelled, bool print, std::vector<gcl::Tensor<std::uint8_t>>* predictions) = 0;
};

template <class D>
class MethodSessionOn final : public MethodSession {
public:
    MethodSessionOn(Method m, const Protocol& p, const Data& d, std::uint64_t seed, const Job& job)
        : method_(m), protocol_(p), data_(d), seed_(seed), job_(job) {
        if (m != Method::random) model_.emplace(arena_, pretrain_model_options(p), seed);
    }
    index_t pretrain_parameters() const override { return model_ ? arena_.size() : 0; }
    Pretraining pretrain(std::int64_t print_every) override {
        require_pretraining();
        return gcl_runs::pretrain<D>(method_, protocol_, data_, seed_, *model_, arena_, print_every, job_);
    }
    void save_pretrained(const std::filesystem::path& checkpoint) const override {
        require_pretraining();
        tr::CheckpointWriter writer;
        tr::add_parameters(writer, arena_);
        writer.write(checkpoint);
    }
    void load_pretrained(const std::filesystem::path& checkpoint) override {
        require_pretraining();
        tr::load_parameters(tr::Checkpoint::read(checkpoint), arena_);
    }
    Finetuning finetune(index_t labelled, bool print, std::vector<gcl::Tensor<std::uint8_t>>* predictions) override {
        return gcl_runs::finetune<D>(method_name(method_), protocol_, data_, labelled, seed_, model_ ? &arena_ : nullptr,
                                     print, job_, predictions);
    }

private:
    void require_pretraining() const {
        gcl::check(model_.has_value(), "gcl_runs", method_name(method_), " has no pre-training");
    }

    Method method_;
    const Protocol& protocol_;
    const Data& data_;
    std::uint64_t seed_;
    const Job& job_;
    nn::ParameterArena<float, D> arena_;
    std::optional<nn::PretrainModel<float, D>> model_;
};

// gcl_runs_cpu.cpp and gcl_runs_cuda.cu: the session on each device.
std::unique_ptr<MethodSession> make_cpu_session(Method m, const Protocol& p, const Data& d, std::uint64_t seed,
                                                const Job& job);
#ifdef GCL_RUNS_WITH_CUDA
std::unique_ptr<MethodSession> make_cuda_session(Method m, const Protocol& p, const Data& d, std::uint64_t seed,
                                                 const Job& job);
#endif

// Method m's session on `device` (the program calls check_device once, first). `p`, `d` and
// `job` must outlive it.
inline std::unique_ptr<MethodSession> make_method_session(Device device, Method m, const Protocol& p, const Data& d,
                                                          std::uint64_t seed, const Job& job) {
    if (device == Device::cpu) return make_cpu_session(m, p, d, seed, job);
#ifdef GCL_RUNS_WITH_CUDA
    return make_cuda_session(m, p, d, seed, job);
#else
    check_device(device, job);  // raises: this build has no CUDA backend
    return nullptr;
#endif
}

// One method of a program: the fine-tuning from a random start (Method::random), or a
// pre-training and the fine-tuning from its encoder.
struct MethodRun {
    std::optional<Pretraining> pretraining;
    Finetuning finetuning;
};

inline void print_pretraining(const Pretraining& r) {
    std::printf("pre-training %s done in %.0f s: %lld conflicting gradient pairs met, %lld projections\n",
                r.method.c_str(), r.seconds, static_cast<long long>(r.conflicts), static_cast<long long>(r.projections));
    std::printf("  final image loss (mean of the last tenth of the steps; log(2B - 1) = %.3f):", r.log_2b_minus_1);
    for (std::size_t k = 0; k < r.labels.size(); ++k) std::printf(" %s %.3f", r.labels[k].c_str(), r.final_image_loss[k]);
    std::printf("\n  k-NN probe on %s:", "held-out patients");
    for (std::size_t k = 0; k < r.probe_labels.size(); ++k)
        std::printf(" %s %.2f (chance %.2f)", r.probe_labels[k].c_str(), r.probe_accuracy[k], r.probe_chance[k]);
    std::printf("\n");
}

// Method m on `device` (check_device first), printing its progress (gcl_demo's runs).
inline MethodRun run_method(Device device, Method m, const Protocol& p, const Data& d, index_t labelled,
                            std::uint64_t seed, const Job& job) {
    const std::unique_ptr<MethodSession> session = make_method_session(device, m, p, d, seed, job);
    MethodRun run;
    if (m != Method::random) {
        std::printf("pre-training %s: %lld parameters\n", method_name(m).c_str(),
                    static_cast<long long>(session->pretrain_parameters()));
        run.pretraining = session->pretrain(10);
        print_pretraining(*run.pretraining);
    }
    run.finetuning = session->finetune(labelled, true, nullptr);
    return run;
}

// ---- JSON ----

inline Json number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

inline Json numbers(const std::vector<double>& v) {
    Json a = Json::array();
    for (double x : v) a.push_back(number(x));
    return a;
}

inline Json pretraining_json(const Pretraining& r, bool with_curves) {
    Json j;
    j["labels"] = r.labels;
    j["optimizer"] = r.optimizer;
    j["learning_rate"] = r.learning_rate;
    j["final_image_loss"] = numbers(r.final_image_loss);
    j["final_pixel_loss"] = numbers(r.final_pixel_loss);
    j["log_2b_minus_1"] = r.log_2b_minus_1;
    j["probe_labels"] = r.probe_labels;
    j["probe_accuracy"] = numbers(r.probe_accuracy);
    j["probe_chance"] = numbers(r.probe_chance);
    j["conflicts"] = r.conflicts;
    j["projections"] = r.projections;
    j["mean_label_cosines"] = numbers(r.mean_label_cosines);
    j["kept_pair_fraction"] = r.kept_pair_fraction;
    j["seconds"] = r.seconds;
    if (with_curves) {
        Json img = Json::array(), pix = Json::array();
        for (const auto& s : r.image_curve) img.push_back(numbers(s));
        for (const auto& s : r.pixel_curve) pix.push_back(numbers(s));
        j["image_loss_curve"] = img;
        j["pixel_loss_curve"] = pix;
        j["conflicts_per_step"] = r.conflicts_per_step;
    }
    return j;
}

inline Json run_json(const Finetuning& f, const Pretraining* pre) {
    Json j;
    j["method"] = f.method;
    j["labelled_patients"] = f.labelled_patients;
    j["seed"] = f.seed;
    Json dice, hd95;
    for (std::size_t t = 0; t < f.test_sets.size(); ++t) {
        Json dt, ht;
        for (int c = 1; c <= 3; ++c) {
            dt[class_name(c)] = number(f.dice[t][c - 1]);
            ht[class_name(c)] = number(f.hd95[t][c - 1]);
        }
        dt["mean"] = number(f.mean_dice[t]);
        double h = 0;
        int n = 0;
        for (double v : f.hd95[t])
            if (std::isfinite(v)) {
                h += v;
                ++n;
            }
        ht["mean"] = n > 0 ? Json(h / n) : Json(nullptr);
        dice[f.test_sets[t]] = dt;
        hd95[f.test_sets[t]] = ht;
    }
    j["dice"] = dice;
    j["hd95"] = hd95;
    j["pretrain"] = pre ? pretraining_json(*pre, false) : Json(nullptr);
    j["finetune_seconds"] = f.seconds;
    j["pretrain_seconds"] = pre ? pre->seconds : 0.0;
    return j;
}

inline void write_json(const std::filesystem::path& path, const Json& j) {
    gcl::io::write_file_atomic(path, j.dump(1) + "\n", "gcl_runs::write_json");
}

// Parses the command line; returns the exit code when the program should stop: 0 after --help,
// 2 after a bad or unknown flag (CLI11's message, which names the flag, on stderr).
inline std::optional<int> parse_or_exit(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    return std::nullopt;
}

// The common command-line flags of both programs.
inline void add_protocol_flags(CLI::App& app, Protocol& p) {
    app.add_option("--size", p.size, "phantom image size (pixels)")->check(CLI::Range(16, 512));
    app.add_option("--pretrain-patients", p.pretrain_patients, "unlabelled patients")->check(CLI::Range(2, 10000));
    app.add_option("--probe-patients", p.probe_patients, "held-out patients of the k-NN probe")->check(CLI::Range(2, 10000));
    app.add_option("--test-patients", p.test_patients, "test patients per scanner")->check(CLI::Range(1, 10000));
    app.add_option("--pretrain-steps", p.pretrain_steps, "pre-training steps")->check(CLI::Range(1, 1000000));
    app.add_option("--finetune-steps", p.finetune_steps, "fine-tuning steps")->check(CLI::Range(1, 1000000));
    app.add_option("--pretrain-batch", p.pretrain_batch, "pre-training batch size B (2B views)")->check(CLI::Range(4, 4096));
    const std::map<std::string, tr::PretrainOptimizer> optimizers{{"adamw", tr::PretrainOptimizer::adamw},
                                                                  {"sgd", tr::PretrainOptimizer::sgd}};
    app.add_option("--pretrain-optimizer", p.pretrain_optimizer, "pre-training optimizer: adamw (default) or sgd (momentum 0.9)")
        ->type_name("{adamw,sgd}")
        ->transform(CLI::CheckedTransformer(optimizers, CLI::ignore_case).description(""));
    app.add_option("--pretrain-lr", p.pretrain_lr, "pre-training base learning rate (default 3e-3 for adamw, 0.05 for sgd)")
        ->check(CLI::PositiveNumber);
    app.add_option("--finetune-lr", p.finetune_lr, "fine-tuning Adam learning rate")->check(CLI::PositiveNumber);

    // Pre-training variants (docs/training.md compares them).
    PretrainVariant& v = p.variant;
    const std::map<std::string, gd::MetaLabel> labels{
        {"patient", gd::MetaLabel::patient}, {"position", gd::MetaLabel::position}, {"phase", gd::MetaLabel::phase}};
    app.add_option("--labels", v.labels, "meta labels the pre-training contrasts, in order (default: patient position phase)")
        ->expected(1, 3)
        ->type_name("{patient,position,phase}")
        ->transform(CLI::CheckedTransformer(labels, CLI::ignore_case).description(""));
    app.add_option("--per-patient", v.per_patient, "images per patient in a pre-training batch (default: the sampler chooses)")
        ->check(CLI::Range(1, 4096));
    app.add_option("--temperature", v.temperatures,
                   "image-loss temperature: one for every label, or one per label (default 0.5)")
        ->expected(1, 3)
        ->check(CLI::PositiveNumber);
    const std::map<std::string, nn::HeadNorm> norms{{"none", nn::HeadNorm::none},
                                                    {"hidden", nn::HeadNorm::hidden},
                                                    {"hidden-output", nn::HeadNorm::hidden_and_output}};
    app.add_option("--head-norm", v.head_norm, "batch normalisation in the image head (default hidden-output)")
        ->type_name("{none,hidden,hidden-output}")
        ->transform(CLI::CheckedTransformer(norms, CLI::ignore_case).description(""));
    const std::map<std::string, PretrainAugment> augments{{"intensity", PretrainAugment::intensity},
                                                          {"geometric", PretrainAugment::geometric},
                                                          {"geometric-no-flip", PretrainAugment::geometric_no_flip}};
    app.add_option("--pretrain-augment", v.augment,
                   "pre-training augmentation: intensity (default), geometric (plus flips, rotations, zooms), "
                   "geometric-no-flip")
        ->type_name("{intensity,geometric,geometric-no-flip}")
        ->transform(CLI::CheckedTransformer(augments, CLI::ignore_case).description(""));
    app.add_flag("--no-pixel-contrast", [&v](std::int64_t) { v.pixel_contrast = false; },
                 "pre-train on the image losses alone");
}

}  // namespace gcl_runs
