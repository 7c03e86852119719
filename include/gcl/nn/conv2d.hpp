#pragma once
// nn::Conv2d: 2-d convolution (cross-correlation, PyTorch's Conv2d) with an optional bias.
//
//   nn::Conv2d<float> conv(scope.child("conv1"), {.in_channels = 1, .out_channels = 32,
//                                                 .kernel = {3, 3}, .padding = {1, 1}});
//   auto y = conv.forward(x);        // x [N, 1, H, W] -> y [N, 32, H, W]
//   auto dx = conv.backward(dy);     // adds dL/dweight and dL/dbias into the gradient target
//
// Parameters: "<scope>.weight" [out, in, R, S] (Kaiming-normal by default) and, with a bias,
// "<scope>.bias" [out] (zeros, no weight decay).
#include <string>

#include "gcl/core/tensor.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/nn/detail/weight_bias.hpp"
#include "gcl/nn/init.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/ops/conv2d.hpp"

namespace gcl::nn {

struct Conv2dOptions {
    index_t in_channels = 0;
    index_t out_channels = 0;
    Extent2 kernel{3, 3};
    Extent2 stride{1, 1};
    Extent2 padding{0, 0};
    Extent2 dilation{1, 1};
    bool bias = true;
    Init weight_init = Init::kaiming_normal();  // gain for ReLU, fan-in
    Init bias_init = Init::zeros();
};

template <class T, class D = cpu>
class Conv2d {
public:
    using value_type = T;
    using device_type = D;

    Conv2d(const Scope<T, D>& scope, const Conv2dOptions& options)
        : options_(checked(options, scope.prefix())),
          params_{options.stride, options.padding, options.dilation},
          weights_(scope, "nn::Conv2d", weight_shape(), options.bias, Shape{options.out_channels},
                   options.weight_init, options.bias_init, fans_of(weight_shape())) {}

    Shape output_shape(const Shape& x) const {
        detail::require_image("nn::Conv2d", name(), x, options_.in_channels);
        return ops::conv2d_output_shape(x, weight_shape(), params_);
    }

    // In training mode the backend keeps x and w in its own layout for the backward passes
    // (ops::Conv2dOperandCache): backward uses x and the weight as they were at this forward.
    ConstView<T, D> forward(ConstView<T, D> x) {
        y_.resize(output_shape(x.shape()));
        x_ = x;
        forward_done_ = true;
        if (!training_) operands_.clear();
        const ConstView<T, D> w = weights_.weight_value();
        if (options_.bias) {
            if (training_)
                ops::conv2d_forward(x, w, weights_.bias_value(), y_.view(), params_, operands_);
            else
                ops::conv2d_forward(x, w, weights_.bias_value(), y_.view(), params_);
        } else if (training_) {
            ops::conv2d_forward(x, w, y_.view(), params_, operands_);
        } else {
            ops::conv2d_forward(x, w, y_.view(), params_);
        }
        return y_.cview();
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        constexpr std::string_view op = "nn::Conv2d::backward";
        detail::require_forward(forward_done_, op, name());
        detail::require_gradient_shape(op, name(), dy.shape(), y_.shape());
        if (input_gradient_) dx_.resize(x_.shape());
        ops::conv2d_backward(dy, x_, weights_.weight_value(), dx_view(), weights_.weight_target(), params_,
                             gcl::WriteMode::accumulate, &operands_);
        if (options_.bias) ops::conv2d_backward_bias(dy, weights_.bias_target(), gcl::WriteMode::accumulate);
        return input_gradient_ ? dx_.cview() : ConstView<T, D>();
    }

    // K backward passes at once (layer.hpp): one im2col per image for the K weight gradients,
    // one data-gradient product with K times the columns.
    ConstView<T, D> backward_stacked(ConstView<T, D> dy, index_t passes) {
        constexpr std::string_view op = "nn::Conv2d::backward_stacked";
        detail::require_forward(forward_done_, op, name());
        detail::require_stacked_gradient_shape(op, name(), dy.shape(), y_.shape(), passes);
        const auto& weight_targets = weights_.weight_targets(op, passes);
        if (input_gradient_) dx_.resize(detail::stacked_shape(x_.shape(), passes));
        ops::conv2d_backward_stacked(dy, x_, weights_.weight_value(), dx_view(), weight_targets, params_,
                                     gcl::WriteMode::accumulate, &operands_);
        if (options_.bias)
            for (index_t k = 0; k < passes; ++k)
                ops::conv2d_backward_bias(detail::pass_block(dy, passes, k), weights_.bias_target(k),
                                          gcl::WriteMode::accumulate);
        return input_gradient_ ? dx_.cview() : ConstView<T, D>();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }

    // Whether backward computes dL/dx (the default). Off, backward adds only the parameter
    // gradients and returns an empty view: the images entering a network need no gradient, and
    // the first convolution's data gradient is a sizeable share of a backward pass.
    void set_input_gradient(bool on) { input_gradient_ = on; }
    bool input_gradient() const { return input_gradient_; }

    const Conv2dOptions& options() const { return options_; }
    const std::string& name() const { return weights_.name(); }
    ParamHandle weight() const { return weights_.weight(); }
    bool has_bias() const { return weights_.has_bias(); }
    ParamHandle bias() const { return weights_.bias(); }
    // Bytes of the forward operands kept for the backward passes (oneDNN's blocked copies).
    std::size_t kept_operand_bytes() const { return operands_.bytes(); }

private:
    static const Conv2dOptions& checked(const Conv2dOptions& o, const std::string& name) {
        check(o.in_channels > 0 && o.out_channels > 0 && o.kernel[0] > 0 && o.kernel[1] > 0, "nn::Conv2d", "layer",
              detail::quoted(name), " needs positive channels and kernel, got ", o.in_channels, " -> ",
              o.out_channels, " channels, kernel ", o.kernel[0], "x", o.kernel[1]);
        return o;
    }
    TensorView<T, D> dx_view() { return input_gradient_ ? dx_.view() : TensorView<T, D>(); }
    Shape weight_shape() const {
        return Shape{options_.out_channels, options_.in_channels, options_.kernel[0], options_.kernel[1]};
    }

    Conv2dOptions options_;
    Conv2dParams params_;
    detail::WeightBias<T, D> weights_;
    bool training_ = true;
    bool input_gradient_ = true;
    bool forward_done_ = false;
    ConstView<T, D> x_;
    Tensor<T, D> y_, dx_;
    ops::Conv2dOperandCache<D> operands_;  // x and w from forward, in the backend's layout
};

}  // namespace gcl::nn
