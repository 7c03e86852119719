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
// Names: "<scope>.fc1.weight", "<scope>.fc2.weight", each with a ".bias" where no batch norm
// follows it (a batch norm cancels a bias exactly, and under Adam such a bias, whose gradient is
// zero but for rounding, would take steps of +-lr in random directions), then with batch
// normalisation "<scope>.bn1.*" (hidden) and "<scope>.bn2.*" (output).
#include <string>

#include "gcl/nn/batch_norm1d.hpp"
#include "gcl/nn/detail/projection_mlp.hpp"
#include "gcl/nn/global_avg_pool.hpp"
#include "gcl/nn/linear.hpp"
#include "gcl/nn/scope.hpp"

namespace gcl::nn {

struct ImageHeadOptions {
    index_t in_channels = 0;
    index_t hidden_features = 256;
    index_t out_features = 128;
    HeadNorm batch_norm = HeadNorm::hidden_and_output;
    double eps = ops::default_normalize_eps;  // of the L2 normalisation
};

template <class T, class D = cpu>
class ImageHead {
public:
    using value_type = T;
    using device_type = D;

    ImageHead(const Scope<T, D>& scope, const ImageHeadOptions& options)
        : name_(scope.prefix()),
          options_(options),
          projection_(scope, "fc1", {.in_features = options.in_channels, .out_features = options.hidden_features},
                      "fc2",
                      {.in_features = options.hidden_features,
                       .out_features = options.out_features,
                       .weight_init = Init::xavier_uniform()},
                      options.hidden_features, options.out_features, options.batch_norm, options.eps) {}

    Shape output_shape(const Shape& x) const { return projection_.output_shape(gap_.output_shape(x)); }
    ConstView<T, D> forward(ConstView<T, D> x) { return projection_.forward(gap_.forward(x)); }
    ConstView<T, D> backward(ConstView<T, D> dy) { return gap_.backward(projection_.backward(dy)); }

    void set_training(bool training) {
        gap_.set_training(training);
        projection_.set_training(training);
    }
    bool training() const { return projection_.training(); }

    const ImageHeadOptions& options() const { return options_; }
    const std::string& name() const { return name_; }
    Linear<T, D>& fc1() { return projection_.first(); }
    Linear<T, D>& fc2() { return projection_.second(); }

private:
    std::string name_;
    ImageHeadOptions options_;
    GlobalAvgPool<T, D> gap_;
    detail::ProjectionMlp<Linear<T, D>, BatchNorm1d<T, D>> projection_;
};

}  // namespace gcl::nn
