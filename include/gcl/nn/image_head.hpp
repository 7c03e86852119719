#pragma once
// nn::ImageHead: projects a feature map to one unit-length embedding per image, for image-wise
// contrast: global average pooling -> Linear -> [BatchNorm1d] -> ReLU -> Linear -> [BatchNorm1d]
// -> L2 normalisation.
//
//   nn::ImageHead<float> head(scope.child("image_head"), {.in_channels = 512, .hidden_features = 256,
//                                                         .out_features = 128});
//   auto e = head.forward(f);        // f [N, 512, h, w] -> e [N, 128], ||e[n]|| = 1
//
// Batch normalisation (the default, `HeadNorm::hidden_and_output`, as in SimCLR v2 and MoCo v3
// heads) centres every feature over the batch before the L2 normalisation, so the embeddings
// cannot all point the same way. Without it the averaged features of similar images start
// nearly equal, SupCon pulls them the rest of the way together, and a collapsed embedding is a
// fixed point of SupCon (zero gradient): docs/training.md has the measurements.
//
// Names: "<scope>.fc1.{weight, bias}", "<scope>.fc2.{weight, bias}", then with batch
// normalisation "<scope>.bn1.*" (hidden) and "<scope>.bn2.*" (output).
#include <optional>
#include <string>

#include "gcl/nn/activation.hpp"
#include "gcl/nn/batch_norm1d.hpp"
#include "gcl/nn/global_avg_pool.hpp"
#include "gcl/nn/l2_normalize.hpp"
#include "gcl/nn/linear.hpp"
#include "gcl/nn/scope.hpp"

namespace gcl::nn {

// Where a projection head batch-normalises (the pixel head reads the same option).
enum class HeadNorm {
    none,               // Linear -> ReLU -> Linear -> L2
    hidden,             // Linear -> BN -> ReLU -> Linear -> L2
    hidden_and_output,  // Linear -> BN -> ReLU -> Linear -> BN -> L2
};

inline const char* to_string(HeadNorm n) {
    switch (n) {
        case HeadNorm::none: return "none";
        case HeadNorm::hidden: return "hidden";
        case HeadNorm::hidden_and_output: return "hidden_and_output";
    }
    return "?";
}

struct ImageHeadOptions {
    index_t in_channels = 0;
    index_t hidden_features = 256;
    index_t out_features = 128;
    HeadNorm batch_norm = HeadNorm::hidden_and_output;
    double eps = ops::default_normalize_eps;  // of the L2 normalisation
};

template <class T>
class ImageHead {
public:
    using value_type = T;

    ImageHead(const Scope<T>& scope, const ImageHeadOptions& options)
        : name_(scope.prefix()),
          options_(options),
          fc1_(scope.child("fc1"), {.in_features = options.in_channels, .out_features = options.hidden_features}),
          fc2_(scope.child("fc2"), {.in_features = options.hidden_features,
                                    .out_features = options.out_features,
                                    .weight_init = Init::xavier_uniform()}),
          l2_({.dim = 1, .eps = options.eps}) {
        if (options.batch_norm != HeadNorm::none) bn1_.emplace(scope.child("bn1"), BatchNorm2dOptions{.channels = options.hidden_features});
        if (options.batch_norm == HeadNorm::hidden_and_output)
            bn2_.emplace(scope.child("bn2"), BatchNorm2dOptions{.channels = options.out_features});
    }

    Shape output_shape(const Shape& x) const { return fc2_.output_shape(fc1_.output_shape(gap_.output_shape(x))); }

    ConstView<T> forward(ConstView<T> x) {
        ConstView<T> h = fc1_.forward(gap_.forward(x));
        if (bn1_) h = bn1_->forward(h);
        h = fc2_.forward(relu_.forward(h));
        if (bn2_) h = bn2_->forward(h);
        return l2_.forward(h);
    }

    ConstView<T> backward(ConstView<T> dy) {
        ConstView<T> d = l2_.backward(dy);
        if (bn2_) d = bn2_->backward(d);
        d = relu_.backward(fc2_.backward(d));
        if (bn1_) d = bn1_->backward(d);
        return gap_.backward(fc1_.backward(d));
    }

    void set_training(bool training) {
        training_ = training;
        gap_.set_training(training);
        fc1_.set_training(training);
        relu_.set_training(training);
        fc2_.set_training(training);
        l2_.set_training(training);
        if (bn1_) bn1_->set_training(training);
        if (bn2_) bn2_->set_training(training);
    }
    bool training() const { return training_; }

    const ImageHeadOptions& options() const { return options_; }
    const std::string& name() const { return name_; }

private:
    std::string name_;
    ImageHeadOptions options_;
    GlobalAvgPool<T> gap_;
    Linear<T> fc1_;
    ReLU<T> relu_;
    Linear<T> fc2_;
    std::optional<BatchNorm1d<T>> bn1_, bn2_;
    L2Normalize<T> l2_;
    bool training_ = true;
};

}  // namespace gcl::nn
