#pragma once
// Finite-difference gradient checker, shipped for users: verify the backward pass of your own
// op or layer the way gcl verifies its own.
//
//   auto result = gcl::testing::check_gradient(objective, x, analytic_grad);
//   REQUIRE(result.passed);   // result.message names the worst element on failure
//
// `objective()` evaluates a scalar function of the current contents of x (in double), e.g.
// sum(w * layer.forward(x)) for fixed random weights w; `analytic_grad` is d objective / dx from
// your backward pass, e.g. layer.backward(w). Each element of x is perturbed in place by +-step
// (central differences) and restored afterwards.
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

#include "gcl/core/tensor.hpp"

namespace gcl::testing {

struct GradCheckOptions {
    double step = 1e-6;   // finite-difference step
    double rtol = 1e-5;   // relative tolerance
    double atol = 1e-8;   // absolute tolerance
    // Check only this many elements (evenly spaced, always including the first and the last);
    // 0 checks them all.
    index_t max_elements = 0;
};

struct GradCheckResult {
    bool passed = true;
    index_t checked = 0;       // elements compared
    index_t worst_index = -1;  // flat index of the element furthest outside (or nearest to) tolerance
    double analytic = 0;       // the analytic and numeric derivative at worst_index
    double numeric = 0;
    double abs_error = 0;
    double rel_error = 0;
    std::string message;  // one line describing the worst element

    explicit operator bool() const { return passed; }
};

template <class Objective>
GradCheckResult check_gradient(Objective&& objective, TensorView<double, cpu> x,
                               TensorView<const double, cpu> analytic, const GradCheckOptions& options = {}) {
    check_same_shape("check_gradient", x.shape(), analytic.shape(), "x", "analytic gradient");
    check(x.is_contiguous() && analytic.is_contiguous(), "check_gradient", "x and the gradient must be contiguous");
    check(options.step > 0, "check_gradient", "step must be positive, got ", options.step);

    GradCheckResult result;
    const index_t n = x.numel();
    const index_t count = (options.max_elements > 0 && options.max_elements < n) ? options.max_elements : n;
    double worst_ratio = -1;
    double* xs = x.data();
    for (index_t k = 0; k < count; ++k) {
        const index_t i = (count == n || count == 1) ? k : k * (n - 1) / (count - 1);
        const double saved = xs[i];
        xs[i] = saved + options.step;
        const double up = static_cast<double>(objective());
        xs[i] = saved - options.step;
        const double down = static_cast<double>(objective());
        xs[i] = saved;
        const double numeric = (up - down) / (2 * options.step);
        const double a = analytic.data()[i];
        const double abs_error = std::abs(a - numeric);
        const double scale = std::max(std::abs(a), std::abs(numeric));
        const double allowed = options.atol + options.rtol * scale;
        const double ratio = std::isfinite(abs_error) ? abs_error / allowed : std::numeric_limits<double>::infinity();
        ++result.checked;
        if (ratio > worst_ratio || std::isnan(ratio)) {
            worst_ratio = std::isnan(ratio) ? std::numeric_limits<double>::infinity() : ratio;
            result.worst_index = i;
            result.analytic = a;
            result.numeric = numeric;
            result.abs_error = abs_error;
            result.rel_error = scale > 0 ? abs_error / scale : 0;
        }
    }
    result.passed = worst_ratio <= 1.0;
    std::ostringstream msg;
    msg.precision(10);
    msg << (result.passed ? "gradient check passed" : "gradient check FAILED") << " over " << result.checked
        << " of " << n << " elements of shape " << x.shape().str();
    if (result.worst_index >= 0)
        msg << "; worst element " << result.worst_index << ": analytic " << result.analytic << ", numeric "
            << result.numeric << ", abs error " << result.abs_error << ", rel error " << result.rel_error
            << " (rtol " << options.rtol << ", atol " << options.atol << ")";
    result.message = msg.str();
    return result;
}

}  // namespace gcl::testing
