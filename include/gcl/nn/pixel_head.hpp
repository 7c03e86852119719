#pragma once
// nn::PixelHead: projects a feature map to a unit-length embedding per location, for pixel-wise
// contrast: 1x1 convolution -> ReLU -> 1x1 convolution -> L2 normalisation over the channels.
//
//   nn::PixelHead<float> head(scope.child("pixel_head"), {.in_channels = 512, .hidden_channels = 256,
//                                                         .out_channels = 128});
//   auto e = head.forward(f);        // f [N, 512, h, w] -> e [N, 128, h, w], ||e[n, :, i, j]|| = 1
//
// Names: "<scope>.conv1.{weight, bias}", "<scope>.conv2.{weight, bias}".
#include <string>

#include "gcl/nn/activation.hpp"
#include "gcl/nn/conv2d.hpp"
#include "gcl/nn/l2_normalize.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/nn/sequential.hpp"

namespace gcl::nn {

struct PixelHeadOptions {
    index_t in_channels = 0;
    index_t hidden_channels = 256;
    index_t out_channels = 128;
    double eps = ops::default_normalize_eps;  // of the L2 normalisation
};

template <class T>
class PixelHead {
public:
    using value_type = T;
    using Stack = Sequential<Conv2d<T>, ReLU<T>, Conv2d<T>, L2Normalize<T>>;

    PixelHead(const Scope<T>& scope, const PixelHeadOptions& options)
        : name_(scope.prefix()),
          options_(options),
          // Braces: the layers are built (and registered) left to right.
          stack_{Conv2d<T>(
                     scope.child("conv1"),
                     {.in_channels = options.in_channels, .out_channels = options.hidden_channels, .kernel = {1, 1}}),
                 ReLU<T>(),
                 Conv2d<T>(scope.child("conv2"), {.in_channels = options.hidden_channels,
                                                  .out_channels = options.out_channels,
                                                  .kernel = {1, 1},
                                                  .weight_init = Init::xavier_uniform()}),
                 L2Normalize<T>({.dim = 1, .eps = options.eps})} {}

    Shape output_shape(const Shape& x) const { return stack_.output_shape(x); }
    ConstView<T> forward(ConstView<T> x) { return stack_.forward(x); }
    ConstView<T> backward(ConstView<T> dy) { return stack_.backward(dy); }
    void set_training(bool training) { stack_.set_training(training); }
    bool training() const { return stack_.training(); }

    const PixelHeadOptions& options() const { return options_; }
    const std::string& name() const { return name_; }
    Stack& layers() { return stack_; }

private:
    std::string name_;
    PixelHeadOptions options_;
    Stack stack_;
};

}  // namespace gcl::nn
