#pragma once
// SGD with momentum, dampening, Nesterov momentum and (coupled) weight decay, with the update of
// torch.optim.SGD, element by element:
//   d = maximize ? -g : g
//   if weight decay applies:  d = d + weight_decay * p
//   if momentum != 0:
//       b = (first step) ? d : momentum * b + (1 - dampening) * d
//       d = nesterov ? d + momentum * b : b
//   p = p - lr * d
#include <cmath>
#include <cstdint>
#include <string_view>

#include "gcl/core/config.hpp"
#include "gcl/core/error.hpp"
#include "gcl/optim/flat_optimizer.hpp"

namespace gcl::optim {

struct SgdOptions {
    double learning_rate = 0.01;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
    bool maximize = false;  // ascend instead of descend
};

template <class T>
struct SgdRule {
    using options_type = SgdOptions;
    static constexpr std::string_view name = "sgd";
    static constexpr int max_states = 1;

    SgdOptions options;

    void validate() const {
        const SgdOptions& o = options;
        check(std::isfinite(o.learning_rate) && o.learning_rate >= 0, "SGD", "invalid learning rate ", o.learning_rate);
        check(std::isfinite(o.momentum) && o.momentum >= 0, "SGD", "invalid momentum ", o.momentum);
        check(std::isfinite(o.dampening), "SGD", "invalid dampening ", o.dampening);
        check(std::isfinite(o.weight_decay) && o.weight_decay >= 0, "SGD", "invalid weight decay ", o.weight_decay);
        check(!o.nesterov || (o.momentum > 0 && o.dampening == 0), "SGD",
              "Nesterov momentum needs momentum > 0 and zero dampening (momentum ", o.momentum, ", dampening ",
              o.dampening, ")");
    }

    int state_count() const { return options.momentum != 0 ? 1 : 0; }
    static constexpr std::string_view state_name(int) { return "momentum_buffer"; }

    struct Constants {
        T lr;
        T momentum;
        T one_minus_dampening;
        T weight_decay;
        bool use_momentum;
        bool first_step;
        bool nesterov;
        bool maximize;
        bool use_weight_decay;
    };

    Constants constants(std::int64_t step) const {
        const SgdOptions& o = options;
        return Constants{static_cast<T>(o.learning_rate),
                         static_cast<T>(o.momentum),
                         static_cast<T>(1.0 - o.dampening),
                         static_cast<T>(o.weight_decay),
                         o.momentum != 0,
                         step == 1,
                         o.nesterov,
                         o.maximize,
                         o.weight_decay != 0};
    }

    // The update of element i, with the options' flags fixed at compile time; `buffer` is the
    // momentum buffer (untouched without momentum).
    template <bool Maximize, bool Decay, bool Momentum, bool FirstStep, bool Nesterov>
    GCL_HOST_DEVICE static void update_element(const Constants& c, T& p, T g, T* buffer, index_t i) {
        T d = g;
        if constexpr (Maximize) d = -g;
        if constexpr (Decay) d = d + c.weight_decay * p;
        if constexpr (Momentum) {
            T b = d;
            if constexpr (!FirstStep) b = buffer[i] * c.momentum + c.one_minus_dampening * d;
            buffer[i] = b;
            if constexpr (Nesterov)
                d = d + c.momentum * b;
            else
                d = b;
        }
        p = p + (-c.lr) * d;
    }

    // Calls f(std::bool_constant<flag>{}...) with the flags update_item takes, for elements
    // whose parameter has weight decay `decay`.
    template <class F>
    static void with_options(const Constants& c, bool decay, F&& f) {
        detail::with_flags(f, c.maximize, decay && c.use_weight_decay, c.use_momentum, c.first_step, c.nesterov);
    }

    // Element i of the flat vectors with the flags fixed: state[0] is the momentum buffer.
    template <bool Maximize, bool Decay, bool Momentum, bool FirstStep, bool Nesterov>
    GCL_HOST_DEVICE static void update_item(const Constants& c, T& p, T g, T* const* state, index_t i) {
        T* buffer = nullptr;
        if constexpr (Momentum) buffer = state[0];
        update_element<Maximize, Decay, Momentum, FirstStep, Nesterov>(c, p, g, buffer, i);
    }

    // Element i of the flat vectors, one at a time: the reference the range form is tested against.
    static void update(const Constants& c, bool decay, T& p, T g, T* const* state, index_t i) {
        with_options(c, decay, [&](auto... flag) { update_item<decltype(flag)::value...>(c, p, g, state, i); });
    }

    // Elements [begin, end): one branch-free, vectorisable loop per combination of options.
    static void update_range(const Constants& c, bool decay, T* p, const T* g, T* const* state, index_t begin,
                             index_t end) {
        T* buffer = c.use_momentum ? state[0] : nullptr;
        with_options(c, decay, [&](auto... flag) {
            for (index_t i = begin; i < end; ++i) update_element<decltype(flag)::value...>(c, p[i], g[i], buffer, i);
        });
    }
};

template <class T, class Device = cpu>
using SGD = FlatOptimizer<T, SgdRule<T>, Device>;

}  // namespace gcl::optim
