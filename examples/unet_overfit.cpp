// Trains a small U-Net on a few synthetic images (discs and rings of the same brightness on a
// noisy background: 3 classes, background included) until it segments them, and prints the
// mean foreground Dice in evaluation mode. The U-Net must tell the shapes apart, not the
// intensities.
//
//   ./unet_overfit [iterations]        (default 100)
//
// The last line is "final_dice <value>".
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "gcl/gcl.hpp"
#include "gcl/metrics/segmentation_metrics.hpp"

namespace {

using gcl::index_t;
using gcl::Tensor;

constexpr index_t kImages = 8, kSize = 32, kClasses = 3;

// Images [N, 1, S, S] and labels [N, S, S]: one disc (class 1) and one ring (class 2) per image.
void make_data(Tensor<float>& images, Tensor<std::int64_t>& labels, gcl::Rng& rng) {
    images.resize({kImages, 1, kSize, kSize});
    labels.resize({kImages, kSize, kSize});
    for (index_t n = 0; n < kImages; ++n) {
        // Centres in opposite halves so that the shapes never touch.
        const bool disc_left = rng.uniform() < 0.5;
        const double disc_r = rng.uniform(4, 7), ring_r = rng.uniform(6, 8), ring_w = rng.uniform(2, 3);
        const double dx = disc_left ? rng.uniform(8, 10) : rng.uniform(22, 24), dy = rng.uniform(8, 24);
        const double rx = disc_left ? rng.uniform(22, 24) : rng.uniform(8, 10), ry = rng.uniform(8, 24);
        for (index_t i = 0; i < kSize; ++i)
            for (index_t j = 0; j < kSize; ++j) {
                const double d_disc = std::hypot(static_cast<double>(i) - dy, static_cast<double>(j) - dx);
                const double d_ring = std::hypot(static_cast<double>(i) - ry, static_cast<double>(j) - rx);
                std::int64_t label = 0;
                if (d_disc <= disc_r) label = 1;
                if (d_ring <= ring_r && d_ring >= ring_r - ring_w) label = 2;
                labels(n, i, j) = label;
                images(n, 0, i, j) = static_cast<float>((label > 0 ? 1.0 : 0.0) + rng.normal(0, 0.15));
            }
    }
}

// Mean cross-entropy over every pixel, and its gradient with respect to the logits.
double cross_entropy(gcl::ConstView<float> logits, const Tensor<std::int64_t>& labels, Tensor<float>& dlogits) {
    const index_t N = logits.dim(0), C = logits.dim(1), HW = logits.dim(2) * logits.dim(3);
    Tensor<float> log_p(logits.shape());
    gcl::ops::log_softmax_forward(logits, log_p.view(), 1);
    dlogits.resize(logits.shape());
    const double count = static_cast<double>(N * HW);
    double loss = 0;
    for (index_t n = 0; n < N; ++n)
        for (index_t c = 0; c < C; ++c)
            for (index_t i = 0; i < HW; ++i) {
                const index_t k = (n * C + c) * HW + i;
                const bool target = labels.data()[n * HW + i] == c;
                if (target) loss -= log_p.data()[k];
                dlogits.data()[k] = static_cast<float>((std::exp(log_p.data()[k]) - (target ? 1.0 : 0.0)) / count);
            }
    return loss / count;
}

// Dice of the arg-max prediction for each foreground class, averaged over the classes that occur
// (nnU-Net's convention).
double mean_foreground_dice(gcl::ConstView<float> logits, const Tensor<std::int64_t>& labels) {
    const gcl::Shape maps{logits.dim(0), logits.dim(2), logits.dim(3)};
    Tensor<float> best(maps);
    Tensor<gcl::index_t> prediction(maps);
    gcl::ops::max(logits, best.view(), prediction.view(), 1);
    return gcl::metrics::mean_foreground_dice(
        gcl::metrics::dice_per_class<std::int64_t>(prediction.cview(), labels.cview(), kClasses));
}

}  // namespace

int main(int argc, char** argv) {
    int iterations = 100;
    if (argc > 1) {
        char* end = nullptr;
        const long value = std::strtol(argv[1], &end, 10);
        iterations = end != argv[1] && *end == '\0' && value >= 1 && value <= 1000000 ? static_cast<int>(value) : 0;
    }
    if (argc > 2 || iterations < 1) {
        std::fprintf(stderr, "usage: unet_overfit [iterations >= 1]\n");
        return 2;
    }
    const auto start = std::chrono::steady_clock::now();

    gcl::Rng rng(20230908);
    Tensor<float> images;
    Tensor<std::int64_t> labels;
    make_data(images, labels, rng);

    gcl::nn::ParameterArena<float> arena;
    gcl::nn::UNet<float> unet(arena, {.in_channels = 1, .classes = kClasses, .depth = 2, .base_width = 8}, /*seed=*/1);
    gcl::optim::Adam<float> adam({.learning_rate = 1e-2});
    std::printf("U-Net with %lld parameters, %lld images of %lldx%lld, %d iterations\n",
                static_cast<long long>(arena.size()), static_cast<long long>(kImages), static_cast<long long>(kSize),
                static_cast<long long>(kSize), iterations);

    Tensor<float> dlogits;
    for (int it = 0; it < iterations; ++it) {
        const auto logits = unet.forward(images.cview());
        const double loss = cross_entropy(logits, labels, dlogits);
        if (it % 25 == 0 || it == iterations - 1)
            std::printf("iteration %4d  loss %.4f  dice %.4f\n", it, loss, mean_foreground_dice(logits, labels));
        arena.begin_backward();
        unet.backward(dlogits.cview());
        adam.step(arena);
    }

    unet.set_training(false);  // batch norm with its running statistics
    const double dice = mean_foreground_dice(unet.forward(images.cview()), labels);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%.1f s\n", seconds);
    std::printf("final_dice %.4f\n", dice);
    return 0;
}
