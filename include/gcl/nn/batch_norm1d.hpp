#pragma once
// nn::BatchNorm1d: batch normalisation of the features of [N, C] (PyTorch's BatchNorm1d on 2-D
// input): nn::BatchNorm2d on the same data seen as [N, C, 1, 1], so the statistics, running
// estimates, parameters ("<scope>.weight", "<scope>.bias") and buffers ("<scope>.running_mean",
// "<scope>.running_var") are BatchNorm2d's.
//
//   nn::BatchNorm1d<float> bn(scope.child("bn1"), {.channels = 256});
//   auto y = bn.forward(x);   // x [N, 256], N >= 2 in training mode
#include <string>

#include "gcl/core/tensor.hpp"
#include "gcl/nn/batch_norm2d.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/nn/scope.hpp"

namespace gcl::nn {

template <class T, class D = cpu>
class BatchNorm1d {
public:
    using value_type = T;
    using device_type = D;

    BatchNorm1d(const Scope<T, D>& scope, const BatchNorm2dOptions& options) : bn_(scope, options) {}

    Shape output_shape(const Shape& x) const {
        check(x.rank() == 2 && x[1] == bn_.options().channels, "nn::BatchNorm1d", "layer",
              detail::quoted(bn_.name()), " expects input [N, ", bn_.options().channels, "], got ", x);
        return x;
    }

    ConstView<T, D> forward(ConstView<T, D> x) {
        const Shape s = output_shape(x.shape());
        return as_features(bn_.forward(as_image(x)), s);
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        check(dy.rank() == 2, "nn::BatchNorm1d::backward", "layer", detail::quoted(bn_.name()),
              " expects a gradient [N, C], got ", dy.shape());
        return as_features(bn_.backward(as_image(dy)), dy.shape());
    }

    void set_training(bool training) { bn_.set_training(training); }
    bool training() const { return bn_.training(); }

    const BatchNorm2dOptions& options() const { return bn_.options(); }
    const std::string& name() const { return bn_.name(); }
    BatchNorm2d<T, D>& batch_norm2d() { return bn_; }

private:
    static ConstView<T, D> as_image(ConstView<T, D> x) {
        check(x.is_contiguous(), "nn::BatchNorm1d", "input of shape ", x.shape(), " must be contiguous");
        return ConstView<T, D>(x.data(), Shape{x.dim(0), x.dim(1), 1, 1});
    }
    static ConstView<T, D> as_features(ConstView<T, D> y, const Shape& shape) {
        return ConstView<T, D>(y.data(), shape);
    }

    BatchNorm2d<T, D> bn_;
};

}  // namespace gcl::nn
