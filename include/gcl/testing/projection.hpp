#pragma once
// Gradient checks for ops and layers through a random projection.
//
// An op maps x to y; its backward pass maps an upstream gradient dy to dx. Choosing a fixed
// random w of y's shape turns the op into the scalar objective L(x) = sum(w * f(x)), whose
// gradient is exactly backward(dy = w). check_projected_gradient compares that with central
// differences of L:
//
//   gcl::Rng rng(7);
//   auto x = gcl::testing::random_tensor<double>({2, 3, 8, 8}, rng);
//   auto result = gcl::testing::check_projected_gradient(
//       x.view(), y_shape,
//       [&](gcl::TensorView<double> y) { my_forward(x, y); },                        // y = f(x)
//       [&](gcl::ConstView<double> dy, gcl::TensorView<double> dx) { my_backward(dy, dx); },
//       rng);
//   REQUIRE(result.passed);  // result.message names the worst element
//
// The same call checks a parameter gradient: pass the parameter as x and write its gradient
// in `backward`. `forward` runs once before `backward` (so a layer's cache matches the
// unperturbed x) and then twice per checked element; x is restored afterwards.
#include <utility>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/testing/gradcheck.hpp"

namespace gcl::testing {

// A host tensor of uniform values in [lo, hi) drawn from rng.
template <class T = double>
Tensor<T> random_tensor(const Shape& shape, Rng& rng, T lo = T(-1), T hi = T(1)) {
    Tensor<T> t(shape);
    fill_uniform<T>(t.view(), rng, lo, hi);
    return t;
}

// Checks backward against finite differences of sum(w * forward(x)) for a random w drawn from
// rng (uniform in [-1, 1)).
//   forward(TensorView<double> y)                       writes f(x) for the current x into y
//   backward(ConstView<double> dy, TensorView<double> dx) writes dL/dx for dL/dy = dy into dx
template <class Forward, class Backward>
GradCheckResult check_projected_gradient(TensorView<double, cpu> x, const Shape& output_shape, Forward&& forward,
                                         Backward&& backward, Rng& rng, const GradCheckOptions& options = {}) {
    const Tensor<double> w = random_tensor<double>(output_shape, rng);
    Tensor<double> y(output_shape);
    forward(y.view());
    Tensor<double> analytic(x.shape());
    backward(w.cview(), analytic.view());
    auto objective = [&] {
        forward(y.view());
        double sum = 0;
        for (index_t i = 0; i < y.numel(); ++i) sum += w.data()[i] * y.data()[i];
        return sum;
    };
    return check_gradient(objective, x, analytic.cview(), options);
}

}  // namespace gcl::testing
