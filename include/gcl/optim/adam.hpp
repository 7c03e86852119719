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
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>

#if defined(__AVX__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "gcl/core/config.hpp"
#include "gcl/core/error.hpp"
#include "gcl/optim/flat_optimizer.hpp"

namespace gcl::optim {

namespace detail {
// x[i] = sqrt(x[i]) for non-negative x, correctly rounded (as std::sqrt). std::sqrt itself keeps
// a loop from vectorising (it may set errno), so the exact AVX / SSE2 square-root instructions
// are used where the target has them.
inline void sqrt_in_place(float* x, index_t n) {
    index_t i = 0;
#if defined(__AVX__)
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_sqrt_ps(_mm256_loadu_ps(x + i)));
#endif
#if defined(__SSE2__)
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(x + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
#endif
    for (; i < n; ++i) x[i] = std::sqrt(x[i]);
}
inline void sqrt_in_place(double* x, index_t n) {
    index_t i = 0;
#if defined(__AVX__)
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(x + i, _mm256_sqrt_pd(_mm256_loadu_pd(x + i)));
#endif
#if defined(__SSE2__)
    for (; i + 2 <= n; i += 2) _mm_storeu_pd(x + i, _mm_sqrt_pd(_mm_loadu_pd(x + i)));
#endif
    for (; i < n; ++i) x[i] = std::sqrt(x[i]);
}
}  // namespace detail

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

    // The first half of element i's update, with the options' flags fixed at compile time:
    // weight decay, the moments, and the second moment the denominator uses (v, or v_max with
    // amsgrad), whose square root the second half takes.
    template <bool Maximize, bool ApplyDecay, bool Amsgrad>
    GCL_HOST_DEVICE static T update_moments(const Constants& c, T& p, T g, T* exp_avg, T* exp_avg_sq,
                                            T* max_exp_avg_sq, index_t i) {
        if constexpr (Maximize) g = -g;
        if constexpr (ApplyDecay) {
            if constexpr (Decay == WeightDecay::coupled)
                g = g + c.weight_decay * p;
            else
                p = p * c.decay_factor;
        }
        T& m = exp_avg[i];
        T& v = exp_avg_sq[i];
        m = m * c.beta1 + c.one_minus_beta1 * g;
        v = v * c.beta2 + c.one_minus_beta2 * g * g;
        if constexpr (Amsgrad) {
            T& v_max = max_exp_avg_sq[i];
            v_max = v_max > v ? v_max : v;
            return v_max;
        } else {
            return v;
        }
    }
    // The second half: the step, given the square root of the second moment.
    GCL_HOST_DEVICE static void apply_step(const Constants& c, T& p, T m, T sqrt_second) {
        const T denom = sqrt_second / c.bias_correction2_sqrt + c.eps;
        p = p + c.neg_step_size * m / denom;
    }

    // Calls f(std::bool_constant<flag>{}...) with the flags update_item takes, for elements
    // whose parameter has weight decay `decay`.
    template <class F>
    static void with_options(const Constants& c, bool decay, F&& f) {
        detail::with_flags(f, c.maximize, decay && c.use_weight_decay, c.amsgrad);
    }

    // Element i of the flat vectors with the flags fixed: state holds exp_avg, exp_avg_sq and
    // (amsgrad) max_exp_avg_sq.
    template <bool Maximize, bool ApplyDecay, bool Amsgrad>
    GCL_HOST_DEVICE static void update_item(const Constants& c, T& p, T g, T* const* state, index_t i) {
        const T second = update_moments<Maximize, ApplyDecay, Amsgrad>(c, p, g, state[0], state[1], state[2], i);
        apply_step(c, p, state[0][i], std::sqrt(second));
    }

    // Element i of the flat vectors, one at a time: the reference the range form is tested against.
    static void update(const Constants& c, bool decay, T& p, T g, T* const* state, index_t i) {
        with_options(c, decay, [&](auto... flag) { update_item<decltype(flag)::value...>(c, p, g, state, i); });
    }

    // Elements [begin, end) in chunks, each as a branch-free moments loop, an exact vectorised
    // square root, and a step loop, all of which vectorise.
    static void update_range(const Constants& c, bool decay, T* p, const T* g, T* const* state, index_t begin,
                             index_t end) {
        with_options(c, decay, [&](auto... flag) {
            range<decltype(flag)::value...>(c, p, g, state[0], state[1], state[2], begin, end);
        });
    }

private:
    // Constants by value and state pointers as arguments: nothing the loops store can alias them.
    template <bool Maximize, bool ApplyDecay, bool Amsgrad>
    static void range(const Constants c, T* p, const T* g, T* m, T* v, T* v_max, index_t begin, index_t end) {
        constexpr index_t chunk = 512;
        alignas(64) T root[chunk];
        for (index_t lo = begin; lo < end; lo += chunk) {
            const index_t n = std::min(chunk, end - lo);
            for (index_t j = 0; j < n; ++j)
                root[j] = update_moments<Maximize, ApplyDecay, Amsgrad>(c, p[lo + j], g[lo + j], m, v, v_max, lo + j);
            detail::sqrt_in_place(root, n);
            for (index_t j = 0; j < n; ++j) apply_step(c, p[lo + j], m[lo + j], root[j]);
        }
    }
};

template <class T, class Device = cpu>
using Adam = FlatOptimizer<T, AdamRule<T, WeightDecay::coupled>, Device>;
template <class T, class Device = cpu>
using AdamW = FlatOptimizer<T, AdamRule<T, WeightDecay::decoupled>, Device>;

}  // namespace gcl::optim
