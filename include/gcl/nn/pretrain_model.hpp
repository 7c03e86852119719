#pragma once
// nn::PretrainModel: the network of contrastive pre-training, a U-Net encoder with an image head
// and a pixel head on its bottleneck feature map F, all in one arena:
//
//   x -> encoder -> F -> image head -> image embeddings [N, D_img]        (unit length)
//                    \-> pixel head -> pixel embeddings [N, D_pix, h, w]  (unit length per location)
//
//   nn::ParameterArena<float> arena;
//   nn::PretrainModel<float> model(arena, {.encoder = {.in_channels = 1, .depth = 4, .base_width = 32}}, seed);
//   auto out = model.forward(x);                  // out.image, out.pixel, out.features
//   arena.begin_backward();
//   auto grads = model.backward(d_image, d_pixel);   // dL/d(embeddings) in, parameter gradients out
//   grads.features_from_image                     // dL/dF through the image head: GradFilter's guidance
//
// Names: "encoder.*" (the same as a UNet's encoder: transfer.hpp copies it into a U-Net),
// "image_head.*", "pixel_head.*".
//
// K backward passes after one forward (one per meta-label loss, GradMitigator's parameter level):
//   auto out = model.forward(x);
//   for (index_t m = 0; m < K; ++m) {
//       arena.begin_backward(G.view(), m, gcl::WriteMode::overwrite);   // row m of G [K, P]
//       model.backward(d_image[m], d_pixel[m]);
//   }
#include <cstdint>
#include <string>

#include "gcl/core/tensor.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/nn/image_head.hpp"
#include "gcl/nn/pixel_head.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/nn/unet_encoder.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/finite.hpp"

namespace gcl::nn {

struct PretrainModelOptions {
    UNetEncoderOptions encoder = {};
    index_t image_hidden = 256;  // image head: hidden and embedding sizes
    index_t image_out = 128;
    HeadNorm image_norm = HeadNorm::hidden_and_output;  // batch normalisation in the image head (image_head.hpp)
    index_t pixel_hidden = 256;  // pixel head: hidden and embedding channels
    index_t pixel_out = 128;
};

template <class T, class D = cpu>
class PretrainModel {
public:
    using value_type = T;
    using device_type = D;

    // What forward returns: views into the model, valid until its next forward call.
    struct Outputs {
        ConstView<T, D> image;     // [N, image_out], rows of unit length
        ConstView<T, D> pixel;     // [N, pixel_out, h, w], unit length along the channels
        ConstView<T, D> features;  // F = the encoder's bottleneck [N, C, h, w]
    };

    // What backward returns: views into the model, valid until its next backward call.
    struct Gradients {
        ConstView<T, D> input;                // dL/dx
        ConstView<T, D> features;             // dL/dF, both heads together
        ConstView<T, D> features_from_image;  // dL/dF through the image head (data() == nullptr without one)
        ConstView<T, D> features_from_pixel;  // dL/dF through the pixel head (data() == nullptr without one)
    };

    PretrainModel(const Scope<T, D>& scope, const PretrainModelOptions& options)
        : options_(options),
          encoder_(scope.child("encoder"), options.encoder),
          image_head_(scope.child("image_head"), {.in_channels = options.encoder.width(options.encoder.depth),
                                                  .hidden_features = options.image_hidden,
                                                  .out_features = options.image_out,
                                                  .batch_norm = options.image_norm}),
          pixel_head_(scope.child("pixel_head"), {.in_channels = options.encoder.width(options.encoder.depth),
                                                  .hidden_channels = options.pixel_hidden,
                                                  .out_channels = options.pixel_out}),
          arena_(&scope.arena()) {}
    PretrainModel(ParameterArena<T, D>& arena, const PretrainModelOptions& options, std::uint64_t seed)
        : PretrainModel(Scope<T, D>(arena, seed), options) {}

    Shape feature_shape(const Shape& x) const { return encoder_.output_shape(x); }
    Shape image_shape(const Shape& x) const { return image_head_.output_shape(feature_shape(x)); }
    Shape pixel_shape(const Shape& x) const { return pixel_head_.output_shape(feature_shape(x)); }

    // One forward pass through the encoder and both heads. The input must be finite and stay
    // unchanged until the last backward call of this forward.
    Outputs forward(ConstView<T, D> x) {
        ops::check_finite("nn::PretrainModel::forward", x, "the input");
        const ConstView<T, D> f = encoder_.forward(x);
        Outputs out;
        out.features = f;
        out.image = image_head_.forward(f);
        out.pixel = pixel_head_.forward(f);
        forward_done_ = true;
        return out;
    }

    // Backward from the gradients of the loss with respect to the embeddings; an absent view
    // (ConstView<T, D>{}, or any view without elements) means the loss does not depend on that head
    // (its parameters receive no gradient, which in overwrite mode leaves them at 0). Parameter
    // gradients are added into the arena's current gradient target. May be called any number of
    // times after one forward.
    Gradients backward(ConstView<T, D> d_image, ConstView<T, D> d_pixel) {
        Gradients g = heads_backward(d_image, d_pixel, "nn::PretrainModel::backward");
        g.input = encoder_.backward(g.features);
        return g;
    }

    // The two halves of backward, for mitigation at the encoder output: K passes through the heads
    // alone (one per meta label), the per-label dL/dF combined per sample, then one encoder pass.
    // heads_backward leaves `input` empty; its views are valid until the next heads_backward or
    // backward call, so copy them before the next label's pass.
    Gradients heads_backward(ConstView<T, D> d_image, ConstView<T, D> d_pixel) {
        return heads_backward(d_image, d_pixel, "nn::PretrainModel::heads_backward");
    }
    // dL/dx from dL/dF [N, C, h, w]: the encoder's parameter gradients go to the arena's target.
    ConstView<T, D> encoder_backward(ConstView<T, D> d_features) {
        detail::require_forward(forward_done_, "nn::PretrainModel::encoder_backward", {});
        return encoder_.backward(d_features);
    }

    // dL/dF through the image head alone, e.g. the guidance d(sum_m L_img^m)/dF that selects pixel
    // anchors before the pixel loss exists. Writes no gradient anywhere: the image head's parameter
    // gradients go to a scratch vector, and the arena's gradient target is left as it was. The
    // view is valid until the next backward or image_feature_gradient call.
    ConstView<T, D> image_feature_gradient(ConstView<T, D> d_image) {
        detail::require_forward(forward_done_, "nn::PretrainModel::image_feature_gradient", {});
        ParameterArena<T, D>& arena = *arena_;
        const bool in_pass = arena.in_backward();
        const TensorView<T, D> previous = in_pass ? arena.flat_grad_target() : TensorView<T, D>();
        const auto restore = [&] {
            if (in_pass)  // the same target again; accumulate, so that nothing in it is cleared
                arena.begin_backward(previous, WriteMode::accumulate);
            else
                arena.end_backward();
        };
        scratch_.resize(Shape{arena.size()});
        arena.begin_backward(scratch_.view(), WriteMode::accumulate);  // accumulate: no need to zero it
        ConstView<T, D> d_features;
        try {
            d_features = image_head_.backward(d_image);
        } catch (...) {
            restore();
            throw;
        }
        restore();
        return d_features;
    }

    void set_training(bool training) {
        encoder_.set_training(training);
        image_head_.set_training(training);
        pixel_head_.set_training(training);
    }
    bool training() const { return encoder_.training(); }
    // Whether backward computes dL/d(images) (the default; UNetEncoder::set_input_gradient).
    void set_input_gradient(bool on) { encoder_.set_input_gradient(on); }
    bool input_gradient() const { return encoder_.input_gradient(); }

    UNetEncoder<T, D>& encoder() { return encoder_; }
    const UNetEncoder<T, D>& encoder() const { return encoder_; }
    ImageHead<T, D>& image_head() { return image_head_; }
    PixelHead<T, D>& pixel_head() { return pixel_head_; }
    const PretrainModelOptions& options() const { return options_; }

private:
    Gradients heads_backward(ConstView<T, D> d_image, ConstView<T, D> d_pixel, std::string_view op) {
        detail::require_forward(forward_done_, op, {});
        const bool image = present(d_image), pixel = present(d_pixel);
        check(image || pixel, op, "needs the gradient of at least one head; both are empty");
        Gradients g;
        if (image) g.features_from_image = image_head_.backward(d_image);
        if (pixel) g.features_from_pixel = pixel_head_.backward(d_pixel);
        if (image && pixel) {
            d_features_.resize(g.features_from_image.shape());
            ops::add(g.features_from_image, g.features_from_pixel, d_features_.view());
            g.features = d_features_.cview();
        } else {
            g.features = image ? g.features_from_image : g.features_from_pixel;
        }
        return g;
    }

    static bool present(const ConstView<T, D>& v) { return v.data() != nullptr && v.numel() > 0; }

    PretrainModelOptions options_;
    UNetEncoder<T, D> encoder_;
    ImageHead<T, D> image_head_;
    PixelHead<T, D> pixel_head_;
    ParameterArena<T, D>* arena_;
    bool forward_done_ = false;
    Tensor<T, D> d_features_, scratch_;
};

}  // namespace gcl::nn
