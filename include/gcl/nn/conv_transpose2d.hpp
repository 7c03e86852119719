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
#include "gcl/nn/detail/weight_bias.hpp"
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

template <class T, class D = cpu>
class ConvTranspose2d {
public:
    using value_type = T;
    using device_type = D;

    ConvTranspose2d(const Scope<T, D>& scope, const ConvTranspose2dOptions& options)
        : options_(checked(options, scope.prefix())),
          params_{options.stride, options.padding, options.output_padding, options.dilation},
          weights_(scope, "nn::ConvTranspose2d", weight_shape(), options.bias, Shape{options.out_channels},
                   options.weight_init, options.bias_init, fans()) {}

    Shape output_shape(const Shape& x) const {
        detail::require_image("nn::ConvTranspose2d", name(), x, options_.in_channels);
        return ops::conv_transpose2d_output_shape(x, weight_shape(), params_);
    }

    ConstView<T, D> forward(ConstView<T, D> x) {
        y_.resize(output_shape(x.shape()));
        x_ = x;
        forward_done_ = true;
        if (options_.bias)
            ops::conv_transpose2d_forward(x, weights_.weight_value(), weights_.bias_value(), y_.view(), params_);
        else
            ops::conv_transpose2d_forward(x, weights_.weight_value(), y_.view(), params_);
        return y_.cview();
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        constexpr std::string_view op = "nn::ConvTranspose2d::backward";
        detail::require_forward(forward_done_, op, name());
        detail::require_gradient_shape(op, name(), dy.shape(), y_.shape());
        dx_.resize(x_.shape());
        ops::conv_transpose2d_backward_weight(dy, x_, weights_.weight_target(), params_, gcl::WriteMode::accumulate);
        if (options_.bias)
            ops::conv_transpose2d_backward_bias(dy, weights_.bias_target(), gcl::WriteMode::accumulate);
        ops::conv_transpose2d_backward_data(dy, weights_.weight_value(), dx_.view(), params_);
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }

    const ConvTranspose2dOptions& options() const { return options_; }
    const std::string& name() const { return weights_.name(); }
    ParamHandle weight() const { return weights_.weight(); }
    bool has_bias() const { return weights_.has_bias(); }
    ParamHandle bias() const { return weights_.bias(); }

private:
    static const ConvTranspose2dOptions& checked(const ConvTranspose2dOptions& o, const std::string& name) {
        check(o.in_channels > 0 && o.out_channels > 0 && o.kernel[0] > 0 && o.kernel[1] > 0 && o.stride[0] > 0 &&
                  o.stride[1] > 0,
              "nn::ConvTranspose2d", "layer", detail::quoted(name), " needs positive channels, kernel and stride, got ",
              o.in_channels, " -> ", o.out_channels, " channels, kernel ", o.kernel[0], "x", o.kernel[1], ", stride ",
              o.stride[0], "x", o.stride[1]);
        return o;
    }
    Shape weight_shape() const {
        return Shape{options_.in_channels, options_.out_channels, options_.kernel[0], options_.kernel[1]};
    }
    // fan_in = in R S / (stride_h stride_w): the number of terms each output element sums on average.
    Fans fans() const {
        const double taps = static_cast<double>(options_.kernel[0] * options_.kernel[1]);
        const double strides = static_cast<double>(options_.stride[0] * options_.stride[1]);
        return {std::max(1.0, static_cast<double>(options_.in_channels) * taps / strides),
                static_cast<double>(options_.out_channels) * taps};
    }

    ConvTranspose2dOptions options_;
    ConvTranspose2dParams params_;
    detail::WeightBias<T, D> weights_;
    bool training_ = true;
    bool forward_done_ = false;
    ConstView<T, D> x_;
    Tensor<T, D> y_, dx_;
};

}  // namespace gcl::nn
