#pragma once
// nn::GlobalAvgPool: the mean over the spatial dimensions, [N, C, H, W] -> [N, C].
#include "gcl/core/tensor.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/ops/pooling.hpp"

namespace gcl::nn {

template <class T, class D = cpu>
class GlobalAvgPool {
public:
    using value_type = T;
    using device_type = D;

    GlobalAvgPool() = default;

    Shape output_shape(const Shape& x) const {
        detail::require_image("nn::GlobalAvgPool", {}, x, -1);
        check(x[2] * x[3] > 0, "nn::GlobalAvgPool", "input ", x, " has no spatial elements to average");
        return Shape{x[0], x[1]};
    }

    ConstView<T, D> forward(ConstView<T, D> x) {
        y_.resize(output_shape(x.shape()));
        input_shape_ = x.shape();
        forward_done_ = true;
        ops::global_avg_pool2d_forward(x, y_.view());
        return y_.cview();
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        constexpr std::string_view op = "nn::GlobalAvgPool::backward";
        detail::require_forward(forward_done_, op, {});
        detail::require_gradient_shape(op, {}, dy.shape(), y_.shape());
        dx_.resize(input_shape_);
        ops::global_avg_pool2d_backward(dy, dx_.view());
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }

private:
    bool training_ = true;
    bool forward_done_ = false;
    Shape input_shape_;
    Tensor<T, D> y_, dx_;
};

}  // namespace gcl::nn
