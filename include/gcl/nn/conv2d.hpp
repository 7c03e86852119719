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
#include <vector>

#include "gcl/core/tensor.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
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

template <class T>
class Conv2d {
public:
    using value_type = T;

    Conv2d(const Scope<T>& scope, const Conv2dOptions& options)
        : arena_(&scope.arena()),
          name_(scope.prefix()),
          options_(options),
          params_{options.stride, options.padding, options.dilation} {
        check(options.in_channels > 0 && options.out_channels > 0 && options.kernel[0] > 0 && options.kernel[1] > 0,
              "nn::Conv2d", "layer", detail::quoted(name_), " needs positive channels and kernel, got ",
              options.in_channels, " -> ", options.out_channels, " channels, kernel ", options.kernel[0], "x",
              options.kernel[1]);
        const Shape w{options.out_channels, options.in_channels, options.kernel[0], options.kernel[1]};
        weight_ = scope.parameter("weight", w, options.weight_init);
        if (options.bias)
            bias_ = scope.parameter("bias", Shape{options.out_channels}, options.bias_init, fans_of(w),
                                    {.weight_decay = false});
    }

    Shape output_shape(const Shape& x) const {
        detail::require_image("nn::Conv2d", name_, x, options_.in_channels);
        return ops::conv2d_output_shape(x, weight_shape(), params_);
    }

    // In training mode the backend keeps x and w in its own layout for the backward passes
    // (ops::Conv2dOperandCache): backward uses x and the weight as they were at this forward.
    ConstView<T> forward(ConstView<T> x) {
        y_.resize(output_shape(x.shape()));
        x_ = x;
        forward_done_ = true;
        if (!training_) operands_.clear();
        if (options_.bias) {
            if (training_)
                ops::conv2d_forward(x, arena_->value(weight_), arena_->value(bias_), y_.view(), params_, operands_);
            else
                ops::conv2d_forward(x, arena_->value(weight_), arena_->value(bias_), y_.view(), params_);
        } else if (training_) {
            ops::conv2d_forward(x, arena_->value(weight_), y_.view(), params_, operands_);
        } else {
            ops::conv2d_forward(x, arena_->value(weight_), y_.view(), params_);
        }
        return y_.cview();
    }

    ConstView<T> backward(ConstView<T> dy) {
        constexpr std::string_view op = "nn::Conv2d::backward";
        detail::require_forward(forward_done_, op, name_);
        detail::require_gradient_shape(op, name_, dy.shape(), y_.shape());
        dx_.resize(x_.shape());
        ops::conv2d_backward(dy, x_, arena_->value(weight_), dx_.view(), arena_->grad_target(weight_), params_,
                             gcl::WriteMode::accumulate, &operands_);
        if (options_.bias) ops::conv2d_backward_bias(dy, arena_->grad_target(bias_), gcl::WriteMode::accumulate);
        return dx_.cview();
    }

    // K backward passes at once (layer.hpp): one im2col per image for the K weight gradients,
    // one data-gradient product with K times the columns.
    ConstView<T> backward_stacked(ConstView<T> dy, index_t passes) {
        constexpr std::string_view op = "nn::Conv2d::backward_stacked";
        detail::require_forward(forward_done_, op, name_);
        detail::require_stacked_gradient_shape(op, name_, dy.shape(), y_.shape(), passes);
        check(arena_->target_passes() == passes, op, "layer", detail::quoted(name_), ": ", passes,
              " passes but the arena's gradient target takes ", arena_->target_passes());
        dx_.resize(detail::stacked_shape(x_.shape(), passes));
        weight_targets_.clear();
        for (index_t k = 0; k < passes; ++k) weight_targets_.push_back(arena_->grad_target(weight_, k));
        ops::conv2d_backward_stacked(dy, x_, arena_->value(weight_), dx_.view(), weight_targets_, params_,
                                     gcl::WriteMode::accumulate, &operands_);
        if (options_.bias)
            for (index_t k = 0; k < passes; ++k)
                ops::conv2d_backward_bias(detail::pass_block(dy, passes, k), arena_->grad_target(bias_, k),
                                          gcl::WriteMode::accumulate);
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }

    const Conv2dOptions& options() const { return options_; }
    const std::string& name() const { return name_; }
    ParamHandle weight() const { return weight_; }
    bool has_bias() const { return options_.bias; }
    // Bytes of the forward operands kept for the backward passes (oneDNN's blocked copies).
    std::size_t kept_operand_bytes() const { return operands_.bytes(); }
    ParamHandle bias() const {
        check(options_.bias, "nn::Conv2d::bias", "layer", detail::quoted(name_), " has no bias");
        return bias_;
    }

private:
    Shape weight_shape() const {
        return Shape{options_.out_channels, options_.in_channels, options_.kernel[0], options_.kernel[1]};
    }

    ParameterArena<T, cpu>* arena_;
    std::string name_;
    Conv2dOptions options_;
    Conv2dParams params_;
    ParamHandle weight_, bias_;
    bool training_ = true;
    bool forward_done_ = false;
    ConstView<T> x_;
    Tensor<T> y_, dx_;
    std::vector<TensorView<T>> weight_targets_;
    ops::Conv2dOperandCache<cpu> operands_;  // x and w from forward, in the backend's layout
};

}  // namespace gcl::nn
