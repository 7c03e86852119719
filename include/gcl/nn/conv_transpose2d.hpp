#pragma once
// nn::ConvTranspose2d: transposed 2-d convolution (PyTorch's ConvTranspose2d), the learned
// up-sampling of a U-Net decoder, with an optional bias.
//
//   nn::ConvTranspose2d<float> up(scope.child("up0"), {.in_channels = 64, .out_channels = 32,
//                                                      .kernel = {2, 2}, .stride = {2, 2}});
//   auto y = up.forward(x);          // x [N, 64, H, W] -> y [N, 32, 2H, 2W]
//
// Parameters: "<scope>.weight" [in, out, R, S] (PyTorch's layout) and, with a bias,
// "<scope>.bias" [out] (zeros, no weight decay). The default weight initialisation is
// Kaiming-normal with fan_in = in R S / (stride_h stride_w), the number of terms each output
// element sums on average.
#include <algorithm>
#include <string>

#include "gcl/core/tensor.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/nn/init.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/ops/conv_transpose2d.hpp"

namespace gcl::nn {

struct ConvTranspose2dOptions {
    index_t in_channels = 0;
    index_t out_channels = 0;
    Extent2 kernel{2, 2};
    Extent2 stride{2, 2};
    Extent2 padding{0, 0};
    Extent2 output_padding{0, 0};
    Extent2 dilation{1, 1};
    bool bias = true;
    Init weight_init = Init::kaiming_normal();
    Init bias_init = Init::zeros();
};

template <class T>
class ConvTranspose2d {
public:
    using value_type = T;

    ConvTranspose2d(const Scope<T>& scope, const ConvTranspose2dOptions& options)
        : arena_(&scope.arena()),
          name_(scope.prefix()),
          options_(options),
          params_{options.stride, options.padding, options.output_padding, options.dilation} {
        check(options.in_channels > 0 && options.out_channels > 0 && options.kernel[0] > 0 && options.kernel[1] > 0 &&
                  options.stride[0] > 0 && options.stride[1] > 0,
              "nn::ConvTranspose2d", "layer", detail::quoted(name_),
              " needs positive channels, kernel and stride, got ", options.in_channels, " -> ", options.out_channels,
              " channels, kernel ", options.kernel[0], "x", options.kernel[1], ", stride ", options.stride[0], "x",
              options.stride[1]);
        const Shape w = weight_shape();
        const double taps = static_cast<double>(options.kernel[0] * options.kernel[1]);
        const double strides = static_cast<double>(options.stride[0] * options.stride[1]);
        const Fans fans{std::max(1.0, static_cast<double>(options.in_channels) * taps / strides),
                        static_cast<double>(options.out_channels) * taps};
        weight_ = scope.parameter("weight", w, options.weight_init, fans);
        if (options.bias)
            bias_ =
                scope.parameter("bias", Shape{options.out_channels}, options.bias_init, fans, {.weight_decay = false});
    }

    Shape output_shape(const Shape& x) const {
        detail::require_image("nn::ConvTranspose2d", name_, x, options_.in_channels);
        return ops::conv_transpose2d_output_shape(x, weight_shape(), params_);
    }

    ConstView<T> forward(ConstView<T> x) {
        y_.resize(output_shape(x.shape()));
        x_ = x;
        forward_done_ = true;
        if (options_.bias)
            ops::conv_transpose2d_forward(x, arena_->value(weight_), arena_->value(bias_), y_.view(), params_);
        else
            ops::conv_transpose2d_forward(x, arena_->value(weight_), y_.view(), params_);
        return y_.cview();
    }

    ConstView<T> backward(ConstView<T> dy) {
        constexpr std::string_view op = "nn::ConvTranspose2d::backward";
        detail::require_forward(forward_done_, op, name_);
        detail::require_gradient_shape(op, name_, dy.shape(), y_.shape());
        dx_.resize(x_.shape());
        ops::conv_transpose2d_backward_weight(dy, x_, arena_->grad_target(weight_), params_,
                                              gcl::WriteMode::accumulate);
        if (options_.bias)
            ops::conv_transpose2d_backward_bias(dy, arena_->grad_target(bias_), gcl::WriteMode::accumulate);
        ops::conv_transpose2d_backward_data(dy, arena_->value(weight_), dx_.view(), params_);
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }

    const ConvTranspose2dOptions& options() const { return options_; }
    const std::string& name() const { return name_; }
    ParamHandle weight() const { return weight_; }
    bool has_bias() const { return options_.bias; }
    ParamHandle bias() const {
        check(options_.bias, "nn::ConvTranspose2d::bias", "layer", detail::quoted(name_), " has no bias");
        return bias_;
    }

private:
    Shape weight_shape() const {
        return Shape{options_.in_channels, options_.out_channels, options_.kernel[0], options_.kernel[1]};
    }

    ParameterArena<T, cpu>* arena_;
    std::string name_;
    ConvTranspose2dOptions options_;
    ConvTranspose2dParams params_;
    ParamHandle weight_, bias_;
    bool training_ = true;
    bool forward_done_ = false;
    ConstView<T> x_;
    Tensor<T> y_, dx_;
};

}  // namespace gcl::nn
