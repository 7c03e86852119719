#pragma once
// The step that benchmarks/gcl_step.cpp (cpu) and benchmarks/cuda/gcl_step_cuda.cu (cuda) time:
// the model, the objective's options, SGD, the batch, the flags and the timing loop, written once.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/optim/sgd.hpp"
#include "gcl/train/gcl_options.hpp"

namespace gcl_bench {

namespace nn = gcl::nn;
namespace tr = gcl::train;
using gcl::index_t;

struct Settings {
    std::string model = "demo";
    tr::Mitigation mitigation = tr::Mitigation::parameters;
    int steps = 10;
    int warmup = 2;
    std::string dump;    // directory for the --check files
    std::string passes;  // "separate" or "stacked": time forward + K backward passes of the model only
};

struct ModelSpec {
    int depth;
    index_t size;
};

constexpr index_t kImages = 16;  // B: the batch holds 2B views
constexpr index_t kLabels = 3;   // K meta labels
constexpr std::uint64_t kSeed = 7;

inline ModelSpec spec_of(const std::string& name) {
    if (name == "demo") return {3, 64};
    if (name == "deep") return {4, 128};
    throw gcl::Error("gcl_step", "unknown model '" + name + "' (demo or deep)");
}

inline nn::PretrainModelOptions model_options(const ModelSpec& m) {
    return {.encoder = {.in_channels = 1, .depth = m.depth, .base_width = 16},
            .image_hidden = 128,
            .image_out = 96,
            .image_norm = nn::HeadNorm::none,  // the PyTorch twin's image head has no batch norm
            .pixel_hidden = 64,
            .pixel_out = 48};
}

inline tr::GclObjectiveOptions objective_options(tr::Mitigation mitigation) {
    return {.temperature = 0.1,
            .mitigation = mitigation,
            .mitigate = {.seed = kSeed},
            .label_space = tr::LabelSpace::per_label,
            .pixel_contrast = true,
            .pixel_samples = 16,
            .filter = tr::PixelFilter::anchors,
            .anchor_ratio = 0.5,
            .image_guidance = true,
            .seed = kSeed};
}

// SGD as the pre-trainer configures it.
inline const gcl::optim::SgdOptions kSgd{.learning_rate = 0.1, .momentum = 0.9, .weight_decay = 1e-4};

inline Settings parse(int argc, char** argv) {
    Settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw gcl::Error("gcl_step", "option " + a + " needs a value");
            return argv[++i];
        };
        if (a == "--model") {
            s.model = value();
        } else if (a == "--mitigation") {
            const std::string m = value();
            if (m == "parameters") s.mitigation = tr::Mitigation::parameters;
            else if (m == "representation") s.mitigation = tr::Mitigation::representation;
            else if (m == "none") s.mitigation = tr::Mitigation::none;
            else throw gcl::Error("gcl_step", "unknown mitigation '" + m + "' (parameters, representation, none)");
        } else if (a == "--steps") {
            s.steps = std::stoi(value());
        } else if (a == "--warmup") {
            s.warmup = std::stoi(value());
        } else if (a == "--dump") {
            s.dump = value();
        } else if (a == "--passes") {
            s.passes = value();
            if (s.passes != "separate" && s.passes != "stacked")
                throw gcl::Error("gcl_step", "unknown --passes '" + s.passes + "' (separate or stacked)");
        } else {
            throw gcl::Error("gcl_step", "unknown option '" + a + "'");
        }
    }
    gcl::check(s.steps >= 1 && s.warmup >= 0, "gcl_step", "--steps must be >= 1 and --warmup >= 0");
    return s;
}

// Images [2B, 1, H, W] (view B + i a noisy copy of view i) and meta labels [K, 2B]: patient (4
// values), position bin (4), phase (2), the same for both views of an image.
template <class T>
void make_batch(index_t size, gcl::Tensor<T>& images, gcl::Tensor<std::int64_t>& meta) {
    gcl::Rng rng(kSeed, 1);
    images = gcl::Tensor<T>({2 * kImages, 1, size, size});
    gcl::fill_normal<T>(images.view(), rng);
    const index_t per_image = size * size;
    for (index_t i = 0; i < kImages; ++i)
        for (index_t p = 0; p < per_image; ++p) {
            T& second = images.data()[(kImages + i) * per_image + p];
            second = images.data()[i * per_image + p] + T(0.1) * second;
        }
    meta = gcl::Tensor<std::int64_t>({kLabels, 2 * kImages});
    const std::int64_t values[kLabels] = {4, 4, 2};
    for (index_t k = 0; k < kLabels; ++k)
        for (index_t i = 0; i < kImages; ++i) {
            const auto v = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(values[k])));
            meta(k, i) = v;
            meta(k, kImages + i) = v;
        }
}

// CPU time of the whole process (all threads): with one thread, a figure that other processes on
// the machine disturb far less than the wall time.
inline double process_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Runs warmup + steps calls of step(i); the timed ones' wall and process CPU seconds, sorted.
// `finish` is called at the end of every step before the clock is read (a device's synchronize).
template <class Step, class Finish = void (*)()>
void time_steps(const Settings& s, Step&& step, std::vector<double>& seconds, std::vector<double>& cpu_seconds,
                Finish finish = [] {}) {
    for (int i = 0; i < s.warmup + s.steps; ++i) {
        const auto start = std::chrono::steady_clock::now();
        const double cpu_start = process_cpu_seconds();
        step(i);
        finish();
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        if (i >= s.warmup) {
            seconds.push_back(took.count());
            cpu_seconds.push_back(process_cpu_seconds() - cpu_start);
        }
    }
    std::sort(seconds.begin(), seconds.end());
    std::sort(cpu_seconds.begin(), cpu_seconds.end());
}

}  // namespace gcl_bench
