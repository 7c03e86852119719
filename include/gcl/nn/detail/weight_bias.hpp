#pragma once
// The parameters of a layer with a weight and an optional bias (Conv2d, ConvTranspose2d,
// Linear): their registration under the layer's scope, their handles, and the views the layer's
// passes read and add into, on the layer's device.
//
//   detail::WeightBias<T, D> params_(scope, "nn::Linear", Shape{out, in}, options.bias, Shape{out},
//                                    options.weight_init, options.bias_init, fans_of(Shape{out, in}));
//   ops::linear_forward(x, params_.weight_value(), params_.bias_value(), y);
//   ops::linear_backward_bias(dy, params_.bias_target(), WriteMode::accumulate);
//
// "<scope>.weight" is registered first, then (with a bias) "<scope>.bias", initialised with the
// same fans and without weight decay.
#include <string>
#include <string_view>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/nn/init.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/scope.hpp"

namespace gcl::nn::detail {

template <class T, class D>
class WeightBias {
public:
    // `layer` names the layer type in error messages ("nn::Conv2d").
    WeightBias(const Scope<T, D>& scope, std::string_view layer, const Shape& weight_shape, bool bias,
               const Shape& bias_shape, const Init& weight_init, const Init& bias_init, const Fans& fans)
        : arena_(&scope.arena()), name_(scope.prefix()), layer_(layer), has_bias_(bias) {
        weight_ = scope.parameter("weight", weight_shape, weight_init, fans);
        if (bias) bias_ = scope.parameter("bias", bias_shape, bias_init, fans, {.weight_decay = false});
    }

    const std::string& name() const { return name_; }
    bool has_bias() const { return has_bias_; }
    ParamHandle weight() const { return weight_; }
    ParamHandle bias() const {
        if (!has_bias_) fail(layer_ + "::bias", "layer", quoted(name_), " has no bias");
        return bias_;
    }

    // The values, read when a pass runs (a registration may move the arena's storage).
    ConstView<T, D> weight_value() const { return arena_->value(weight_); }
    ConstView<T, D> bias_value() const { return arena_->value(bias()); }

    // The parameters' slices of the current gradient target (pass `pass` of a stacked target).
    TensorView<T, D> weight_target() const { return arena_->grad_target(weight_); }
    TensorView<T, D> bias_target() const { return arena_->grad_target(bias()); }
    TensorView<T, D> weight_target(index_t pass) const { return arena_->grad_target(weight_, pass); }
    TensorView<T, D> bias_target(index_t pass) const { return arena_->grad_target(bias(), pass); }

    // The K weight targets of a stacked pass, after checking that the arena's target takes K passes.
    const std::vector<TensorView<T, D>>& weight_targets(std::string_view op, index_t passes) {
        check(arena_->target_passes() == passes, op, "layer", quoted(name_), ": ", passes,
              " passes but the arena's gradient target takes ", arena_->target_passes());
        weight_targets_.clear();
        for (index_t k = 0; k < passes; ++k) weight_targets_.push_back(weight_target(k));
        return weight_targets_;
    }

private:
    ParameterArena<T, D>* arena_;
    std::string name_;
    std::string layer_;
    bool has_bias_;
    ParamHandle weight_, bias_;
    std::vector<TensorView<T, D>> weight_targets_;
};

}  // namespace gcl::nn::detail
