#pragma once
// nn::UNetDecoder: the expanding half of a U-Net. From the bottleneck up, level l = depth-1..0:
// a 2x2, stride-2 transposed convolution "up<l>" (width(l+1) -> width(l) channels) doubles the
// resolution, the result is concatenated after the encoder's skip l along the channels
// ([skip, up]), and a ConvBlock "block<l>" (2 width(l) -> width(l)) follows; a 1x1 convolution
// "head" (with bias) maps width(0) channels to one logit per class.
//
//   nn::UNetDecoder<float> decoder(scope.child("decoder"), {.depth = 4, .base_width = 32, .classes = 4});
//   auto logits = decoder.forward(encoder.bottleneck(), encoder.skips());   // [N, classes, H, W]
//   auto d_bottleneck = decoder.backward(d_logits);
//   decoder.skip_gradients()                                  // one per skip, for the encoder
#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "gcl/core/tensor.hpp"
#include "gcl/nn/conv2d.hpp"
#include "gcl/nn/conv_block.hpp"
#include "gcl/nn/conv_transpose2d.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/nn/unet_encoder.hpp"
#include "gcl/ops/concat.hpp"

namespace gcl::nn {

struct UNetDecoderOptions {
    int depth = 4;            // must match the encoder's
    index_t base_width = 32;  // must match the encoder's
    index_t classes = 2;      // output channels of the head
    double negative_slope = 0.01;
    bool conv_bias = false;  // of the blocks' convolutions (the up-sampling and the head have one)
    double bn_momentum = 0.1;
    double bn_eps = 1e-5;

    index_t width(int level) const { return base_width << level; }
};

template <class T, class D = cpu>
class UNetDecoder {
public:
    using value_type = T;
    using device_type = D;

    UNetDecoder(const Scope<T, D>& scope, const UNetDecoderOptions& options)
        : name_(scope.prefix()), options_(options) {
        check(options.classes > 0 && options.base_width > 0 && options.depth >= 0 && options.depth <= 16,
              "nn::UNetDecoder", "module", detail::quoted(name_),
              " needs positive classes and base width and a depth in [0, 16], got ", options.classes,
              " classes, base width ", options.base_width, ", depth ", options.depth);
        const auto d = static_cast<std::size_t>(options.depth);
        ups_.reserve(d);
        blocks_.reserve(d);
        // Registered in data-flow order (deepest level first, the head last), stored by level.
        for (int l = options.depth - 1; l >= 0; --l) {
            ups_.emplace_back(scope.child(detail::numbered("up", l)),
                              ConvTranspose2dOptions{.in_channels = options.width(l + 1),
                                                     .out_channels = options.width(l),
                                                     .kernel = {2, 2},
                                                     .stride = {2, 2},
                                                     .bias = true,
                                                     .weight_init = Init::kaiming_normal(options.negative_slope)});
            blocks_.emplace_back(scope.child(detail::numbered("block", l)),
                                 ConvBlockOptions{.in_channels = 2 * options.width(l),
                                                  .out_channels = options.width(l),
                                                  .negative_slope = options.negative_slope,
                                                  .conv_bias = options.conv_bias,
                                                  .bn_momentum = options.bn_momentum,
                                                  .bn_eps = options.bn_eps});
        }
        std::reverse(ups_.begin(), ups_.end());
        std::reverse(blocks_.begin(), blocks_.end());
        head_.emplace(scope.child("head"), Conv2dOptions{.in_channels = options.base_width,
                                                         .out_channels = options.classes,
                                                         .kernel = {1, 1},
                                                         .bias = true,
                                                         .weight_init = Init::xavier_uniform()});
        merged_.resize(d);
        d_skips_.resize(d);
        d_ups_.resize(d);
        d_skip_views_.resize(d);
    }

    int depth() const { return options_.depth; }

    // The logits' shape for a bottleneck of shape `bottleneck` (the skips must match it).
    Shape output_shape(const Shape& bottleneck) const {
        detail::require_image("nn::UNetDecoder", name_, bottleneck, options_.width(depth()));
        Shape s = bottleneck;
        for (int l = depth() - 1; l >= 0; --l) s = ups_[l].output_shape(s);
        return head_->output_shape(Shape{s[0], options_.base_width, s[2], s[3]});
    }

    // Logits from the bottleneck and the encoder's skips (level order, skip l at level l).
    ConstView<T, D> forward(ConstView<T, D> bottleneck, std::span<const ConstView<T, D>> skips) {
        constexpr std::string_view op = "nn::UNetDecoder::forward";
        detail::require_image(op, name_, bottleneck.shape(), options_.width(depth()));
        check(skips.size() == static_cast<std::size_t>(depth()), op, "module", detail::quoted(name_), " has depth ",
              depth(), " but got ", skips.size(), " skips");
        ConstView<T, D> h = bottleneck;
        for (int l = depth() - 1; l >= 0; --l) {
            const ConstView<T, D> up = ups_[l].forward(h);
            const Shape& s = skips[l].shape();
            if (s.rank() != 4 || s[0] != up.dim(0) || s[1] != options_.width(l) || s[2] != up.dim(2) ||
                s[3] != up.dim(3))
                fail(op, "module", detail::quoted(name_), ": skip ", l, " has shape ", s, " but level ", l, " needs [",
                     up.dim(0), ", ", options_.width(l), ", ", up.dim(2), ", ", up.dim(3),
                     "] (the input's height and width must be divisible by 2^depth = ", index_t{1} << depth(), ")");
            merged_[l].resize(Shape{s[0], 2 * s[1], s[2], s[3]});
            ops::concat({skips[l], up}, merged_[l].view(), 1);
            h = blocks_[l].forward(merged_[l].cview());
        }
        forward_done_ = true;
        return head_->forward(h);
    }

    // Returns the bottleneck's gradient; the skips' gradients are in skip_gradients().
    ConstView<T, D> backward(ConstView<T, D> d_logits) {
        constexpr std::string_view op = "nn::UNetDecoder::backward";
        detail::require_forward(forward_done_, op, name_);
        ConstView<T, D> g = head_->backward(d_logits);
        for (int l = 0; l < depth(); ++l) {
            g = blocks_[l].backward(g);
            const Shape& m = merged_[l].shape();
            const Shape half{m[0], m[1] / 2, m[2], m[3]};
            d_skips_[l].resize(half);
            d_ups_[l].resize(half);
            ops::split(g, {d_skips_[l].view(), d_ups_[l].view()}, 1);
            d_skip_views_[l] = d_skips_[l].cview();
            g = ups_[l].backward(d_ups_[l].cview());
        }
        return g;
    }

    // The skips' gradients from the last backward call, in level order.
    std::span<const ConstView<T, D>> skip_gradients() const { return d_skip_views_; }

    void set_training(bool training) {
        training_ = training;
        for (auto& u : ups_) u.set_training(training);
        for (auto& b : blocks_) b.set_training(training);
        head_->set_training(training);
    }
    bool training() const { return training_; }

    ConvTranspose2d<T, D>& up(int level) { return ups_.at(static_cast<std::size_t>(level)); }
    ConvBlock<T, D>& block(int level) { return blocks_.at(static_cast<std::size_t>(level)); }
    Conv2d<T, D>& head() { return *head_; }
    const UNetDecoderOptions& options() const { return options_; }
    const std::string& name() const { return name_; }

private:
    std::string name_;
    UNetDecoderOptions options_;
    std::vector<ConvTranspose2d<T, D>> ups_;
    std::vector<ConvBlock<T, D>> blocks_;
    std::optional<Conv2d<T, D>> head_;  // constructed last: registered after the levels
    std::vector<Tensor<T, D>> merged_, d_skips_, d_ups_;
    std::vector<ConstView<T, D>> d_skip_views_;
    bool training_ = true;
    bool forward_done_ = false;
};

}  // namespace gcl::nn
