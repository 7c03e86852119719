// One GCL pre-training step on the host, timed: forward, K = 3 per-label losses (image SupCon and
// pixel contrast in per-label spaces), the anchor filter guided by the image branch, gradient
// mitigation at the chosen level, and an SGD step. benchmarks/reference/gcl_step.py is the same
// step in PyTorch; benchmarks/run_gcl_step.sh runs the two alternately.
//
//   gcl_step --model demo|deep --mitigation parameters|representation|none [--steps N] [--warmup W]
//   gcl_step --model demo --passes separate|stacked   # the model alone: forward, then K backward
//                                        # passes one by one or as one stacked pass (nn::PretrainStackedBackward)
//   gcl_step --model demo --dump DIR     # writes the initial parameters, the batch and one step's
//                                        # gradient (in double) for `gcl_step.py --check DIR`
//
// Models: demo = U-Net encoder of depth 3, base width 16, 2B = 32 images of 64 x 64 (the demo's
// pre-training); deep = depth 4, base width 16, 128 x 128. Both: image head 128 -> 96, pixel
// head 64 -> 48, S = 16 sampled locations, half of the anchors kept.
//
// Prints one line per run: `gcl_step model=<m> mitigation=<l> threads=<t> steps=<n> median_s=<x>
// min_s=<y> cpu_s=<c> peak_mb=<z>`: wall times, the median CPU time of the process per step (all
// threads), and its peak resident memory (getrusage).
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "gcl/gcl.hpp"
#include "gcl_step_setup.hpp"

namespace {

using namespace gcl_bench;

double peak_mb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// The files gcl_step.py --check reads: parameters (flat, with a name table), batch, the step-0
// locations and projection orders, and the combined gradient of step 0. In double: in float, the
// few activations that round to the other side of 0 in one of the two programs flip a LeakyReLU
// slope, and those differences (about 1e-3 of the largest entry) would hide a real one.
void dump(const std::filesystem::path& dir, const ModelSpec& m, tr::Mitigation mitigation) {
    using T = double;
    nn::ParameterArena<T> arena;
    nn::PretrainModel<T> model(arena, model_options(m), kSeed);
    gcl::Tensor<T> images;
    gcl::Tensor<std::int64_t> meta;
    make_batch(m.size, images, meta);
    std::filesystem::create_directories(dir);
    gcl::save_npy<T>(dir / "params.npy", gcl::Tensor<T>::copy_of(arena.flat_values()));
    // One row per parameter in registration order: offset, rank, then up to 4 extents.
    gcl::Tensor<std::int64_t> table(gcl::Shape{static_cast<index_t>(arena.parameter_count()), 6}, 0);
    for (std::size_t i = 0; i < arena.parameter_count(); ++i) {
        const auto& p = arena.parameters()[i];
        const auto row = static_cast<index_t>(i);
        table(row, 0) = p.offset;
        table(row, 1) = p.shape.rank();
        for (index_t d = 0; d < p.shape.rank(); ++d) table(row, 2 + d) = p.shape[d];
    }
    gcl::save_npy<std::int64_t>(dir / "params_table.npy", table);
    gcl::save_npy<T>(dir / "images.npy", images);
    gcl::save_npy<std::int64_t>(dir / "meta.npy", meta);

    const tr::GclObjectiveOptions o = objective_options(mitigation);
    const gcl::Shape ps = model.pixel_shape(images.shape());
    gcl::Rng rng(o.seed, gcl::mix64(0));  // the objective's draw for step 0
    const gcl::Tensor<index_t> loc = gcl::loss::sample_locations(ps[2], ps[3], std::min(o.pixel_samples, ps[2] * ps[3]), rng);
    gcl::Tensor<std::int64_t> locations({loc.dim(0)});
    for (index_t s = 0; s < loc.dim(0); ++s) locations(s) = loc(s);
    gcl::save_npy<std::int64_t>(dir / "locations.npy", locations);
    gcl::Tensor<std::int64_t> orders({kLabels, kLabels - 1});
    std::vector<index_t> order(kLabels - 1);
    for (index_t i = 0; i < kLabels; ++i) {
        gcl::surgery::projection_order(o.mitigate.seed, 0, 0, i, kLabels, order.data());
        for (index_t t = 0; t + 1 < kLabels; ++t) orders(i, t) = order[t];
    }
    gcl::save_npy<std::int64_t>(dir / "orders.npy", orders);

    tr::GclObjective<T> objective(model, arena, o);
    const tr::GclStepReport r = objective.gradient(images.cview(), meta.cview(), 0);
    gcl::save_npy<T>(dir / "grad.npy", gcl::Tensor<T>::copy_of(arena.flat_grads()));
    std::printf("gcl_step: wrote %s (P = %lld, loss %.6f, %lld projections)\n", dir.c_str(),
                static_cast<long long>(arena.size()), r.total, static_cast<long long>(r.projections));
}

// Forward and K backward passes of the model alone, from fixed embedding gradients.
int run_passes(const Settings& s, const ModelSpec& m) {
    nn::ParameterArena<float> arena;
    nn::PretrainModel<float> model(arena, model_options(m), kSeed);
    gcl::Tensor<float> images;
    gcl::Tensor<std::int64_t> meta;
    make_batch(m.size, images, meta);
    const gcl::Shape is = model.image_shape(images.shape()), ps = model.pixel_shape(images.shape());
    gcl::Rng rng(kSeed, 2);
    gcl::Tensor<float> d_image({kLabels, is[0], is[1]}), d_pixel({kLabels, ps[0], ps[1], ps[2], ps[3]});
    gcl::fill_normal<float>(d_image.view(), rng, 0.0f, 1e-2f);
    gcl::fill_normal<float>(d_pixel.view(), rng, 0.0f, 1e-3f);
    gcl::Tensor<float> G({kLabels, arena.size()});
    nn::PretrainStackedBackward<float> stacked;
    std::vector<double> seconds, cpu_seconds;
    time_steps(s, [&](int) {
        model.forward(images.cview());
        if (s.passes == "stacked") {
            stacked(model, arena, G.view(), d_image.cview(), d_pixel.cview());
            return;
        }
        for (index_t k = 0; k < kLabels; ++k) {
            arena.begin_backward(G.view(), k, gcl::WriteMode::overwrite);
            model.backward(d_image.cview().select(0, k), d_pixel.cview().select(0, k));
        }
        arena.end_backward();
    }, seconds, cpu_seconds);
    std::printf("gcl_passes model=%s passes=%s K=%lld threads=%d steps=%d median_s=%.4f min_s=%.4f cpu_s=%.4f peak_mb=%.1f\n",
                s.model.c_str(), s.passes.c_str(), static_cast<long long>(kLabels),
                gcl::backend::cpu_detail::max_threads(), s.steps, seconds[seconds.size() / 2], seconds.front(),
                cpu_seconds[cpu_seconds.size() / 2], peak_mb());
    return 0;
}

int run(int argc, char** argv) {
    const Settings s = parse(argc, argv);
    const ModelSpec m = spec_of(s.model);
    if (!s.dump.empty()) {
        dump(s.dump, m, s.mitigation);
        return 0;
    }
    if (!s.passes.empty()) return run_passes(s, m);
    nn::ParameterArena<float> arena;
    nn::PretrainModel<float> model(arena, model_options(m), kSeed);
    gcl::Tensor<float> images;
    gcl::Tensor<std::int64_t> meta;
    make_batch(m.size, images, meta);

    tr::GclObjective<float> objective(model, arena, objective_options(s.mitigation));
    gcl::optim::SGD<float> sgd(kSgd);
    std::vector<double> seconds, cpu_seconds;
    time_steps(s, [&](int step) {
        objective.gradient(images.cview(), meta.cview(), static_cast<std::uint64_t>(step));
        sgd.step(arena);
    }, seconds, cpu_seconds);
    std::printf("gcl_step model=%s mitigation=%s threads=%d steps=%d median_s=%.4f min_s=%.4f cpu_s=%.4f peak_mb=%.1f "
                "params=%lld\n",
                s.model.c_str(), tr::to_string(s.mitigation), gcl::backend::cpu_detail::max_threads(), s.steps,
                seconds[seconds.size() / 2], seconds.front(), cpu_seconds[cpu_seconds.size() / 2], peak_mb(),
                static_cast<long long>(arena.size()));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
