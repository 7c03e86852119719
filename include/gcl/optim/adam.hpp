#pragma once
// Adam and AdamW, with the updates of torch.optim.Adam and torch.optim.AdamW. At step t
// (counted from 1), element by element:
//   g = maximize ? -g : g
//   Adam  (coupled decay, where it applies):    g = g + weight_decay * p
//   AdamW (decoupled decay, where it applies):  p = p * (1 - lr * weight_decay)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   amsgrad: v_max = max(v_max, v), and v_max replaces v below
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#include <cmath>
#include <cstdint>
#include <string_view>

#include "gcl/core/config.hpp"
#include "gcl/core/error.hpp"
#include "gcl/optim/flat_optimizer.hpp"

namespace gcl::optim {

// Adam's defaults are PyTorch's. Note that torch.optim.AdamW defaults to weight_decay = 0.01;
// here both start at 0, so set it explicitly for AdamW.
struct AdamOptions {
    double learning_rate = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;
    bool amsgrad = false;
    bool maximize = false;
};

enum class WeightDecay { coupled, decoupled };

template <class T, WeightDecay Decay>
struct AdamRule {
    using options_type = AdamOptions;
    static constexpr std::string_view name = Decay == WeightDecay::coupled ? "adam" : "adamw";
    static constexpr int max_states = 3;

    AdamOptions options;

    void validate() const {
        const AdamOptions& o = options;
        const std::string_view op = Decay == WeightDecay::coupled ? "Adam" : "AdamW";
        check(std::isfinite(o.learning_rate) && o.learning_rate >= 0, op, "invalid learning rate ", o.learning_rate);
        check(std::isfinite(o.eps) && o.eps >= 0, op, "invalid eps ", o.eps);
        check(o.beta1 >= 0 && o.beta1 < 1, op, "beta1 must lie in [0, 1), got ", o.beta1);
        check(o.beta2 >= 0 && o.beta2 < 1, op, "beta2 must lie in [0, 1), got ", o.beta2);
        check(std::isfinite(o.weight_decay) && o.weight_decay >= 0, op, "invalid weight decay ", o.weight_decay);
    }

    int state_count() const { return options.amsgrad ? 3 : 2; }
    static constexpr std::string_view state_name(int k) {
        return k == 0 ? "exp_avg" : k == 1 ? "exp_avg_sq" : "max_exp_avg_sq";
    }

    struct Constants {
        T beta1;
        T one_minus_beta1;
        T beta2;
        T one_minus_beta2;
        T neg_step_size;          // -lr / (1 - beta1^t)
        T bias_correction2_sqrt;  // sqrt(1 - beta2^t)
        T eps;
        T weight_decay;   // coupled: added to the gradient
        T decay_factor;   // decoupled: 1 - lr * weight_decay
        bool use_weight_decay;
        bool amsgrad;
        bool maximize;
    };

    Constants constants(std::int64_t step) const {
        const AdamOptions& o = options;
        const double t = static_cast<double>(step);
        const double bias_correction1 = 1.0 - std::pow(o.beta1, t);
        const double bias_correction2 = 1.0 - std::pow(o.beta2, t);
        const double step_size = o.learning_rate / bias_correction1;
        return Constants{static_cast<T>(o.beta1),
                         static_cast<T>(1.0 - o.beta1),
                         static_cast<T>(o.beta2),
                         static_cast<T>(1.0 - o.beta2),
                         static_cast<T>(-step_size),
                         static_cast<T>(std::sqrt(bias_correction2)),
                         static_cast<T>(o.eps),
                         static_cast<T>(o.weight_decay),
                         static_cast<T>(1.0 - o.learning_rate * o.weight_decay),
                         o.weight_decay != 0,
                         o.amsgrad,
                         o.maximize};
    }

    GCL_HOST_DEVICE static void update(const Constants& c, bool decay, T& p, T g, T* const* state, index_t i) {
        if (c.maximize) g = -g;
        if (decay && c.use_weight_decay) {
            if constexpr (Decay == WeightDecay::coupled)
                g = g + c.weight_decay * p;
            else
                p = p * c.decay_factor;
        }
        T& m = state[0][i];
        T& v = state[1][i];
        m = m * c.beta1 + c.one_minus_beta1 * g;
        v = v * c.beta2 + c.one_minus_beta2 * g * g;
        T second = v;
        if (c.amsgrad) {
            T& v_max = state[2][i];
            v_max = v_max > v ? v_max : v;
            second = v_max;
        }
        const T denom = sqrt_of(second) / c.bias_correction2_sqrt + c.eps;
        p = p + c.neg_step_size * m / denom;
    }

private:
    GCL_HOST_DEVICE static T sqrt_of(T x) {
        using std::sqrt;
        return sqrt(x);
    }
};

template <class T>
using Adam = FlatOptimizer<T, AdamRule<T, WeightDecay::coupled>>;
template <class T>
using AdamW = FlatOptimizer<T, AdamRule<T, WeightDecay::decoupled>>;

}  // namespace gcl::optim
