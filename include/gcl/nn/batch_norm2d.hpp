#pragma once
// nn::BatchNorm2d: batch normalisation over the channels of [N, C, H, W] (PyTorch's BatchNorm2d).
//
//   nn::BatchNorm2d<float> bn(scope.child("bn1"), {.channels = 32});
//
// Training mode normalises with the batch mean and biased variance and moves the running
// estimates by `momentum` towards the batch mean and the unbiased variance; evaluation mode
// normalises with the running estimates (and its backward pass treats them as constants).
//
// Parameters: "<scope>.weight" [C] (ones) and "<scope>.bias" [C] (zeros), both without weight
// decay. Buffers (saved by checkpoints, skipped by optimizers): "<scope>.running_mean" [C]
// (zeros) and "<scope>.running_var" [C] (ones). Only a forward pass in training mode changes the
// running estimates; backward passes never do, so any number of them may follow one forward.
//
// Synchronised over the ranks of a data-parallel job when the arena has a batch-statistics
// reducer (batch_statistics.hpp): training passes then use the statistics of the ranks'
// concatenated batches.
#include <string>

#include "gcl/core/tensor.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/ops/batch_norm.hpp"

namespace gcl::nn {

struct BatchNorm2dOptions {
    index_t channels = 0;
    double momentum = 0.1;  // weight of the batch statistics in the running estimates
    double eps = 1e-5;      // added to the variance
};

template <class T, class D = cpu>
class BatchNorm2d {
public:
    using value_type = T;
    using device_type = D;

    BatchNorm2d(const Scope<T, D>& scope, const BatchNorm2dOptions& options)
        : arena_(&scope.arena()), name_(scope.prefix()), options_(options), params_{options.momentum, options.eps} {
        check(options.channels > 0, "nn::BatchNorm2d", "layer", detail::quoted(name_),
              " needs a positive number of channels, got ", options.channels);
        check(options.eps > 0 && options.momentum >= 0 && options.momentum <= 1, "nn::BatchNorm2d", "layer",
              detail::quoted(name_), ": eps must be positive and momentum in [0, 1], got eps ", options.eps,
              " and momentum ", options.momentum);
        const Shape c{options.channels};
        gamma_ = scope.parameter("weight", c, Init::ones(), {.weight_decay = false});
        beta_ = scope.parameter("bias", c, Init::zeros(), {.weight_decay = false});
        running_mean_ = scope.buffer("running_mean", c, T(0));
        running_var_ = scope.buffer("running_var", c, T(1));
        saved_mean_.resize(c);
        saved_invstd_.resize(c);
    }

    Shape output_shape(const Shape& x) const {
        detail::require_image("nn::BatchNorm2d", name_, x, options_.channels);
        return x;
    }

    ConstView<T, D> forward(ConstView<T, D> x) {
        y_.resize(output_shape(x.shape()));
        x_ = x;
        forward_done_ = true;
        forward_training_ = training_;
        auto& a = *arena_;
        if (training_) {
            check(x.dim(0) * x.dim(2) * x.dim(3) > 1, "nn::BatchNorm2d::forward", "layer", detail::quoted(name_),
                  ": training needs more than one value per channel, got input ", x.shape());
            with_reduce([&](auto&& reduce) {
                ops::batch_norm_forward_train(x, a.value(gamma_), a.value(beta_), y_.view(),
                                              a.buffer_value(running_mean_), a.buffer_value(running_var_),
                                              saved_mean_.view(), saved_invstd_.view(), params_, reduce);
            });
        } else {
            ops::batch_norm_forward_eval(x, a.value(gamma_), a.value(beta_), a.buffer_value(running_mean_),
                                         a.buffer_value(running_var_), y_.view(), params_);
        }
        return y_.cview();
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        constexpr std::string_view op = "nn::BatchNorm2d::backward";
        detail::require_forward(forward_done_, op, name_);
        detail::require_gradient_shape(op, name_, dy.shape(), y_.shape());
        dx_.resize(x_.shape());
        auto& a = *arena_;
        if (forward_training_)
            with_reduce([&](auto&& reduce) {
                ops::batch_norm_backward_train(dy, x_, a.value(gamma_), saved_mean_, saved_invstd_, dx_.view(),
                                               a.grad_target(gamma_), a.grad_target(beta_), gcl::WriteMode::accumulate,
                                               reduce);
            });
        else
            ops::batch_norm_backward_eval(dy, x_, a.value(gamma_), a.buffer_value(running_mean_),
                                          a.buffer_value(running_var_), dx_.view(), a.grad_target(gamma_),
                                          a.grad_target(beta_), params_, gcl::WriteMode::accumulate);
        return dx_.cview();
    }

    // K backward passes at once (layer.hpp): the K gradients share the forward's statistics.
    ConstView<T, D> backward_stacked(ConstView<T, D> dy, index_t passes) {
        constexpr std::string_view op = "nn::BatchNorm2d::backward_stacked";
        detail::require_forward(forward_done_, op, name_);
        detail::require_stacked_gradient_shape(op, name_, dy.shape(), y_.shape(), passes);
        check(arena_->target_passes() == passes, op, "layer", detail::quoted(name_), ": ", passes,
              " passes but the arena's gradient target takes ", arena_->target_passes());
        dx_.resize(detail::stacked_shape(x_.shape(), passes));
        auto& a = *arena_;
        for (index_t k = 0; k < passes; ++k) {
            const ConstView<T, D> dy_k = detail::pass_block(dy, passes, k);
            const TensorView<T, D> dx_k = detail::pass_block(dx_.view(), passes, k);
            if (forward_training_)
                with_reduce([&](auto&& reduce) {
                    ops::batch_norm_backward_train(dy_k, x_, a.value(gamma_), saved_mean_, saved_invstd_, dx_k,
                                                   a.grad_target(gamma_, k), a.grad_target(beta_, k),
                                                   gcl::WriteMode::accumulate, reduce);
                });
            else
                ops::batch_norm_backward_eval(dy_k, x_, a.value(gamma_), a.buffer_value(running_mean_),
                                              a.buffer_value(running_var_), dx_k, a.grad_target(gamma_, k),
                                              a.grad_target(beta_, k), params_, gcl::WriteMode::accumulate);
        }
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }

    const BatchNorm2dOptions& options() const { return options_; }
    const std::string& name() const { return name_; }
    ParamHandle weight() const { return gamma_; }
    ParamHandle bias() const { return beta_; }
    BufferHandle running_mean() const { return running_mean_; }
    BufferHandle running_var() const { return running_var_; }

private:
    // fn(reduce) with the arena's reducer (synchronised), or with the local no-op.
    template <class F>
    void with_reduce(F&& fn) {
        if (BatchStatisticsReducer* r = arena_->batch_statistics_reducer())
            fn([r](double* values, index_t n) { r->sum(values, n); });
        else
            fn(ops::LocalBatchStatistics{});
    }

    ParameterArena<T, D>* arena_;
    std::string name_;
    BatchNorm2dOptions options_;
    ops::BatchNormParams params_;
    ParamHandle gamma_, beta_;
    BufferHandle running_mean_, running_var_;
    bool training_ = true;
    bool forward_training_ = true;
    bool forward_done_ = false;
    ConstView<T, D> x_;
    Tensor<T, D> y_, dx_, saved_mean_, saved_invstd_;
};

}  // namespace gcl::nn
