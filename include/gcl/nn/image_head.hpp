#pragma once
// nn::ImageHead: projects a feature map to one unit-length embedding per image, for image-wise
// contrast: global average pooling -> Linear -> ReLU -> Linear -> L2 normalisation.
//
//   nn::ImageHead<float> head(scope.child("image_head"), {.in_channels = 512, .hidden_features = 256,
//                                                         .out_features = 128});
//   auto e = head.forward(f);        // f [N, 512, h, w] -> e [N, 128], ||e[n]|| = 1
//
// Names: "<scope>.fc1.{weight, bias}", "<scope>.fc2.{weight, bias}".
#include <string>

#include "gcl/nn/activation.hpp"
#include "gcl/nn/global_avg_pool.hpp"
#include "gcl/nn/l2_normalize.hpp"
#include "gcl/nn/linear.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/nn/sequential.hpp"

namespace gcl::nn {

struct ImageHeadOptions {
    index_t in_channels = 0;
    index_t hidden_features = 256;
    index_t out_features = 128;
    double eps = ops::default_normalize_eps;  // of the L2 normalisation
};

template <class T>
class ImageHead {
public:
    using value_type = T;
    using Stack = Sequential<GlobalAvgPool<T>, Linear<T>, ReLU<T>, Linear<T>, L2Normalize<T>>;

    ImageHead(const Scope<T>& scope, const ImageHeadOptions& options)
        : name_(scope.prefix()),
          options_(options),
          // Braces: the layers are built (and registered) left to right.
          stack_{GlobalAvgPool<T>(),
                 Linear<T>(scope.child("fc1"),
                           {.in_features = options.in_channels, .out_features = options.hidden_features}),
                 ReLU<T>(),
                 Linear<T>(scope.child("fc2"), {.in_features = options.hidden_features,
                                                .out_features = options.out_features,
                                                .weight_init = Init::xavier_uniform()}),
                 L2Normalize<T>({.dim = 1, .eps = options.eps})} {}

    Shape output_shape(const Shape& x) const { return stack_.output_shape(x); }
    ConstView<T> forward(ConstView<T> x) { return stack_.forward(x); }
    ConstView<T> backward(ConstView<T> dy) { return stack_.backward(dy); }
    void set_training(bool training) { stack_.set_training(training); }
    bool training() const { return stack_.training(); }

    const ImageHeadOptions& options() const { return options_; }
    const std::string& name() const { return name_; }
    Stack& layers() { return stack_; }

private:
    std::string name_;
    ImageHeadOptions options_;
    Stack stack_;
};

}  // namespace gcl::nn
