#pragma once
// nn::ConvBlock: the U-Net's unit, (3x3 convolution -> batch norm -> LeakyReLU) twice, keeping
// the spatial size: [N, in, H, W] -> [N, out, H, W].
//
//   nn::ConvBlock<float> block(scope.child("block0"), {.in_channels = 1, .out_channels = 32});
//
// Names under the block's scope: conv1.weight, bn1.{weight, bias, running_mean, running_var},
// conv2.weight, bn2.* (and conv1.bias, conv2.bias with conv_bias = true). The convolutions have
// no bias by default: the batch norm that follows each of them cancels any bias exactly.
#include <string>

#include "gcl/nn/activation.hpp"
#include "gcl/nn/batch_norm2d.hpp"
#include "gcl/nn/conv2d.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/nn/sequential.hpp"

namespace gcl::nn {

struct ConvBlockOptions {
    index_t in_channels = 0;
    index_t out_channels = 0;
    double negative_slope = 0.01;  // of the LeakyReLUs (0 gives ReLU)
    bool conv_bias = false;
    double bn_momentum = 0.1;
    double bn_eps = 1e-5;
};

template <class T, class D = cpu>
class ConvBlock {
public:
    using value_type = T;
    using device_type = D;
    using Stack = Sequential<Conv2d<T, D>, BatchNorm2d<T, D>, LeakyReLU<T, D>, Conv2d<T, D>, BatchNorm2d<T, D>,
                             LeakyReLU<T, D>>;

    ConvBlock(const Scope<T, D>& scope, const ConvBlockOptions& options)
        : name_(scope.prefix()), options_(options), stack_(build(scope, options)) {}

    Shape output_shape(const Shape& x) const { return stack_.output_shape(x); }
    ConstView<T, D> forward(ConstView<T, D> x) { return stack_.forward(x); }
    ConstView<T, D> backward(ConstView<T, D> dy) { return stack_.backward(dy); }
    ConstView<T, D> backward_stacked(ConstView<T, D> dy, index_t passes) { return stack_.backward_stacked(dy, passes); }
    void set_training(bool training) { stack_.set_training(training); }
    bool training() const { return stack_.training(); }
    // Whether backward computes dL/dx (Conv2d::set_input_gradient on the first convolution).
    void set_input_gradient(bool on) { stack_.template get<0>().set_input_gradient(on); }
    bool input_gradient() const { return stack_.template get<0>().input_gradient(); }

    const ConvBlockOptions& options() const { return options_; }
    const std::string& name() const { return name_; }
    Stack& layers() { return stack_; }
    const Stack& layers() const { return stack_; }

private:
    static Stack build(const Scope<T, D>& scope, const ConvBlockOptions& o) {
        const Init init = Init::kaiming_normal(o.negative_slope);
        const auto conv = [&](const char* name, index_t in) {
            return Conv2d<T, D>(scope.child(name), {.in_channels = in,
                                                 .out_channels = o.out_channels,
                                                 .kernel = {3, 3},
                                                 .padding = {1, 1},
                                                 .bias = o.conv_bias,
                                                 .weight_init = init});
        };
        const auto bn = [&](const char* name) {
            return BatchNorm2d<T, D>(scope.child(name),
                                  {.channels = o.out_channels, .momentum = o.bn_momentum, .eps = o.bn_eps});
        };
        // Braces: the layers are built (and registered) left to right.
        return Stack{conv("conv1", o.in_channels),  bn("bn1"), LeakyReLU<T, D>(o.negative_slope),
                     conv("conv2", o.out_channels), bn("bn2"), LeakyReLU<T, D>(o.negative_slope)};
    }

    std::string name_;
    ConvBlockOptions options_;
    Stack stack_;
};

}  // namespace gcl::nn
