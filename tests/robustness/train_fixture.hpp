#pragma once
// A tiny GCL pre-training loop whose every batch is a function of (seed, step): the soak test,
// the resume test and the cross-machine checksum all drive it.
#include <cstdint>
#include <cstring>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/optim/sgd.hpp"
#include "gcl/train/gcl_objective.hpp"

namespace robustness {

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;

inline gcl::nn::PretrainModelOptions tiny_model() {
    return {.encoder = {.in_channels = 1, .depth = 1, .base_width = 4},
            .image_hidden = 8,
            .image_out = 6,
            .pixel_hidden = 8,
            .pixel_out = 6};
}

struct Batch {
    Tensor<float> images;
    Tensor<std::int64_t> meta;
};

// B = 3 images x 2 views of 8 x 8 under K = 2 meta labels. With `hostile`, some steps bring
// all-zero images (collapsed embeddings: zero gradients), a label whose values are all distinct
// (no positive but the other view) and a label that is unknown (-1) for every image.
inline Batch make_batch(std::uint64_t seed, std::uint64_t step, bool hostile) {
    constexpr index_t B = 3;
    gcl::Rng rng = gcl::Rng(seed).split(step);
    Batch b{Tensor<float>(Shape{2 * B, 1, 8, 8}), Tensor<std::int64_t>(Shape{2, 2 * B})};
    const bool zero = hostile && step % 7 == 3;
    if (!zero) gcl::fill_normal(b.images.view(), rng);
    for (index_t i = 0; i < B; ++i) {
        std::int64_t a = static_cast<std::int64_t>(rng.below(2)), c = static_cast<std::int64_t>(rng.below(3));
        if (hostile && step % 5 == 1) a = i;    // no positives under label 0
        if (hostile && step % 6 == 2) c = -1;   // label 1 unknown everywhere
        b.meta(0, i) = b.meta(0, i + B) = a;
        b.meta(1, i) = b.meta(1, i + B) = c;
    }
    return b;
}

struct Run {
    gcl::nn::ParameterArena<float> arena;
    gcl::nn::PretrainModel<float> model;
    gcl::train::GclObjective<float> objective;
    gcl::optim::SGD<float> sgd;
    explicit Run(std::uint64_t model_seed = 3)
        : model(arena, tiny_model(), model_seed),
          objective(model, arena,
                    {.mitigation = gcl::train::Mitigation::parameters, .pixel_samples = 4, .seed = 11}),
          sgd({.learning_rate = 0.05, .momentum = 0.9}) {}

    gcl::train::GclStepReport step(const Batch& b, std::uint64_t s) {
        const gcl::train::GclStepReport r = objective.gradient(b.images.cview(), b.meta.cview(), s);
        sgd.step(arena);
        return r;
    }
};

inline std::vector<float> parameters(const gcl::nn::ParameterArena<float>& arena) {
    const auto v = arena.flat_values();
    std::vector<float> out(static_cast<std::size_t>(v.numel()));
    for (index_t i = 0; i < v.numel(); ++i) out[static_cast<std::size_t>(i)] = v(i);
    return out;
}

// FNV-1a over the bytes of the parameters: equal only when every bit is.
inline std::uint64_t checksum(const std::vector<float>& values) {
    std::uint64_t h = 1469598103934665603ull;
    for (float v : values) {
        unsigned char bytes[sizeof(float)];
        std::memcpy(bytes, &v, sizeof(float));
        for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
    }
    return h;
}

}  // namespace robustness
