// The pre-train / fine-tune hand-over with gcl::nn: an encoder with an image head and a pixel
// head, trained for a few steps with one loss per "meta label" (one forward, K backward passes
// into the rows of a K x P gradient matrix), then its encoder copied into a U-Net by name.
//
//   ./nn_pretrain_to_unet
//
// The losses are toy ones (pull each embedding towards a fixed prototype of its group under
// label m); the contrastive losses and the gradient surgery of GCL take their place in a real run.
#include <cmath>
#include <cstdio>
#include <vector>

#include "gcl/gcl.hpp"

namespace {

using gcl::index_t;
using gcl::Tensor;
namespace nn = gcl::nn;

// L_m = -mean_n <e_n, p_{group_m(n)}> over rows e_n of `e` [N, D] (or locations of [N, D, h, w]);
// writes dL_m/de into `grad` and returns L_m.
double prototype_loss(gcl::ConstView<float> e, const Tensor<float>& prototypes, const std::vector<int>& group,
                      Tensor<float>& grad) {
    const index_t N = e.dim(0), D = e.dim(1), locations = e.numel() / (N * D);
    grad.resize(e.shape());
    double loss = 0;
    const double scale = 1.0 / static_cast<double>(N * locations);
    for (index_t n = 0; n < N; ++n)
        for (index_t d = 0; d < D; ++d)
            for (index_t s = 0; s < locations; ++s) {
                const index_t k = (n * D + d) * locations + s;
                const float p = prototypes(group[static_cast<std::size_t>(n)], d);
                loss -= scale * e.data()[k] * p;
                grad.data()[k] = static_cast<float>(-scale * p);
            }
    return loss;
}

}  // namespace

int main() {
    gcl::Rng rng(7);
    const index_t N = 8, K = 2, D = 16;
    Tensor<float> x({N, 1, 32, 32});
    gcl::fill_normal<float>(x.view(), rng);
    // Two meta labels: "patient" (4 groups) and "position" (2 groups), with a prototype per group.
    const std::vector<std::vector<int>> groups = {{0, 0, 1, 1, 2, 2, 3, 3}, {0, 1, 0, 1, 0, 1, 0, 1}};
    Tensor<float> prototypes({4, D});
    gcl::fill_normal<float>(prototypes.view(), rng);
    gcl::ops::l2_normalize_forward(prototypes, prototypes.view(), 1);  // each loss then lies in [-1, 1]

    const nn::UNetEncoderOptions encoder{.in_channels = 1, .depth = 3, .base_width = 8};
    nn::ParameterArena<float> pretrain_arena;
    nn::PretrainModel<float> model(
        pretrain_arena, {.encoder = encoder, .image_hidden = 32, .image_out = D, .pixel_hidden = 32, .pixel_out = D},
        /*seed=*/1);
    gcl::optim::SGD<float> sgd({.learning_rate = 0.1, .momentum = 0.9});
    const index_t P = pretrain_arena.size();
    std::printf("pre-training model: %lld parameters\n", static_cast<long long>(P));

    Tensor<float> G({2 * K, P}), combined({P}), d_image, d_pixel;
    for (int step = 0; step < 10; ++step) {
        const auto out = model.forward(x.cview());
        double total = 0;
        for (index_t m = 0; m < K; ++m) {
            // Image-wise loss of label m into row m, pixel-wise loss of label m into row K + m.
            total += prototype_loss(out.image, prototypes, groups[m], d_image);
            pretrain_arena.begin_backward(G.view(), m, gcl::WriteMode::overwrite);
            model.backward(d_image.cview(), {});
            total += prototype_loss(out.pixel, prototypes, groups[m], d_pixel);
            pretrain_arena.begin_backward(G.view(), K + m, gcl::WriteMode::overwrite);
            model.backward({}, d_pixel.cview());
        }
        // GradMitigator would combine the rows of G here; this example adds them.
        combined.fill(0.0f);
        for (index_t r = 0; r < 2 * K; ++r) gcl::ops::axpy(1.0f, G.cview().select(0, r), combined.view());
        sgd.step(pretrain_arena, combined.cview());
        if (step % 3 == 0 || step == 9) std::printf("step %d  sum of the %lld losses %.4f\n", step, 2 * K, total);
    }

    // Fine-tuning starts from the pre-trained encoder.
    nn::ParameterArena<float> unet_arena;
    nn::UNet<float> unet(unet_arena, {.in_channels = 1, .classes = 4, .depth = 3, .base_width = 8}, /*seed=*/2);
    const auto report = nn::transfer_parameters(pretrain_arena, unet_arena);
    std::printf("transfer: %s\n", report.summary(3).c_str());
    const auto logits = unet.forward(x.cview());
    std::printf("U-Net logits %s\n", logits.shape().str().c_str());
    return report.copied.size() == 40 ? 0 : 1;
}
