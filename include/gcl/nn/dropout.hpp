#pragma once
// nn::Dropout: in training mode, zeroes each element with probability p and scales the others by
// 1 / (1 - p) (inverted dropout, as PyTorch's Dropout); in evaluation mode, the identity.
//
//   nn::Dropout<float> drop(scope.child("drop"), {.p = 0.1});
//
// The masks are seeded: the layer draws from Rng(seed, name_stream("<scope>.mask")), element i of
// a forward call using the next counter in row-major order. A model built with the same seed and
// run through the same calls drops the same elements, with any number of threads and on any
// device (ops::dropout_mask). backward
// reuses the mask of the last forward call.
#include <string>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/nn/detail/layer_checks.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/random.hpp"

namespace gcl::nn {

struct DropoutOptions {
    double p = 0.5;  // probability of dropping an element, in [0, 1)
};

template <class T, class D = cpu>
class Dropout {
public:
    using value_type = T;
    using device_type = D;

    Dropout(const Scope<T, D>& scope, const DropoutOptions& options)
        : name_(scope.prefix()), options_(options), rng_(scope.rng("mask")) {
        check(options.p >= 0 && options.p < 1, "nn::Dropout", "layer", detail::quoted(name_),
              ": the drop probability must be in [0, 1), got ", options.p);
    }

    Shape output_shape(const Shape& x) const { return x; }

    ConstView<T, D> forward(ConstView<T, D> x) {
        y_.resize(x.shape());
        input_shape_ = x.shape();
        forward_done_ = true;
        masked_ = training_ && options_.p > 0;
        if (!masked_) {
            ops::copy(x, y_.view());
            return y_.cview();
        }
        mask_.resize(x.shape());
        ops::dropout_mask(mask_.view(), rng_, options_.p);
        ops::mul(x, mask_.cview(), y_.view());
        return y_.cview();
    }

    ConstView<T, D> backward(ConstView<T, D> dy) {
        constexpr std::string_view op = "nn::Dropout::backward";
        detail::require_forward(forward_done_, op, name_);
        detail::require_gradient_shape(op, name_, dy.shape(), y_.shape());
        dx_.resize(input_shape_);
        if (masked_)
            ops::mul(dy, mask_.cview(), dx_.view());
        else
            ops::copy(dy, dx_.view());
        return dx_.cview();
    }

    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }

    const DropoutOptions& options() const { return options_; }
    const std::string& name() const { return name_; }
    // The generator of the masks (its offset counts the elements drawn so far).
    const Rng& rng() const { return rng_; }
    // The mask of the last training forward call: 0 where dropped, 1 / (1 - p) where kept.
    ConstView<T, D> mask() const { return mask_.cview(); }

private:
    std::string name_;
    DropoutOptions options_;
    Rng rng_;
    bool training_ = true;
    bool forward_done_ = false;
    bool masked_ = false;
    Shape input_shape_;
    Tensor<T, D> y_, dx_, mask_;
};

}  // namespace gcl::nn
