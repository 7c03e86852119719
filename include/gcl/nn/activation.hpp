#pragma once
// nn::ReLU and nn::LeakyReLU: element-wise activations without parameters, for inputs of any
// shape. At 0 the gradient is the negative side's (0 for ReLU, the slope for LeakyReLU), as in
// PyTorch.
//
//   nn::LeakyReLU<float> act(0.01);
//   auto y = act.forward(x);
#include <cmath>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/ops/activation.hpp"

namespace gcl::nn {

template <class T, class D = cpu>
class ReLU {
public:
    using value_type = T;
    using device_type = D;

    ReLU() = default;

    Shape output_shape(const Shape& x) const { return x; }

    ConstView<T, D> forward(ConstView<T, D> x) {
        y_.resize(x.shape());
        x_ = x;
        forward_done_ = true;
        ops::relu_forward(x, y_.view());
        return y_.cview();
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        constexpr std::string_view op = "nn::ReLU::backward";
        detail::require_forward(forward_done_, op, {});
        detail::require_gradient_shape(op, {}, dy.shape(), y_.shape());
        dx_.resize(x_.shape());
        ops::relu_backward(dy, x_, dx_.view());
        return dx_.cview();
    }

    // K backward passes at once (layer.hpp), all against the forward's input.
    ConstView<T, D> backward_stacked(ConstView<T, D> dy, index_t passes) {
        constexpr std::string_view op = "nn::ReLU::backward_stacked";
        detail::require_forward(forward_done_, op, {});
        detail::require_stacked_gradient_shape(op, {}, dy.shape(), y_.shape(), passes);
        dx_.resize(detail::stacked_shape(x_.shape(), passes));
        for (index_t k = 0; k < passes; ++k)
            ops::relu_backward(detail::pass_block(dy, passes, k), x_, detail::pass_block(dx_.view(), passes, k));
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }

private:
    bool training_ = true;
    bool forward_done_ = false;
    ConstView<T, D> x_;
    Tensor<T, D> y_, dx_;
};

template <class T, class D = cpu>
class LeakyReLU {
public:
    using value_type = T;
    using device_type = D;

    explicit LeakyReLU(double negative_slope = ops::default_leaky_relu_slope) : slope_(negative_slope) {
        check(std::isfinite(negative_slope), "nn::LeakyReLU", "the negative slope must be finite, got ",
              negative_slope);
    }

    Shape output_shape(const Shape& x) const { return x; }

    ConstView<T, D> forward(ConstView<T, D> x) {
        y_.resize(x.shape());
        x_ = x;
        forward_done_ = true;
        ops::leaky_relu_forward(x, y_.view(), static_cast<T>(slope_));
        return y_.cview();
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        constexpr std::string_view op = "nn::LeakyReLU::backward";
        detail::require_forward(forward_done_, op, {});
        detail::require_gradient_shape(op, {}, dy.shape(), y_.shape());
        dx_.resize(x_.shape());
        ops::leaky_relu_backward(dy, x_, dx_.view(), static_cast<T>(slope_));
        return dx_.cview();
    }

    // K backward passes at once (layer.hpp), all against the forward's input.
    ConstView<T, D> backward_stacked(ConstView<T, D> dy, index_t passes) {
        constexpr std::string_view op = "nn::LeakyReLU::backward_stacked";
        detail::require_forward(forward_done_, op, {});
        detail::require_stacked_gradient_shape(op, {}, dy.shape(), y_.shape(), passes);
        dx_.resize(detail::stacked_shape(x_.shape(), passes));
        for (index_t k = 0; k < passes; ++k)
            ops::leaky_relu_backward(detail::pass_block(dy, passes, k), x_, detail::pass_block(dx_.view(), passes, k),
                                     static_cast<T>(slope_));
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }
    double negative_slope() const { return slope_; }

private:
    double slope_;
    bool training_ = true;
    bool forward_done_ = false;
    ConstView<T, D> x_;
    Tensor<T, D> y_, dx_;
};

}  // namespace gcl::nn
