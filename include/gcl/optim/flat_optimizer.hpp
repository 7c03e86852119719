#pragma once
// FlatOptimizer<T, Rule, Device>: the one driver behind every optimizer, on any device. It owns
// the per-element state (momentum, moments: flat vectors of P elements on the device, one per
// state buffer the rule needs) and the step count, and applies the rule's element-wise update
// in one fused pass over the flat parameter and gradient vectors through backend::FlatUpdate
// (backend/cpu/flat_update.hpp: OpenMP blocks; backend/cuda/flat_update.cuh: one grid-stride
// kernel per run of equal options, nvcc only).
//
// A Rule is a small policy (see sgd.hpp, adam.hpp):
//   using options_type;                       hyper-parameters, validated by validate()
//   static constexpr std::string_view name;   "sgd", "adam", ... (stored in checkpoints)
//   static constexpr int max_states;          upper bound on state buffers
//   int state_count() const;                  how many this configuration uses
//   static std::string_view state_name(int k);
//   Constants constants(std::int64_t step) const;   per-step scalars, step counted from 1
//   static void update_range(const Constants&, bool decay, T* params, const T* grads,
//                            T* const* state, index_t begin, index_t end);
//       the update of elements [begin, end), written to vectorise
//   static void update(const Constants&, bool decay, T& param, T grad, T* const* state, index_t i);
//       the same update of element i alone: the reference update_range is tested against
//   template <class F> static void with_options(const Constants&, bool decay, F f);
//       calls f(std::bool_constant<flag>{}...) with the options' flags for these elements
//   template <bool... Flags> GCL_HOST_DEVICE
//   static void update_item(const Constants&, T& param, T grad, T* const* state, index_t i);
//       element i with those flags fixed at compile time: what update, update_range and the
//       device kernels all call
// `decay` says whether weight decay applies to these elements' parameter.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "gcl/backend/cpu/flat_update.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/nn/parameter_arena.hpp"

namespace gcl::optim {

namespace detail {
// Calls f(std::bool_constant<flag>{}...) for runtime flags, so that an update rule branches on
// its options once per range, at compile time, and its loops have no branches in them (the
// compiler does not turn floating-point branches into selects by itself).
template <class F>
void with_flags(F&& f) {
    f();
}
template <class F, class... Rest>
void with_flags(F&& f, bool first, Rest... rest) {
    if (first)
        with_flags([&](auto... tail) { f(std::true_type{}, tail...); }, rest...);
    else
        with_flags([&](auto... tail) { f(std::false_type{}, tail...); }, rest...);
}
}  // namespace detail

// A run of the flat parameter vector whose parameters share their optimizer options.
using Segment = backend::UpdateRun;

// The arena's parameters as runs of equal options, in flat order, covering [0, P).
template <class T, class Device>
std::vector<Segment> segments_of(const nn::ParameterArena<T, Device>& arena) {
    std::vector<Segment> segments;
    for (const nn::ParameterInfo& p : arena.parameters()) {
        if (p.numel() == 0) continue;
        const Segment s{p.offset, p.offset + p.numel(), p.options.weight_decay, p.options.trainable};
        if (!segments.empty() && segments.back().end == s.begin && segments.back().weight_decay == s.weight_decay &&
            segments.back().trainable == s.trainable)
            segments.back().end = s.end;
        else
            segments.push_back(s);
    }
    return segments;
}

// A named state buffer of an optimizer: P elements, in the same flat order as the parameters.
template <class T, class Device = cpu>
struct NamedState {
    std::string_view name;
    TensorView<T, Device> values;
};

template <class T, class Rule, class Device = cpu>
class FlatOptimizer {
    static_assert(std::is_floating_point_v<T>, "gcl::optim optimizers work on float or double parameters");

public:
    using value_type = T;
    using rule_type = Rule;
    using options_type = typename Rule::options_type;
    using device_type = Device;

    // Elements per block of the fused CPU pass; blocks are spread over OpenMP threads when P is large.
    static constexpr index_t block_size = backend::FlatUpdate<cpu>::block_size;
    static constexpr index_t parallel_threshold = backend::FlatUpdate<cpu>::parallel_threshold;

    explicit FlatOptimizer(const options_type& options = {}) : rule_{options} { rule_.validate(); }

    static constexpr std::string_view name() { return Rule::name; }
    const options_type& options() const { return rule_.options; }

    double learning_rate() const { return rule_.options.learning_rate; }
    // Changes the learning rate (a schedule calls this before each step).
    void set_learning_rate(double lr) {
        check(std::isfinite(lr) && lr >= 0, std::string(Rule::name) + "::set_learning_rate",
              "invalid learning rate ", lr);
        rule_.options.learning_rate = lr;
    }

    // Steps taken so far; the next step is step_count() + 1.
    std::int64_t step_count() const { return steps_; }
    void set_step_count(std::int64_t steps) {
        check(steps >= 0, std::string(Rule::name) + "::set_step_count", "negative step count ", steps);
        steps_ = steps;
    }

    // Number of elements the state covers: P after the first step (or resize), 0 before.
    index_t size() const { return size_; }

    // Allocates zeroed state for P elements (e.g. before loading a checkpoint); the step count is kept.
    void resize(index_t p) {
        check(p >= 0, std::string(Rule::name) + "::resize", "negative size ", p);
        for (int k = 0; k < rule_.state_count(); ++k) state_[k] = Tensor<T, Device>(Shape{p});
        size_ = p;
    }

    // Forgets all state: the next step is a first step again.
    void reset() {
        for (auto& s : state_) s = Tensor<T, Device>();
        size_ = 0;
        steps_ = 0;
    }

    // The state buffers by name (e.g. "exp_avg"); empty before the first step or resize.
    std::vector<NamedState<T, Device>> state() {
        std::vector<NamedState<T, Device>> out;
        if (size_ == 0) return out;
        for (int k = 0; k < rule_.state_count(); ++k)
            out.push_back({Rule::state_name(k), TensorView<T, Device>(state_[k].data(), Shape{size_})});
        return out;
    }
    std::vector<NamedState<const T, Device>> state() const {
        std::vector<NamedState<const T, Device>> out;
        if (size_ == 0) return out;
        for (int k = 0; k < rule_.state_count(); ++k)
            out.push_back({Rule::state_name(k), TensorView<const T, Device>(state_[k].data(), Shape{size_})});
        return out;
    }
    // The names this configuration's state buffers have (whether allocated or not).
    std::vector<std::string_view> state_names() const {
        std::vector<std::string_view> out;
        for (int k = 0; k < rule_.state_count(); ++k) out.push_back(Rule::state_name(k));
        return out;
    }

    // One step over a whole flat vector: every element is a parameter with weight decay.
    void step(TensorView<T, Device> params, TensorView<const T, Device> grads) {
        const std::string op = std::string(Rule::name) + "::step";
        check(params.is_contiguous() && grads.is_contiguous(), op, "parameters ", params.shape(), " and gradients ",
              grads.shape(), " must be contiguous");
        check(params.numel() == grads.numel(), op, "parameters have ", params.numel(), " elements but gradients have ",
              grads.numel(), " (shapes ", params.shape(), " and ", grads.shape(), ")");
        const std::vector<Segment> all{Segment{0, params.numel(), true, true}};
        run(op, params.data(), grads.data(), params.numel(), all, [](index_t i) { return "element " + std::to_string(i); });
    }

    // One step over the arena's parameters with its own gradient buffer, honouring each
    // parameter's options (weight decay, trainable).
    void step(nn::ParameterArena<T, Device>& arena) { step(arena, arena.flat_grads()); }

    // One step over the arena's parameters with an external flat gradient of P elements (for
    // example the combined gradient that gradient surgery produced).
    void step(nn::ParameterArena<T, Device>& arena, TensorView<const T, Device> grads) {
        const std::string op = std::string(Rule::name) + "::step";
        check(grads.is_contiguous() && grads.numel() == arena.size(), op, "the gradient must be contiguous with P = ",
              arena.size(), " elements, got shape ", grads.shape());
        const auto describe = [&arena](index_t i) {
            const auto& params = arena.parameters();
            const auto it = std::upper_bound(params.begin(), params.end(), i,
                                             [](index_t x, const nn::ParameterInfo& p) { return x < p.offset; });
            const nn::ParameterInfo& p = *(it - 1);
            return "element " + std::to_string(i - p.offset) + " of parameter '" + p.name + "'";
        };
        run(op, arena.flat_values().data(), grads.data(), arena.size(), segments_of(arena), describe);
    }

private:
    template <class Describe>
    void run(const std::string& op, T* params, const T* grads, index_t n, const std::vector<Segment>& segments,
             Describe describe) {
        if (size_ == 0) resize(n);
        check(size_ == n, op, "the optimizer's state covers ", size_, " elements but the parameters have ", n,
              " (one optimizer per parameter set)");
        check_finite(op, grads, n, describe);

        const typename Rule::Constants c = rule_.constants(steps_ + 1);
        std::array<T*, Rule::max_states> state{};
        for (int k = 0; k < rule_.state_count(); ++k) state[k] = state_[k].data();
        backend::FlatUpdate<Device>::template step<Rule>(c, params, grads, state.data(), n, segments);
        ++steps_;
    }

    // A NaN or infinite gradient is an error, raised before any parameter changes.
    template <class Describe>
    static void check_finite(const std::string& op, const T* g, index_t n, Describe describe) {
        const index_t bad = backend::FlatUpdate<Device>::first_nonfinite(g, n);
        if (bad < 0) return;
        fail(op, "gradient ", describe(bad), " is ", backend::FlatUpdate<Device>::element(g, bad),
             "; no parameter was changed");
    }

    Rule rule_;
    std::array<Tensor<T, Device>, Rule::max_states> state_{};
    index_t size_ = 0;
    std::int64_t steps_ = 0;
};

}  // namespace gcl::optim
