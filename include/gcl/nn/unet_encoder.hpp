#pragma once
// nn::UNetEncoder: the contracting half of a U-Net. Level l (0..depth) is a ConvBlock with
// base_width * 2^l output channels; a 2x2 max pool halves the resolution between levels.
//
//   nn::UNetEncoder<float> encoder(scope.child("encoder"), {.in_channels = 1, .depth = 4, .base_width = 32});
//   auto f = encoder.forward(x);         // x [N, 1, H, W] -> bottleneck [N, 512, H/16, W/16]
//   encoder.skip(l)                      // level l's features [N, 32 * 2^l, H/2^l, W/2^l], l < depth
//   auto dx = encoder.backward(df);                 // from the bottleneck's gradient alone
//   auto dx = encoder.backward(df, d_skips);        // plus one gradient per skip (the U-Net)
//
// Names: "<scope>.block<l>.conv1.weight", "<scope>.block<l>.bn1.running_mean", ... (ConvBlock).
// With the bottleneck as its output the encoder is itself a layer (layer.hpp).
#include <span>
#include <string>
#include <vector>

#include "gcl/core/tensor.hpp"
#include "gcl/nn/conv_block.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/nn/max_pool2d.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/ops/elementwise.hpp"

namespace gcl::nn {

struct UNetEncoderOptions {
    index_t in_channels = 1;
    int depth = 4;            // number of down-samplings; depth + 1 blocks
    index_t base_width = 32;  // output channels of block 0; doubled at every level
    double negative_slope = 0.01;
    bool conv_bias = false;
    double bn_momentum = 0.1;
    double bn_eps = 1e-5;

    // Output channels of level l's block.
    index_t width(int level) const { return base_width << level; }
};

namespace detail {
inline std::string numbered(const char* prefix, int k) {
    std::string s(prefix);
    s.append(std::to_string(k));
    return s;
}
}  // namespace detail

template <class T, class D = cpu>
class UNetEncoder {
public:
    using value_type = T;
    using device_type = D;

    UNetEncoder(const Scope<T, D>& scope, const UNetEncoderOptions& options)
        : name_(scope.prefix()), options_(options) {
        check(options.in_channels > 0 && options.base_width > 0 && options.depth >= 0 && options.depth <= 16,
              "nn::UNetEncoder", "module", detail::quoted(name_),
              " needs positive input channels and base width and a depth in [0, 16], got ", options.in_channels,
              " input channels, base width ", options.base_width, ", depth ", options.depth);
        blocks_.reserve(static_cast<std::size_t>(options.depth) + 1);
        pools_.resize(static_cast<std::size_t>(options.depth));
        for (int l = 0; l <= options.depth; ++l)
            blocks_.emplace_back(scope.child(detail::numbered("block", l)),
                                 ConvBlockOptions{.in_channels = l == 0 ? options.in_channels : options.width(l - 1),
                                                  .out_channels = options.width(l),
                                                  .negative_slope = options.negative_slope,
                                                  .conv_bias = options.conv_bias,
                                                  .bn_momentum = options.bn_momentum,
                                                  .bn_eps = options.bn_eps});
        skips_.resize(pools_.size());
        grad_sums_.resize(pools_.size());
    }

    int depth() const { return options_.depth; }

    // The bottleneck's shape for an input x.
    Shape output_shape(const Shape& x) const {
        Shape s = x;
        for (int l = 0; l < depth(); ++l) s = pools_[l].output_shape(blocks_[l].output_shape(s));
        return blocks_[depth()].output_shape(s);
    }

    // Level l's skip features' shape for an input x.
    Shape skip_shape(const Shape& x, int level) const {
        check_level("nn::UNetEncoder::skip_shape", level);
        Shape s = x;
        for (int l = 0; l < level; ++l) s = pools_[l].output_shape(blocks_[l].output_shape(s));
        return blocks_[level].output_shape(s);
    }

    // Runs every level; returns the bottleneck. The skips stay available until the next forward.
    ConstView<T, D> forward(ConstView<T, D> x) {
        detail::require_image("nn::UNetEncoder::forward", name_, x.shape(), options_.in_channels);
        ConstView<T, D> h = x;
        for (int l = 0; l < depth(); ++l) {
            skips_[l] = blocks_[l].forward(h);
            h = pools_[l].forward(skips_[l]);
        }
        bottleneck_ = blocks_[depth()].forward(h);
        forward_done_ = true;
        return bottleneck_;
    }

    // Backward from the bottleneck's gradient alone (the skips receive none): pre-training.
    ConstView<T, D> backward(ConstView<T, D> d_bottleneck) { return backward(d_bottleneck, {}); }

    // Backward from the bottleneck's gradient and one gradient per skip (level order), which
    // are added to the gradients that reach each level from below.
    ConstView<T, D> backward(ConstView<T, D> d_bottleneck, std::span<const ConstView<T, D>> d_skips) {
        constexpr std::string_view op = "nn::UNetEncoder::backward";
        detail::require_forward(forward_done_, op, name_);
        detail::require_gradient_shape(op, name_, d_bottleneck.shape(), bottleneck_.shape());
        check(d_skips.empty() || d_skips.size() == skips_.size(), op, "module", detail::quoted(name_), " has ",
              skips_.size(), " skips but got ", d_skips.size(), " skip gradients");
        ConstView<T, D> g = blocks_[depth()].backward(d_bottleneck);
        for (int l = depth() - 1; l >= 0; --l) {
            g = pools_[l].backward(g);
            if (!d_skips.empty()) {
                if (!(d_skips[l].shape() == skips_[l].shape()))
                    fail(op, "module", detail::quoted(name_), ": the gradient of skip ", l, " has shape ",
                         d_skips[l].shape(), " but the skip has shape ", skips_[l].shape());
                grad_sums_[l].resize(g.shape());
                ops::add(g, d_skips[l], grad_sums_[l].view());
                g = grad_sums_[l].cview();
            }
            g = blocks_[l].backward(g);
        }
        return g;
    }

    // K backward passes from K bottleneck gradients at once (layer.hpp; the skips receive none):
    // d_bottleneck [K N, C, h, w] stacks them, the result stacks the K input gradients, and pass
    // k's parameter gradients go to the arena's grad_target(h, k) (begin_stacked_backward).
    ConstView<T, D> backward_stacked(ConstView<T, D> d_bottleneck, index_t passes) {
        constexpr std::string_view op = "nn::UNetEncoder::backward_stacked";
        detail::require_forward(forward_done_, op, name_);
        detail::require_stacked_gradient_shape(op, name_, d_bottleneck.shape(), bottleneck_.shape(), passes);
        ConstView<T, D> g = blocks_[depth()].backward_stacked(d_bottleneck, passes);
        for (int l = depth() - 1; l >= 0; --l)
            g = blocks_[l].backward_stacked(pools_[l].backward_stacked(g, passes), passes);
        return g;
    }

    void set_training(bool training) {
        training_ = training;
        for (auto& b : blocks_) b.set_training(training);
        for (auto& p : pools_) p.set_training(training);
    }
    bool training() const { return training_; }

    // Whether backward returns dL/dx (the default); off, it returns an empty view and skips the
    // first convolution's data gradient (Conv2d::set_input_gradient).
    void set_input_gradient(bool on) { blocks_.front().set_input_gradient(on); }
    bool input_gradient() const { return blocks_.front().input_gradient(); }

    // Level l's features from the last forward call (l < depth).
    ConstView<T, D> skip(int level) const {
        check_level("nn::UNetEncoder::skip", level);
        return skips_[level];
    }
    std::span<const ConstView<T, D>> skips() const { return skips_; }
    // The deepest features from the last forward call (the encoder's output).
    ConstView<T, D> bottleneck() const { return bottleneck_; }

    ConvBlock<T, D>& block(int level) { return blocks_.at(static_cast<std::size_t>(level)); }
    const ConvBlock<T, D>& block(int level) const { return blocks_.at(static_cast<std::size_t>(level)); }
    const UNetEncoderOptions& options() const { return options_; }
    const std::string& name() const { return name_; }

private:
    void check_level(std::string_view op, int level) const {
        check(level >= 0 && level < depth(), op, "module", detail::quoted(name_), " has skip levels 0 to ", depth() - 1,
              ", got ", level);
    }

    std::string name_;
    UNetEncoderOptions options_;
    std::vector<ConvBlock<T, D>> blocks_;
    std::vector<MaxPool2d<T, D>> pools_;
    std::vector<ConstView<T, D>> skips_;
    std::vector<Tensor<T, D>> grad_sums_;
    ConstView<T, D> bottleneck_;
    bool training_ = true;
    bool forward_done_ = false;
};

}  // namespace gcl::nn
