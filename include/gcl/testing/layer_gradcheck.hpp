#pragma once
// Finite-difference checks of a layer's backward pass (input and parameter gradients), for gcl's
// layers and for your own: any type that satisfies the layer contract (layer.hpp), in double.
//
//   nn::ParameterArena<double> arena;
//   MyLayer<double> layer(nn::Scope<double>(arena, 1).child("mine"), {...});
//   gcl::Rng rng(7);
//   auto x = gcl::testing::random_tensor<double>({2, 3, 8, 8}, rng);
//   auto result = gcl::testing::check_layer_gradients(layer, arena, x.view(), rng);
//   REQUIRE(result.passed);      // result.message names the worst element of each check
//
// Both checks use the objective L = sum(w * layer.forward(x)) for a random w (testing/projection.hpp):
// - input: dL/dx from layer.backward(w) against central differences in x;
// - parameters: the arena's flat gradient after arena.begin_backward() + layer.backward(w) against
//   central differences in the arena's flat parameter vector (every parameter of the arena).
// Functions with kinks (ReLU, max pooling) can fail where a perturbation crosses a kink; random
// inputs make that unlikely, and options.step sets the perturbation.
#include <algorithm>
#include <concepts>
#include <string>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/nn/layer.hpp"
#include "gcl/nn/parameter_arena.hpp"
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

template <nn::Layer L>
requires std::same_as<typename L::value_type, double> LayerGradCheckResult
check_layer_gradients(L& layer, nn::ParameterArena<double, cpu>& arena, TensorView<double, cpu> x, Rng& rng,
                      const testing::GradCheckOptions& options = {}) {
    const Shape y_shape = layer.output_shape(x.shape());
    const auto forward = [&](TensorView<double> y) {
        const ConstView<double> out = layer.forward(x);
        check_same_shape("testing::check_layer_gradients", out.shape(), y.shape(), "forward's output", "output_shape");
        std::copy(out.data(), out.data() + out.numel(), y.data());
    };

    LayerGradCheckResult result;
    Tensor<double> scratch(Shape{arena.size()});
    result.input = testing::check_projected_gradient(
        x, y_shape, forward,
        [&](ConstView<double> dy, TensorView<double> dx) {
            arena.begin_backward(scratch.view(), gcl::WriteMode::overwrite);
            const ConstView<double> g = layer.backward(dy);
            check_same_shape("testing::check_layer_gradients", g.shape(), dx.shape(), "backward's dx", "x");
            std::copy(g.data(), g.data() + g.numel(), dx.data());
        },
        rng, options);

    if (arena.size() > 0) {
        result.parameters = testing::check_projected_gradient(
            arena.flat_values(), y_shape, forward,
            [&](ConstView<double> dy, TensorView<double> dparams) {
                arena.begin_backward(gcl::WriteMode::overwrite);
                layer.backward(dy);
                const auto g = arena.flat_grads();
                std::copy(g.data(), g.data() + g.numel(), dparams.data());
            },
            rng, options);
    } else {
        result.parameters.message = "no parameters";
    }
    result.passed = result.input.passed && result.parameters.passed;
    result.message = "input: " + result.input.message + "; parameters: " + result.parameters.message;
    return result;
}

}  // namespace gcl::testing
