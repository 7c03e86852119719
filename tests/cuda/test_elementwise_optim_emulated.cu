// The item functions of the CUDA element-wise and optimizer kernels (backend/cuda/elementwise.cuh,
// backend/cuda/flat_update.cuh), run on the host for every item in launch order and compared with
// the CPU kernels: needs no GPU. This checks the kernels' index arithmetic, layouts, run
// handling and compile-time flags on this machine; the launches themselves are checked by
// test_cuda_backend, which needs a device.
#include <catch2/catch.hpp>

#include <array>
#include <limits>
#include <vector>

#include "../optim/optim_test_util.hpp"
#include "gcl/core/random.hpp"
#include "gcl/cuda.cuh"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/optim/adam.hpp"
#include "gcl/optim/sgd.hpp"

using gcl::cpu;
using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace backend = gcl::backend;
namespace impl = gcl::cuda_detail;
namespace optim = gcl::optim;
using optim_test::bitwise_equal;
using optim_test::random_tensor;

namespace {

// A launch of for_each_item: item(i) for every i in [0, n).
template <class F>
void replay(index_t n, F item) {
    for (index_t i = 0; i < n; ++i) item(i);
}

template <backend::BinaryOp Op, class T>
void check_binary(const Tensor<T>& a, const Tensor<T>& b) {
    Tensor<T> expected(a.shape()), emulated(a.shape());
    backend::Elementwise<cpu>::binary<T>(Op, a.cview(), b.cview(), expected.view());
    replay(a.numel(), [&](index_t i) { impl::binary_item<Op>(a.data(), b.data(), emulated.data(), i); });
    CHECK(bitwise_equal<T>(emulated.cview(), expected.cview()));
}

template <class T>
void check_copy(gcl::TensorView<const T> in) {
    Tensor<T> expected(in.shape()), emulated(in.shape());
    backend::Elementwise<cpu>::copy<T>(in, expected.view());
    const backend::CopyLayout layout = backend::copy_layout(in, emulated.view());
    replay(in.numel(), [&](index_t i) { impl::copy_item(in.data(), emulated.data(), layout, i); });
    CHECK(bitwise_equal<T>(emulated.cview(), expected.cview()));
}

}  // namespace

TEMPLATE_TEST_CASE("Elementwise<cuda>'s item functions give the cpu kernels' results", "[cuda][emulated]", float,
                   double) {
    using T = TestType;
    const Tensor<T> a = random_tensor<T>(Shape{4, 6, 5, 7}, 1);
    const Tensor<T> b = random_tensor<T>(Shape{4, 6, 5, 7}, 2);
    const index_t n = a.numel();

    Tensor<T> expected(a.shape()), emulated(a.shape());
    backend::Elementwise<cpu>::fill<T>(expected.view(), T(0.25));
    replay(n, [&](index_t i) { impl::fill_item(emulated.data(), T(0.25), i); });
    CHECK(bitwise_equal<T>(emulated.cview(), expected.cview()));

    check_binary<backend::BinaryOp::add>(a, b);
    check_binary<backend::BinaryOp::sub>(a, b);
    check_binary<backend::BinaryOp::mul>(a, b);
    check_binary<backend::BinaryOp::div>(a, b);

    backend::Elementwise<cpu>::affine<T>(a.cview(), T(0.3), T(-1.5), expected.view());
    replay(n, [&](index_t i) { impl::affine_item(a.data(), T(0.3), T(-1.5), emulated.data(), i); });
    CHECK(bitwise_equal<T>(emulated.cview(), expected.cview()));

    // axpby: beta == 0 does not read y (NaN in y is overwritten), otherwise y = alpha x + beta y.
    for (T beta : {T(0), T(0.75)}) {
        for (index_t i = 0; i < n; ++i)
            expected.data()[i] = emulated.data()[i] = beta == T(0) ? std::numeric_limits<T>::quiet_NaN() : b.data()[i];
        backend::Elementwise<cpu>::axpby<T>(T(-0.5), a.cview(), beta, expected.view());
        if (beta == T(0))
            replay(n, [&](index_t i) { impl::axpby_item<false>(T(-0.5), a.data(), beta, emulated.data(), i); });
        else
            replay(n, [&](index_t i) { impl::axpby_item<true>(T(-0.5), a.data(), beta, emulated.data(), i); });
        CHECK(bitwise_equal<T>(emulated.cview(), expected.cview()));
    }

    // Copies through merged layouts: contiguous, transposed, narrowed, a selected slice, one element.
    check_copy<T>(a.cview());
    check_copy<T>(a.cview().transpose(1, 3));
    check_copy<T>(a.cview().narrow(1, 2, 3).narrow(3, 1, 5));
    check_copy<T>(a.cview().select(2, 4));
    check_copy<T>(a.cview().narrow(0, 1, 1).narrow(1, 0, 1).narrow(2, 3, 1).narrow(3, 6, 1));
    CHECK(backend::copy_layout(a.cview(), emulated.view()).rank == 1);
}

namespace {

// FlatUpdate<cuda>::step's launches replayed: for every trainable run, the rule's flags fixed
// by with_options and flat_update_item run for every element of the run.
template <class Rule, class T>
void replay_flat_update(const typename Rule::Constants& c, T* params, const T* grads, T* const* state,
                        const std::vector<backend::UpdateRun>& runs) {
    for (const backend::UpdateRun& run : runs) {
        if (!run.trainable || run.end == run.begin) continue;
        Rule::with_options(c, run.weight_decay, [&](auto... flag) {
            replay(run.end - run.begin, [&](index_t j) {
                impl::flat_update_item<Rule, T, decltype(flag)::value...>(c, params, grads, state, run.begin, j);
            });
        });
    }
}

// Three steps of Rule on the cpu backend and through the replayed item functions, from the same
// parameters, gradients and state: the parameters and every state buffer end bitwise equal.
template <class T, class Rule>
void check_rule(const typename Rule::options_type& options) {
    gcl::nn::ParameterArena<T> arena;
    arena.add_parameter("conv.weight", Shape{8, 3, 3, 3});
    arena.add_parameter("conv.bias", Shape{8}, {.weight_decay = false});
    arena.add_parameter("frozen.weight", Shape{40}, {.trainable = false});
    arena.add_parameter("head.weight", Shape{3, 8});
    arena.add_parameter("head.bias", Shape{3}, {.weight_decay = false});
    const index_t n = arena.size();
    const std::vector<backend::UpdateRun> runs = optim::segments_of(arena);
    REQUIRE(runs.size() == 5);

    Rule rule{options};
    Tensor<T> params = random_tensor<T>(Shape{n}, 3), emulated_params = params;
    std::array<Tensor<T>, Rule::max_states> state, emulated_state;
    std::array<T*, Rule::max_states> s{}, es{};
    for (int k = 0; k < rule.state_count(); ++k) {
        state[k] = Tensor<T>(Shape{n});
        emulated_state[k] = Tensor<T>(Shape{n});
        s[k] = state[k].data();
        es[k] = emulated_state[k].data();
    }
    for (std::int64_t step = 1; step <= 3; ++step) {
        const Tensor<T> g = random_tensor<T>(Shape{n}, 10 + static_cast<std::uint64_t>(step));
        const typename Rule::Constants c = rule.constants(step);
        backend::FlatUpdate<cpu>::step<Rule>(c, params.data(), g.data(), s.data(), n, runs);
        replay_flat_update<Rule>(c, emulated_params.data(), g.data(), es.data(), runs);
    }
    CHECK(bitwise_equal<T>(emulated_params.cview(), params.cview()));
    for (int k = 0; k < rule.state_count(); ++k) CHECK(bitwise_equal<T>(emulated_state[k].cview(), state[k].cview()));
    // The frozen run kept its values.
    const auto frozen = arena.info(arena.parameter("frozen.weight"));
    for (index_t i = frozen.offset; i < frozen.offset + frozen.numel(); ++i)
        CHECK(emulated_params.data()[i] == random_tensor<T>(Shape{n}, 3).data()[i]);
}

}  // namespace

TEMPLATE_TEST_CASE("FlatUpdate<cuda>'s item function gives the cpu optimizers' results", "[cuda][emulated]", float,
                   double) {
    using T = TestType;
    check_rule<T, optim::SgdRule<T>>({.learning_rate = 0.1});
    check_rule<T, optim::SgdRule<T>>({.learning_rate = 0.1, .momentum = 0.9, .dampening = 0.2, .weight_decay = 0.01});
    check_rule<T, optim::SgdRule<T>>(
        {.learning_rate = 0.05, .momentum = 0.7, .weight_decay = 0.02, .nesterov = true, .maximize = true});
    check_rule<T, optim::AdamRule<T, optim::WeightDecay::coupled>>({.learning_rate = 0.01, .weight_decay = 0.1});
    check_rule<T, optim::AdamRule<T, optim::WeightDecay::decoupled>>(
        {.learning_rate = 0.01, .weight_decay = 0.1, .amsgrad = true, .maximize = true});
}

TEMPLATE_TEST_CASE("The CUDA finiteness probe's item test agrees with the cpu search", "[cuda][emulated]", float,
                   double) {
    using T = TestType;
    Tensor<T> g = random_tensor<T>(Shape{1000}, 5);
    CHECK(backend::FlatUpdate<cpu>::first_nonfinite(g.data(), g.numel()) == -1);
    g.data()[700] = std::numeric_limits<T>::infinity();
    g.data()[412] = -std::numeric_limits<T>::infinity();
    g.data()[901] = std::numeric_limits<T>::quiet_NaN();
    // first_index_where keeps the smallest index whose element fails finite_value (NonfiniteAt).
    index_t first = -1;
    replay(g.numel(), [&](index_t i) {
        if (!impl::finite_value(g.data()[i]) && (first < 0 || i < first)) first = i;
    });
    CHECK(first == 412);
    CHECK(backend::FlatUpdate<cpu>::first_nonfinite(g.data(), g.numel()) == first);
}
