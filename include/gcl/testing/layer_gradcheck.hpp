#pragma once
// Finite-difference checks of a layer's backward pass (input and parameter gradients), for gcl's
// layers and for your own: any type that satisfies the layer contract (layer.hpp), in double, on
// any device.
//
//   nn::ParameterArena<double> arena;                 // or ParameterArena<double, gcl::cuda>
//   MyLayer<double> layer(nn::Scope<double>(arena, 1).child("mine"), {...});
//   gcl::Rng rng(7);
//   auto x = gcl::testing::random_tensor<double>({2, 3, 8, 8}, rng);   // on a GPU: gcl::to_device(x)
//   auto result = gcl::testing::check_layer_gradients(layer, arena, x.view(), rng);
//   REQUIRE(result.passed);      // result.message names the worst element of each check
//
// Both checks use the objective L = sum(w * layer.forward(x)) for a random w (testing/projection.hpp):
// - input: dL/dx from layer.backward(w) against central differences in x;
// - parameters: the arena's flat gradient after arena.begin_backward() + layer.backward(w) against
//   central differences in the arena's flat parameter vector (every parameter of the arena).
// On the host, x and the parameters are perturbed in place. On another device they are perturbed
// in a host copy that is written back to the device before every forward pass; w, y and the
// gradients travel between the two, so the check's arithmetic is the host's on every device.
// Functions with kinks (ReLU, max pooling) can fail where a perturbation crosses a kink; random
// inputs make that unlikely, and options.step sets the perturbation.
#include <algorithm>
#include <concepts>
#include <string>
#include <string_view>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/nn/layer.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/transfer.hpp"
#include "gcl/testing/gradcheck.hpp"
#include "gcl/testing/projection.hpp"

namespace gcl::testing {

struct LayerGradCheckResult {
    testing::GradCheckResult input;
    testing::GradCheckResult parameters;  // passed with nothing checked when the arena is empty
    bool passed = false;
    std::string message;
    explicit operator bool() const { return passed; }
};

namespace detail {

// The values a check perturbs, as a host view: on the host the values themselves; on another
// device a host copy, which write_back() puts on the device.
template <class D>
class HostPerturbed {
public:
    explicit HostPerturbed(TensorView<double, D> values) : values_(values), copy_(ops::device_to_host(values)) {}
    TensorView<double, cpu> host() { return copy_.view(); }
    void write_back() { ops::copy(ops::host_to_device<D>(copy_).cview(), values_); }

private:
    TensorView<double, D> values_;
    Tensor<double> copy_;
};

template <>
class HostPerturbed<cpu> {
public:
    explicit HostPerturbed(TensorView<double, cpu> values) : values_(values) {}
    TensorView<double, cpu> host() { return values_; }
    void write_back() {}

private:
    TensorView<double, cpu> values_;
};

// `from` (any device) into the host view `to`, of the same shape.
template <class D>
void copy_to_host(std::string_view what, ConstView<double, D> from, TensorView<double, cpu> to) {
    check_same_shape("testing::check_layer_gradients", from.shape(), to.shape(), what, "its host copy");
    const Tensor<double> host = ops::device_to_host(from);
    std::copy(host.data(), host.data() + host.numel(), to.data());
}

}  // namespace detail

template <nn::Layer L, class D = typename L::device_type>
requires std::same_as<typename L::value_type, double> LayerGradCheckResult
check_layer_gradients(L& layer, nn::ParameterArena<double, D>& arena, TensorView<double, D> x, Rng& rng,
                      const testing::GradCheckOptions& options = {}) {
    constexpr std::string_view op = "testing::check_layer_gradients";
    check(x.is_contiguous(), op, "x must be contiguous, got shape ", x.shape());
    const Shape y_shape = layer.output_shape(x.shape());
    detail::HostPerturbed<D> input(x);
    detail::HostPerturbed<D> parameters(arena.flat_values());
    const auto forward = [&](TensorView<double> y) {
        input.write_back();
        parameters.write_back();
        const ConstView<double, D> out = layer.forward(ConstView<double, D>(x));
        check_same_shape(op, out.shape(), y.shape(), "forward's output", "output_shape");
        detail::copy_to_host<D>("forward's output", out, y);
    };
    const auto backward = [&](ConstView<double> dy) {
        const Tensor<double, D> dy_on_device = ops::host_to_device<D>(Tensor<double>::copy_of(dy));
        return layer.backward(dy_on_device.cview());
    };

    LayerGradCheckResult result;
    Tensor<double, D> scratch(Shape{arena.size()});
    result.input = testing::check_projected_gradient(
        input.host(), y_shape, forward,
        [&](ConstView<double> dy, TensorView<double> dx) {
            arena.begin_backward(scratch.view(), gcl::WriteMode::overwrite);
            const ConstView<double, D> g = backward(dy);
            check_same_shape(op, g.shape(), dx.shape(), "backward's dx", "x");
            detail::copy_to_host<D>("backward's dx", g, dx);
        },
        rng, options);

    if (arena.size() > 0) {
        result.parameters = testing::check_projected_gradient(
            parameters.host(), y_shape, forward,
            [&](ConstView<double> dy, TensorView<double> dparams) {
                arena.begin_backward(gcl::WriteMode::overwrite);
                backward(dy);
                detail::copy_to_host<D>("the arena's gradient", arena.flat_grads(), dparams);
            },
            rng, options);
    } else {
        result.parameters.message = "no parameters";
    }
    // The device holds the unperturbed values again (the host copies were restored last).
    input.write_back();
    parameters.write_back();
    result.passed = result.input.passed && result.parameters.passed;
    result.message = "input: " + result.input.message + "; parameters: " + result.parameters.message;
    return result;
}

}  // namespace gcl::testing
