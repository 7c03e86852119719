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

template <class T>
class Linear {
public:
    using value_type = T;

    Linear(const Scope<T>& scope, const LinearOptions& options)
        : arena_(&scope.arena()), name_(scope.prefix()), options_(options) {
        check(options.in_features > 0 && options.out_features > 0, "nn::Linear", "layer", detail::quoted(name_),
              " needs positive sizes, got ", options.in_features, " -> ", options.out_features);
        const Shape w{options.out_features, options.in_features};
        weight_ = scope.parameter("weight", w, options.weight_init);
        if (options.bias)
            bias_ = scope.parameter("bias", Shape{options.out_features}, options.bias_init, fans_of(w),
                                    {.weight_decay = false});
    }

    Shape output_shape(const Shape& x) const {
        if (x.rank() != 2 || x[1] != options_.in_features)
            fail("nn::Linear", "layer", detail::quoted(name_), " expects input [N, ", options_.in_features, "], got ",
                 x);
        return Shape{x[0], options_.out_features};
    }

    ConstView<T> forward(ConstView<T> x) {
        y_.resize(output_shape(x.shape()));
        x_ = x;
        forward_done_ = true;
        if (options_.bias)
            ops::linear_forward(x, arena_->value(weight_), arena_->value(bias_), y_.view());
        else
            ops::linear_forward(x, arena_->value(weight_), y_.view());
        return y_.cview();
    }

    ConstView<T> backward(ConstView<T> dy) {
        constexpr std::string_view op = "nn::Linear::backward";
        detail::require_forward(forward_done_, op, name_);
        detail::require_gradient_shape(op, name_, dy.shape(), y_.shape());
        dx_.resize(x_.shape());
        ops::linear_backward_weight(dy, x_, arena_->grad_target(weight_), gcl::WriteMode::accumulate);
        if (options_.bias) ops::linear_backward_bias(dy, arena_->grad_target(bias_), gcl::WriteMode::accumulate);
        ops::linear_backward_data(dy, arena_->value(weight_), dx_.view());
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }

    const LinearOptions& options() const { return options_; }
    const std::string& name() const { return name_; }
    ParamHandle weight() const { return weight_; }
    bool has_bias() const { return options_.bias; }
    ParamHandle bias() const {
        check(options_.bias, "nn::Linear::bias", "layer", detail::quoted(name_), " has no bias");
        return bias_;
    }

private:
    ParameterArena<T, cpu>* arena_;
    std::string name_;
    LinearOptions options_;
    ParamHandle weight_, bias_;
    bool training_ = true;
    bool forward_done_ = false;
    ConstView<T> x_;
    Tensor<T> y_, dx_;
};

}  // namespace gcl::nn
