#pragma once
// The projection of both embedding heads: map -> [batch norm] -> ReLU -> map -> [batch norm] ->
// L2 normalisation over dimension 1. nn::ImageHead runs it with Linear and BatchNorm1d on pooled
// features [N, C]; nn::PixelHead with 1x1 Conv2d on feature maps [N, C, h, w].
//
// Registration order (the parameters' order in the arena): "<scope>.<first>", "<scope>.<second>",
// then with batch normalisation "<scope>.bn1" (hidden) and "<scope>.bn2" (output). A map that a
// batch norm follows has no bias.
#include <optional>
#include <type_traits>
#include <utility>

#include "gcl/core/tensor_view.hpp"
#include "gcl/nn/activation.hpp"
#include "gcl/nn/batch_norm2d.hpp"
#include "gcl/nn/l2_normalize.hpp"
#include "gcl/nn/scope.hpp"

namespace gcl::nn {

// Where a projection head batch-normalises.
enum class HeadNorm {
    none,               // map -> ReLU -> map -> L2
    hidden,             // map -> BN -> ReLU -> map -> L2
    hidden_and_output,  // map -> BN -> ReLU -> map -> BN -> L2
};

inline const char* to_string(HeadNorm n) {
    switch (n) {
        case HeadNorm::none: return "none";
        case HeadNorm::hidden: return "hidden";
        case HeadNorm::hidden_and_output: return "hidden_and_output";
    }
    return "?";
}

namespace detail {

// Map: the layer of both maps (Linear or Conv2d); Norm: the batch norm on its outputs.
template <class Map, class Norm>
class ProjectionMlp {
public:
    using value_type = typename Map::value_type;
    using device_type = typename Map::device_type;
    using T = value_type;
    using D = device_type;
    using MapOptions = std::remove_cvref_t<decltype(std::declval<const Map&>().options())>;

    // `first` and `second` name the two maps under `scope` ("fc1", "fc2"); hidden and output
    // are their output sizes (the batch norms' channels).
    ProjectionMlp(const Scope<T, D>& scope, const char* first, const MapOptions& first_options, const char* second,
                  const MapOptions& second_options, index_t hidden, index_t out, HeadNorm norm, double eps)
        : first_(scope.child(first), without_bias_if(first_options, norm != HeadNorm::none)),
          second_(scope.child(second), without_bias_if(second_options, norm == HeadNorm::hidden_and_output)),
          l2_({.dim = 1, .eps = eps}) {
        if (norm != HeadNorm::none) norm1_.emplace(scope.child("bn1"), BatchNorm2dOptions{.channels = hidden});
        if (norm == HeadNorm::hidden_and_output)
            norm2_.emplace(scope.child("bn2"), BatchNorm2dOptions{.channels = out});
    }

    Shape output_shape(const Shape& x) const { return second_.output_shape(first_.output_shape(x)); }

    ConstView<T, D> forward(ConstView<T, D> x) {
        ConstView<T, D> h = first_.forward(x);
        if (norm1_) h = norm1_->forward(h);
        h = second_.forward(relu_.forward(h));
        if (norm2_) h = norm2_->forward(h);
        return l2_.forward(h);
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        ConstView<T, D> d = l2_.backward(dy);
        if (norm2_) d = norm2_->backward(d);
        d = relu_.backward(second_.backward(d));
        if (norm1_) d = norm1_->backward(d);
        return first_.backward(d);
    }

    void set_training(bool training) {
        training_ = training;
        first_.set_training(training);
        relu_.set_training(training);
        second_.set_training(training);
        l2_.set_training(training);
        if (norm1_) norm1_->set_training(training);
        if (norm2_) norm2_->set_training(training);
    }
    bool training() const { return training_; }

    Map& first() { return first_; }
    Map& second() { return second_; }

private:
    // A batch norm after a map cancels its bias exactly, so such a bias would only drift.
    static MapOptions without_bias_if(MapOptions o, bool normalised) {
        if (normalised) o.bias = false;
        return o;
    }

    Map first_;
    ReLU<T, D> relu_;
    Map second_;
    std::optional<Norm> norm1_, norm2_;
    L2Normalize<T, D> l2_;
    bool training_ = true;
};

}  // namespace detail
}  // namespace gcl::nn
