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

#include "gcl/nn/batch_norm2d.hpp"
#include "gcl/nn/conv2d.hpp"
#include "gcl/nn/detail/projection_mlp.hpp"
#include "gcl/nn/scope.hpp"

namespace gcl::nn {

struct PixelHeadOptions {
    index_t in_channels = 0;
    index_t hidden_channels = 256;
    index_t out_channels = 128;
    double eps = ops::default_normalize_eps;  // of the L2 normalisation
};

template <class T, class D = cpu>
class PixelHead {
public:
    using value_type = T;
    using device_type = D;

    PixelHead(const Scope<T, D>& scope, const PixelHeadOptions& options)
        : name_(scope.prefix()),
          options_(options),
          projection_(scope, "conv1",
                      {.in_channels = options.in_channels, .out_channels = options.hidden_channels, .kernel = {1, 1}},
                      "conv2",
                      {.in_channels = options.hidden_channels,
                       .out_channels = options.out_channels,
                       .kernel = {1, 1},
                       .weight_init = Init::xavier_uniform()},
                      options.hidden_channels, options.out_channels, HeadNorm::none, options.eps) {}

    Shape output_shape(const Shape& x) const { return projection_.output_shape(x); }
    ConstView<T, D> forward(ConstView<T, D> x) { return projection_.forward(x); }
    ConstView<T, D> backward(ConstView<T, D> dy) { return projection_.backward(dy); }
    void set_training(bool training) { projection_.set_training(training); }
    bool training() const { return projection_.training(); }

    const PixelHeadOptions& options() const { return options_; }
    const std::string& name() const { return name_; }
    Conv2d<T, D>& conv1() { return projection_.first(); }
    Conv2d<T, D>& conv2() { return projection_.second(); }

private:
    std::string name_;
    PixelHeadOptions options_;
    detail::ProjectionMlp<Conv2d<T, D>, BatchNorm2d<T, D>> projection_;
};

}  // namespace gcl::nn
