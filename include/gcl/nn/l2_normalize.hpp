#pragma once
// nn::L2Normalize: y = x / max(||x||_2, eps) along one dimension (PyTorch's F.normalize):
// dimension 1 is the features of [N, D] and the channels of [N, C, H, W], which puts every
// embedding (per image, or per pixel) on the unit sphere.
#include "gcl/core/tensor.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/ops/normalize.hpp"

namespace gcl::nn {

struct L2NormalizeOptions {
    int dim = 1;
    double eps = ops::default_normalize_eps;
};

template <class T, class D = cpu>
class L2Normalize {
public:
    using value_type = T;
    using device_type = D;

    explicit L2Normalize(const L2NormalizeOptions& options = {}) : options_(options) {
        check(options.eps > 0, "nn::L2Normalize", "eps must be positive, got ", options.eps);
    }

    Shape output_shape(const Shape& x) const {
        ops::resolve_dim("nn::L2Normalize", x, options_.dim);
        return x;
    }

    ConstView<T, D> forward(ConstView<T, D> x) {
        y_.resize(output_shape(x.shape()));
        x_ = x;
        forward_done_ = true;
        ops::l2_normalize_forward(x, y_.view(), options_.dim, options_.eps);
        return y_.cview();
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        constexpr std::string_view op = "nn::L2Normalize::backward";
        detail::require_forward(forward_done_, op, {});
        detail::require_gradient_shape(op, {}, dy.shape(), y_.shape());
        dx_.resize(x_.shape());
        ops::l2_normalize_backward(dy, x_, dx_.view(), options_.dim, options_.eps);
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }
    const L2NormalizeOptions& options() const { return options_; }

private:
    L2NormalizeOptions options_;
    bool training_ = true;
    bool forward_done_ = false;
    ConstView<T, D> x_;
    Tensor<T, D> y_, dx_;
};

}  // namespace gcl::nn
