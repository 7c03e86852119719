#pragma once
// Seeded parameter initialisation: constant, uniform, normal, Kaiming (He et al. 2015) and Xavier
// (Glorot and Bengio 2010), each either uniform or normal.
//
//   nn::initialize(weight_view, nn::Init::kaiming_normal(0.01), nn::fans_of(weight_view.shape()), rng);
//
// Layers call this through nn::Scope, which draws from a generator seeded by the model's seed and
// the parameter's full name, so a parameter's initial values depend only on (seed, name, shape,
// rule) and not on what else the model holds or in what order it was built.
#include <cmath>
#include <cstdint>

#include "gcl/core/error.hpp"
#include "gcl/core/random.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/random.hpp"

namespace gcl::nn {

// Fan-in and fan-out of a weight: the number of inputs and outputs each of its elements takes part in.
struct Fans {
    double fan_in = 1;
    double fan_out = 1;
};

// PyTorch's convention for a weight [out, in, kernel...]: fan_in = in x kernel size,
// fan_out = out x kernel size; a vector [n] has fan_in = fan_out = n.
inline Fans fans_of(const Shape& shape) {
    check(shape.rank() >= 1 && shape.numel() > 0, "nn::fans_of", "cannot compute the fans of shape ", shape);
    if (shape.rank() == 1) return {static_cast<double>(shape[0]), static_cast<double>(shape[0])};
    double receptive = 1;
    for (int d = 2; d < shape.rank(); ++d) receptive *= static_cast<double>(shape[d]);
    return {static_cast<double>(shape[1]) * receptive, static_cast<double>(shape[0]) * receptive};
}

enum class FanMode { fan_in, fan_out };

// How to fill a parameter.
struct Init {
    enum class Kind { constant, uniform, normal, kaiming_uniform, kaiming_normal, xavier_uniform, xavier_normal };
    Kind kind = Kind::constant;
    double a = 0;  // constant: the value; uniform: lo; normal: mean; Kaiming: negative slope; Xavier: gain
    double b = 0;  // uniform: hi; normal: standard deviation
    FanMode mode = FanMode::fan_in;  // Kaiming only

    static Init zeros() { return {Kind::constant, 0, 0}; }
    static Init ones() { return {Kind::constant, 1, 0}; }
    static Init constant(double value) { return {Kind::constant, value, 0}; }
    static Init uniform(double lo, double hi) { return {Kind::uniform, lo, hi}; }
    static Init normal(double mean, double std) { return {Kind::normal, mean, std}; }
    // std = gain / sqrt(fan), gain = sqrt(2 / (1 + negative_slope^2)): keeps the variance of
    // (leaky) ReLU activations constant through depth.
    static Init kaiming_normal(double negative_slope = 0, FanMode mode = FanMode::fan_in) {
        return {Kind::kaiming_normal, negative_slope, 0, mode};
    }
    // Uniform in [-bound, bound], bound = sqrt(3) gain / sqrt(fan).
    static Init kaiming_uniform(double negative_slope = 0, FanMode mode = FanMode::fan_in) {
        return {Kind::kaiming_uniform, negative_slope, 0, mode};
    }
    // std = gain sqrt(2 / (fan_in + fan_out)).
    static Init xavier_normal(double gain = 1) { return {Kind::xavier_normal, gain, 0}; }
    // Uniform in [-bound, bound], bound = gain sqrt(6 / (fan_in + fan_out)).
    static Init xavier_uniform(double gain = 1) { return {Kind::xavier_uniform, gain, 0}; }
};

// Fills `out` (contiguous, on any device) by `init`, drawing from `rng` through ops::fill_uniform
// and ops::fill_normal: element i uses the generator's next counters in row-major order, so the
// result depends neither on the thread count nor on the device.
template <class T, class D>
void initialize(TensorView<T, D> out, const Init& init, const Fans& fans, Rng& rng) {
    constexpr std::string_view op = "nn::initialize";
    check(out.is_contiguous(), op, "view of shape ", out.shape(), " must be contiguous");
    check(fans.fan_in > 0 && fans.fan_out > 0, op, "fans must be positive, got ", fans.fan_in, " and ", fans.fan_out);
    const auto fill_constant = [&](double v) {
        if (out.numel() > 0) ops::fill(out, static_cast<T>(v));
    };
    const auto kaiming_std = [&] {
        const double gain = std::sqrt(2.0 / (1.0 + init.a * init.a));
        return gain / std::sqrt(init.mode == FanMode::fan_in ? fans.fan_in : fans.fan_out);
    };
    const auto xavier_std = [&] { return init.a * std::sqrt(2.0 / (fans.fan_in + fans.fan_out)); };
    switch (init.kind) {
        case Init::Kind::constant:
            fill_constant(init.a);
            return;
        case Init::Kind::uniform:
            check(init.a <= init.b, op, "uniform bounds must be ordered, got [", init.a, ", ", init.b, ")");
            ops::fill_uniform(out, rng, static_cast<T>(init.a), static_cast<T>(init.b));
            return;
        case Init::Kind::normal:
            check(init.b >= 0, op, "the standard deviation must not be negative, got ", init.b);
            ops::fill_normal(out, rng, static_cast<T>(init.a), static_cast<T>(init.b));
            return;
        case Init::Kind::kaiming_normal:
            ops::fill_normal(out, rng, T(0), static_cast<T>(kaiming_std()));
            return;
        case Init::Kind::xavier_normal:
            ops::fill_normal(out, rng, T(0), static_cast<T>(xavier_std()));
            return;
        case Init::Kind::kaiming_uniform:
        case Init::Kind::xavier_uniform: {
            const double std = init.kind == Init::Kind::kaiming_uniform ? kaiming_std() : xavier_std();
            const T bound = static_cast<T>(std::sqrt(3.0) * std);
            ops::fill_uniform(out, rng, -bound, bound);
            return;
        }
    }
    fail(op, "unknown initialisation rule");
}

}  // namespace gcl::nn
