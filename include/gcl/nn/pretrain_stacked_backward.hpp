#pragma once
// nn::PretrainStackedBackward: the K per-label backward passes of a PretrainModel after one
// forward (GradMitigator's parameter level) with one stacked pass through the encoder.
//
//   auto out = model.forward(x);
//   nn::PretrainStackedBackward<float> backward;              // keeps its workspace between steps
//   backward(model, arena, G.view(), d_image, d_pixel);       // G [K, P]; d_image [K, N, D]; d_pixel [K, N, C, h, w]
//   // row m of G == what arena.begin_backward(G, m, overwrite) + model.backward(d_image[m], d_pixel[m]) writes
//
// The heads (small: a pooled MLP and 1x1 convolutions on the bottleneck) run once per pass, each
// into row m; the K feature gradients are stacked [K N, C, h, w] and the encoder runs
// backward_stacked once: one im2col per image and layer for the K weight gradients, one
// data-gradient product with K times the columns. Every row equals the separate pass up to the
// summation order of those products (float: about 1e-6 relative).
#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/ops/elementwise.hpp"

namespace gcl::nn {

template <class T, class D = cpu>
class PretrainStackedBackward {
public:
    // Overwrites G [K, P] with the K passes' parameter gradients. d_image [K, N, D_img] and
    // d_pixel [K, N, D_pix, h, w] are the K losses' gradients with respect to the embeddings; an
    // empty view means no loss depends on that head. Returns dL_k/dx stacked [K N, C, H, W],
    // valid until the model's next backward call.
    ConstView<T, D> operator()(PretrainModel<T, D>& model, ParameterArena<T, D>& arena, TensorView<T, D> G,
                            ConstView<T, D> d_image, ConstView<T, D> d_pixel) {
        constexpr std::string_view op = "nn::PretrainStackedBackward";
        const bool image = present(d_image), pixel = present(d_pixel);
        check(image || pixel, op, "needs the gradient of at least one head; both are empty");
        check(G.rank() == 2 && G.dim(1) == arena.size(), op, "G must be [K, P] with P = ", arena.size(), ", got ",
              G.shape());
        const index_t K = G.dim(0);
        check(!image || (d_image.rank() == 3 && d_image.dim(0) == K), op, "d_image must be [K = ", K,
              ", N, D], got ", d_image.shape());
        check(!pixel || (d_pixel.rank() == 5 && d_pixel.dim(0) == K), op, "d_pixel must be [K = ", K,
              ", N, D, h, w], got ", d_pixel.shape());
        for (index_t k = 0; k < K; ++k) {
            arena.begin_backward(G, k, WriteMode::overwrite);
            ConstView<T, D> from_image, from_pixel;
            if (image) from_image = model.image_head().backward(d_image.select(0, k));
            if (pixel) from_pixel = model.pixel_head().backward(d_pixel.select(0, k));
            const ConstView<T, D> first = image ? from_image : from_pixel;
            if (k == 0) {
                Shape stacked = first.shape();
                stacked[0] *= K;
                d_features_.resize(stacked);
            }
            const TensorView<T, D> block = d_features_.view().narrow(0, k * first.dim(0), first.dim(0));
            if (image && pixel)
                ops::add(from_image, from_pixel, block);
            else
                ops::copy(first, block);
        }
        arena.begin_stacked_backward(G, WriteMode::accumulate);
        ConstView<T, D> dx;
        try {
            dx = model.encoder().backward_stacked(d_features_.cview(), K);
        } catch (...) {
            arena.end_backward();
            throw;
        }
        arena.end_backward();
        return dx;
    }

private:
    static bool present(const ConstView<T, D>& v) { return v.data() != nullptr && v.numel() > 0; }

    Tensor<T, D> d_features_;
};

}  // namespace gcl::nn
