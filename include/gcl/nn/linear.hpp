#pragma once
// nn::Linear: y = x W^T + b for x [N, in], W [out, in], b [out] (PyTorch's Linear).
//
//   nn::Linear<float> fc(scope.child("fc1"), {.in_features = 256, .out_features = 128});
//
// Parameters: "<scope>.weight" [out, in] (Kaiming-normal by default) and, with a bias,
// "<scope>.bias" [out] (zeros, no weight decay).
#include <string>

#include "gcl/core/tensor.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/nn/detail/weight_bias.hpp"
#include "gcl/nn/init.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/ops/linear.hpp"

namespace gcl::nn {

struct LinearOptions {
    index_t in_features = 0;
    index_t out_features = 0;
    bool bias = true;
    Init weight_init = Init::kaiming_normal();
    Init bias_init = Init::zeros();
};

template <class T, class D = cpu>
class Linear {
public:
    using value_type = T;
    using device_type = D;

    Linear(const Scope<T, D>& scope, const LinearOptions& options)
        : options_(checked(options, scope.prefix())),
          weights_(scope, "nn::Linear", weight_shape(), options.bias, Shape{options.out_features},
                   options.weight_init, options.bias_init, fans_of(weight_shape())) {}

    Shape output_shape(const Shape& x) const {
        if (x.rank() != 2 || x[1] != options_.in_features)
            fail("nn::Linear", "layer", detail::quoted(name()), " expects input [N, ", options_.in_features, "], got ",
                 x);
        return Shape{x[0], options_.out_features};
    }

    ConstView<T, D> forward(ConstView<T, D> x) {
        y_.resize(output_shape(x.shape()));
        x_ = x;
        forward_done_ = true;
        if (options_.bias)
            ops::linear_forward(x, weights_.weight_value(), weights_.bias_value(), y_.view());
        else
            ops::linear_forward(x, weights_.weight_value(), y_.view());
        return y_.cview();
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        constexpr std::string_view op = "nn::Linear::backward";
        detail::require_forward(forward_done_, op, name());
        detail::require_gradient_shape(op, name(), dy.shape(), y_.shape());
        dx_.resize(x_.shape());
        ops::linear_backward_weight(dy, x_, weights_.weight_target(), gcl::WriteMode::accumulate);
        if (options_.bias) ops::linear_backward_bias(dy, weights_.bias_target(), gcl::WriteMode::accumulate);
        ops::linear_backward_data(dy, weights_.weight_value(), dx_.view());
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }

    const LinearOptions& options() const { return options_; }
    const std::string& name() const { return weights_.name(); }
    ParamHandle weight() const { return weights_.weight(); }
    bool has_bias() const { return weights_.has_bias(); }
    ParamHandle bias() const { return weights_.bias(); }

private:
    static const LinearOptions& checked(const LinearOptions& o, const std::string& name) {
        check(o.in_features > 0 && o.out_features > 0, "nn::Linear", "layer", detail::quoted(name),
              " needs positive sizes, got ", o.in_features, " -> ", o.out_features);
        return o;
    }
    Shape weight_shape() const { return Shape{options_.out_features, options_.in_features}; }

    LinearOptions options_;
    detail::WeightBias<T, D> weights_;
    bool training_ = true;
    bool forward_done_ = false;
    ConstView<T, D> x_;
    Tensor<T, D> y_, dx_;
};

}  // namespace gcl::nn
