#pragma once
// nn::UNet: encoder and decoder with skip connections (Ronneberger et al. 2015), 2-d, with
// conv3x3-BN-LeakyReLU blocks: [N, in_channels, H, W] -> logits [N, classes, H, W]. H and W must
// be divisible by 2^depth.
//
//   nn::ParameterArena<float> arena;
//   nn::UNet<float> unet(arena, {.in_channels = 1, .classes = 4, .depth = 4, .base_width = 32}, /*seed=*/1);
//   auto logits = unet.forward(x);
//   arena.begin_backward();
//   auto dx = unet.backward(d_logits);
//
// Names: "encoder.*" (UNetEncoder) and "decoder.*" (UNetDecoder). A pre-trained encoder with the
// same options transfers by name (transfer.hpp).
#include <cstdint>
#include <string>

#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/nn/unet_decoder.hpp"
#include "gcl/nn/unet_encoder.hpp"
#include "gcl/ops/finite.hpp"

namespace gcl::nn {

struct UNetOptions {
    index_t in_channels = 1;
    index_t classes = 2;
    int depth = 4;
    index_t base_width = 32;
    double negative_slope = 0.01;
    bool conv_bias = false;
    double bn_momentum = 0.1;
    double bn_eps = 1e-5;

    UNetEncoderOptions encoder() const {
        return {.in_channels = in_channels,
                .depth = depth,
                .base_width = base_width,
                .negative_slope = negative_slope,
                .conv_bias = conv_bias,
                .bn_momentum = bn_momentum,
                .bn_eps = bn_eps};
    }
    UNetDecoderOptions decoder() const {
        return {.depth = depth,
                .base_width = base_width,
                .classes = classes,
                .negative_slope = negative_slope,
                .conv_bias = conv_bias,
                .bn_momentum = bn_momentum,
                .bn_eps = bn_eps};
    }
};

template <class T, class D = cpu>
class UNet {
public:
    using value_type = T;
    using device_type = D;

    UNet(const Scope<T, D>& scope, const UNetOptions& options)
        : name_(scope.prefix()),
          options_(options),
          encoder_(scope.child("encoder"), options.encoder()),
          decoder_(scope.child("decoder"), options.decoder()) {}
    UNet(ParameterArena<T, D>& arena, const UNetOptions& options, std::uint64_t seed)
        : UNet(Scope<T, D>(arena, seed), options) {}

    Shape output_shape(const Shape& x) const {
        detail::require_image("nn::UNet", name_, x, options_.in_channels);
        const index_t multiple = index_t{1} << options_.depth;
        if (x[2] % multiple != 0 || x[3] % multiple != 0 || x[2] == 0 || x[3] == 0)
            fail("nn::UNet", "a U-Net of depth ", options_.depth, " needs a height and width divisible by ", multiple,
                 ", got input ", x);
        return decoder_.output_shape(encoder_.output_shape(x));
    }

    // Logits [N, classes, H, W]. The input must be finite.
    ConstView<T, D> forward(ConstView<T, D> x) {
        output_shape(x.shape());
        ops::check_finite("nn::UNet::forward", x, "the input");
        const ConstView<T, D> bottleneck = encoder_.forward(x);
        return decoder_.forward(bottleneck, encoder_.skips());
    }

    ConstView<T, D> backward(ConstView<T, D> d_logits) {
        const ConstView<T, D> d_bottleneck = decoder_.backward(d_logits);
        return encoder_.backward(d_bottleneck, decoder_.skip_gradients());
    }

    void set_training(bool training) {
        encoder_.set_training(training);
        decoder_.set_training(training);
    }
    bool training() const { return encoder_.training(); }
    // Whether backward computes dL/d(images) (the default; UNetEncoder::set_input_gradient).
    void set_input_gradient(bool on) { encoder_.set_input_gradient(on); }
    bool input_gradient() const { return encoder_.input_gradient(); }

    UNetEncoder<T, D>& encoder() { return encoder_; }
    const UNetEncoder<T, D>& encoder() const { return encoder_; }
    UNetDecoder<T, D>& decoder() { return decoder_; }
    const UNetDecoder<T, D>& decoder() const { return decoder_; }
    const UNetOptions& options() const { return options_; }

private:
    std::string name_;
    UNetOptions options_;
    UNetEncoder<T, D> encoder_;
    UNetDecoder<T, D> decoder_;
};

}  // namespace gcl::nn
