#pragma once
// nn::MaxPool2d: max pooling over the spatial dimensions of [N, C, H, W] (default window 2x2,
// stride 2), PyTorch's MaxPool2d. The gradient goes to the first maximum of each window.
//
//   nn::MaxPool2d<float> pool;                               // 2x2, stride 2
//   nn::MaxPool2d<float> pool3({.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
#include "gcl/core/tensor.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/ops/pooling.hpp"

namespace gcl::nn {

template <class T, class D = cpu>
class MaxPool2d {
public:
    using value_type = T;
    using device_type = D;

    explicit MaxPool2d(const Pool2dParams& params = {}) : params_(params) {}

    Shape output_shape(const Shape& x) const {
        detail::require_image("nn::MaxPool2d", {}, x, -1);
        return ops::max_pool2d_output_shape(x, params_);
    }

    ConstView<T, D> forward(ConstView<T, D> x) {
        const Shape ys = output_shape(x.shape());
        y_.resize(ys);
        indices_.resize(ys);
        input_shape_ = x.shape();
        forward_done_ = true;
        ops::max_pool2d_forward(x, y_.view(), indices_.view(), params_);
        return y_.cview();
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        constexpr std::string_view op = "nn::MaxPool2d::backward";
        detail::require_forward(forward_done_, op, {});
        detail::require_gradient_shape(op, {}, dy.shape(), y_.shape());
        dx_.resize(input_shape_);
        ops::max_pool2d_backward(dy, indices_.cview(), dx_.view(), params_);
        return dx_.cview();
    }

    // K backward passes at once (layer.hpp), all through the forward's maxima.
    ConstView<T, D> backward_stacked(ConstView<T, D> dy, index_t passes) {
        constexpr std::string_view op = "nn::MaxPool2d::backward_stacked";
        detail::require_forward(forward_done_, op, {});
        detail::require_stacked_gradient_shape(op, {}, dy.shape(), y_.shape(), passes);
        dx_.resize(detail::stacked_shape(input_shape_, passes));
        for (index_t k = 0; k < passes; ++k)
            ops::max_pool2d_backward(detail::pass_block(dy, passes, k), indices_.cview(),
                                     detail::pass_block(dx_.view(), passes, k), params_);
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }
    const Pool2dParams& params() const { return params_; }

private:
    Pool2dParams params_;
    bool training_ = true;
    bool forward_done_ = false;
    Shape input_shape_;
    Tensor<T, D> y_, dx_;
    Tensor<index_t, D> indices_;
};

}  // namespace gcl::nn
