// Behaviour of the optimizer driver: per-parameter options, blocks and threads, state, errors.
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/QR>

#include "gcl/core/eigen.hpp"
#include "gcl/core/random.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/optim/adam.hpp"
#include "gcl/optim/sgd.hpp"
#include "optim_test_util.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace optim = gcl::optim;
using gcl::nn::ParameterArena;

namespace {

using optim_test::bitwise_equal;
using optim_test::random_tensor;

template <class T>
std::vector<optim::SGD<T>> sgd_variants() {
    return {optim::SGD<T>({.learning_rate = 0.1}),
            optim::SGD<T>({.learning_rate = 0.1, .momentum = 0.9, .dampening = 0.2, .weight_decay = 0.01}),
            optim::SGD<T>({.learning_rate = 0.05, .momentum = 0.7, .weight_decay = 0.02, .nesterov = true})};
}

}  // namespace

TEMPLATE_TEST_CASE("A large step over many blocks and threads equals the same step done piecewise",
                   "[optim]", float, double) {
    using T = TestType;
    // Above the parallel threshold, with a length that is not a multiple of the block size.
    const index_t n = 3 * optim::Adam<T>::parallel_threshold + 1234;
    Tensor<T> params = random_tensor<T>(Shape{n}, 1);
    const Tensor<T> g1 = random_tensor<T>(Shape{n}, 2);
    const Tensor<T> g2 = random_tensor<T>(Shape{n}, 3);
    const optim::AdamOptions options{.learning_rate = 0.01, .weight_decay = 0.1, .amsgrad = true};

    optim::AdamW<T> whole(options);
    Tensor<T> whole_params = params;
    whole.step(whole_params.view(), g1.cview());
    whole.step(whole_params.view(), g2.cview());

    // The same elements in small serial pieces, each with its own optimizer.
    const index_t piece = 1000;
    Tensor<T> piece_params = params;
    for (index_t begin = 0; begin < n; begin += piece) {
        const index_t len = std::min(piece, n - begin);
        optim::AdamW<T> part(options);
        part.step(piece_params.view().narrow(0, begin, len), g1.cview().narrow(0, begin, len));
        part.step(piece_params.view().narrow(0, begin, len), g2.cview().narrow(0, begin, len));
    }
    CHECK(bitwise_equal<T>(whole_params.cview(), piece_params.cview()));
}

TEMPLATE_TEST_CASE("Per-parameter options: weight decay where enabled, frozen parameters untouched", "[optim]",
                   float, double) {
    using T = TestType;
    // Sizes that straddle block boundaries, alternating options.
    const std::vector<index_t> sizes = {5000, 7, 9000, 3, 70000, 1, 12000};
    ParameterArena<T> arena;
    for (std::size_t k = 0; k < sizes.size(); ++k) {
        std::string name = "p";
        name += std::to_string(k);
        arena.add_parameter(name, Shape{sizes[k]},
                            {.weight_decay = k % 2 == 0, .trainable = k != 3 && k != 6});
    }
    const Tensor<T> initial = random_tensor<T>(Shape{arena.size()}, 4);
    std::copy(initial.data(), initial.data() + initial.numel(), arena.flat_values().data());
    const Tensor<T> grads = random_tensor<T>(Shape{arena.size()}, 5);
    std::copy(grads.data(), grads.data() + grads.numel(), arena.flat_grads().data());

    const optim::AdamOptions with_decay{.learning_rate = 0.01, .weight_decay = 0.3};
    optim::Adam<T> opt(with_decay);
    opt.step(arena);
    opt.step(arena);

    for (std::size_t k = 0; k < sizes.size(); ++k) {
        const auto& info = arena.parameters()[k];
        INFO("parameter " << info.name);
        Tensor<T> expected = Tensor<T>::copy_of(initial.cview().narrow(0, info.offset, info.numel()));
        if (info.options.trainable) {
            optim::AdamOptions o = with_decay;
            if (!info.options.weight_decay) o.weight_decay = 0;
            optim::Adam<T> reference(o);
            const auto g = grads.cview().narrow(0, info.offset, info.numel());
            reference.step(expected.view(), g);
            reference.step(expected.view(), g);
            // Frozen parameters' state stays zero; trained ones' state is the reference's.
            CHECK(bitwise_equal<T>(opt.state()[0].values.narrow(0, info.offset, info.numel()),
                                   reference.state()[0].values));
        } else {
            for (const auto& s : opt.state())
                for (index_t i = 0; i < info.numel(); ++i) REQUIRE(s.values(info.offset + i) == T(0));
        }
        CHECK(bitwise_equal<T>(arena.value(gcl::nn::ParamHandle{k}).flat(), expected.cview()));
    }
}

TEMPLATE_TEST_CASE("Stepping with an external gradient equals stepping with the arena's own", "[optim]", float,
                   double) {
    using T = TestType;
    ParameterArena<T> a, b;
    for (auto* arena : {&a, &b}) {
        arena->add_parameter("w", Shape{20, 3});
        arena->add_parameter("bias", Shape{20}, {.weight_decay = false});
    }
    const Tensor<T> init = random_tensor<T>(Shape{a.size()}, 6);
    std::copy(init.data(), init.data() + init.numel(), a.flat_values().data());
    std::copy(init.data(), init.data() + init.numel(), b.flat_values().data());
    const Tensor<T> g = random_tensor<T>(Shape{a.size()}, 7);
    std::copy(g.data(), g.data() + g.numel(), a.flat_grads().data());

    for (std::size_t v = 0; v < 3; ++v) {
        optim::SGD<T> own = sgd_variants<T>()[v];
        optim::SGD<T> external = sgd_variants<T>()[v];
        own.step(a);
        external.step(b, g.cview());
        CHECK(bitwise_equal<T>(a.flat_values(), b.flat_values()));
    }
    Tensor<T> short_grad(Shape{a.size() - 1});
    optim::SGD<T> opt({.learning_rate = 0.1});
    CHECK_THROWS_AS(opt.step(b, short_grad.cview()), gcl::Error);
}

TEMPLATE_TEST_CASE("A NaN or infinite gradient is an error and changes nothing", "[optim]", float, double) {
    using T = TestType;
    ParameterArena<T> arena;
    arena.add_parameter("encoder.weight", Shape{100000});
    arena.add_parameter("head.bias", Shape{4});
    const Tensor<T> init = random_tensor<T>(Shape{arena.size()}, 8);
    std::copy(init.data(), init.data() + init.numel(), arena.flat_values().data());
    std::fill_n(arena.flat_grads().data(), arena.size(), T(0.5));

    optim::Adam<T> opt({.learning_rate = 0.01});
    opt.step(arena);
    const Tensor<T> after_one = Tensor<T>::copy_of(arena.flat_values());
    const Tensor<T> moments = Tensor<T>::copy_of(opt.state()[0].values);

    for (const T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                        -std::numeric_limits<T>::infinity()}) {
        arena.grad("head.bias")(2) = bad;
        try {
            opt.step(arena);
            FAIL("no exception");
        } catch (const gcl::Error& e) {
            const std::string what = e.what();
            CHECK(what.find("head.bias") != std::string::npos);
            CHECK(what.find("element 2") != std::string::npos);
        }
        CHECK(opt.step_count() == 1);
        CHECK(bitwise_equal<T>(arena.flat_values(), after_one.cview()));
        CHECK(bitwise_equal<T>(opt.state()[0].values, moments.cview()));
        arena.grad("head.bias")(2) = T(0.5);
    }
    // The flat step checks too.
    Tensor<T> p(Shape{5}), g(Shape{5});
    g(3) = std::numeric_limits<T>::quiet_NaN();
    optim::SGD<T> sgd({.learning_rate = 0.1});
    CHECK_THROWS_AS(sgd.step(p.view(), g.cview()), gcl::Error);
}

TEMPLATE_TEST_CASE("Optimizer state: names, sizes, reset and learning-rate changes", "[optim]", float, double) {
    using T = TestType;
    CHECK(optim::SGD<T>({.momentum = 0}).state_names().empty());
    CHECK(optim::SGD<T>({.momentum = 0.9}).state_names() == std::vector<std::string_view>{"momentum_buffer"});
    CHECK(optim::Adam<T>().state_names() == std::vector<std::string_view>{"exp_avg", "exp_avg_sq"});
    CHECK(optim::AdamW<T>({.amsgrad = true}).state_names() ==
          std::vector<std::string_view>{"exp_avg", "exp_avg_sq", "max_exp_avg_sq"});
    CHECK(optim::SGD<T>::name() == "sgd");
    CHECK(optim::Adam<T>::name() == "adam");
    CHECK(optim::AdamW<T>::name() == "adamw");

    optim::Adam<T> opt({.learning_rate = 0.1});
    CHECK(opt.size() == 0);
    CHECK(opt.state().empty());
    Tensor<T> p(Shape{6}, T(1)), g(Shape{6}, T(1));
    opt.step(p.view(), g.cview());
    CHECK(opt.size() == 6);
    CHECK(opt.state().size() == 2);
    CHECK(opt.state()[0].values(0) == Approx(0.1));  // (1 - beta1) * g
    // Adam's first step moves every element by about lr * sign(g).
    CHECK(p(0) == Approx(1 - 0.1).epsilon(1e-5));

    // One optimizer serves one parameter set.
    Tensor<T> other(Shape{7}), other_g(Shape{7});
    CHECK_THROWS_AS(opt.step(other.view(), other_g.cview()), gcl::Error);
    Tensor<T> g5(Shape{5});
    CHECK_THROWS_AS(opt.step(p.view(), g5.cview()), gcl::Error);

    opt.set_learning_rate(0.5);
    CHECK(opt.learning_rate() == 0.5);
    CHECK(opt.options().learning_rate == 0.5);
    CHECK_THROWS_AS(opt.set_learning_rate(-1), gcl::Error);
    CHECK_THROWS_AS(opt.set_learning_rate(std::numeric_limits<double>::quiet_NaN()), gcl::Error);
    CHECK_THROWS_AS(opt.set_step_count(-1), gcl::Error);

    opt.reset();
    CHECK(opt.size() == 0);
    CHECK(opt.step_count() == 0);
    opt.step(other.view(), other_g.cview());  // a fresh start may take another size
    CHECK(opt.size() == 7);

    // A learning rate of zero leaves SGD parameters where they are but still advances its state.
    optim::SGD<T> frozen({.learning_rate = 0, .momentum = 0.9});
    Tensor<T> q(Shape{3}, T(2));
    frozen.step(q.view(), g.cview().narrow(0, 0, 3));
    CHECK(q(1) == T(2));
    CHECK(frozen.state()[0].values(1) == T(1));
}

TEST_CASE("Invalid hyper-parameters are rejected", "[optim]") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_AS(optim::SGD<float>({.learning_rate = -0.1}), gcl::Error);
    CHECK_THROWS_AS(optim::SGD<float>({.learning_rate = nan}), gcl::Error);
    CHECK_THROWS_AS(optim::SGD<float>({.momentum = -0.5}), gcl::Error);
    CHECK_THROWS_AS(optim::SGD<float>({.weight_decay = -1}), gcl::Error);
    CHECK_THROWS_AS(optim::SGD<float>({.nesterov = true}), gcl::Error);
    CHECK_THROWS_AS(optim::SGD<float>({.momentum = 0.9, .dampening = 0.1, .nesterov = true}), gcl::Error);
    CHECK_NOTHROW(optim::SGD<float>({.momentum = 0.9, .nesterov = true}));
    CHECK_THROWS_AS(optim::Adam<double>({.learning_rate = -1}), gcl::Error);
    CHECK_THROWS_AS(optim::Adam<double>({.beta1 = 1.0}), gcl::Error);
    CHECK_THROWS_AS(optim::Adam<double>({.beta2 = -0.1}), gcl::Error);
    CHECK_THROWS_AS(optim::Adam<double>({.beta2 = nan}), gcl::Error);
    CHECK_THROWS_AS(optim::AdamW<double>({.eps = -1e-8}), gcl::Error);
    CHECK_THROWS_AS(optim::AdamW<double>({.weight_decay = -0.01}), gcl::Error);
    try {
        optim::AdamW<double>({.beta1 = 1.5});
        FAIL("no exception");
    } catch (const gcl::Error& e) {
        CHECK(std::string(e.what()).find("beta1") != std::string::npos);
        CHECK(e.op() == "AdamW");
    }
}

TEMPLATE_TEST_CASE("Each optimizer minimises a least-squares problem", "[optim]", float, double) {
    using T = TestType;
    // f(x) = 0.5 * ||A x - y||^2 with a well-conditioned A; every optimizer should drive it down.
    const index_t m = 20, n = 8;
    const Tensor<T> A = random_tensor<T>(Shape{m, n}, 9);
    const Tensor<T> y = random_tensor<T>(Shape{m}, 10);
    const auto loss_and_grad = [&](const Tensor<T>& x, Tensor<T>& g) {
        double loss = 0;
        g.fill(T(0));
        for (index_t i = 0; i < m; ++i) {
            T r = -y(i);
            for (index_t j = 0; j < n; ++j) r += A(i, j) * x(j);
            loss += 0.5 * double(r) * double(r);
            for (index_t j = 0; j < n; ++j) g(j) += r * A(i, j);
        }
        return loss;
    };
    // The exact minimum, from a QR solve in double.
    Tensor<double> A64(Shape{m, n}), y64(Shape{m}), x_star(Shape{n}), g_star(Shape{n});
    std::copy(A.data(), A.data() + A.numel(), A64.data());
    std::copy(y.data(), y.data() + y.numel(), y64.data());
    gcl::as_eigen_vector(x_star.view()) =
        gcl::as_eigen(A64.cview()).colPivHouseholderQr().solve(gcl::as_eigen_vector(y64.cview()));
    Tensor<T> xs(Shape{n}), gs(Shape{n});
    std::copy(x_star.data(), x_star.data() + n, xs.data());
    const double best = loss_and_grad(xs, gs);

    // The fraction of the initial excess loss left after 500 steps.
    const auto run = [&](auto optimizer) {
        Tensor<T> x(Shape{n}), g(Shape{n});
        const double start = loss_and_grad(x, g);
        for (int it = 0; it < 500; ++it) {
            loss_and_grad(x, g);
            optimizer.step(x.view(), g.cview());
        }
        return (loss_and_grad(x, g) - best) / (start - best);
    };
    CHECK(run(optim::SGD<T>({.learning_rate = 0.01, .momentum = 0.9})) < 1e-3);
    CHECK(run(optim::SGD<T>({.learning_rate = 0.01, .momentum = 0.9, .nesterov = true})) < 1e-3);
    CHECK(run(optim::Adam<T>({.learning_rate = 0.02})) < 1e-3);
    CHECK(run(optim::AdamW<T>({.learning_rate = 0.02, .weight_decay = 1e-4})) < 1e-3);
}

namespace {

// The host range update against the element-wise reference form, on the same data.
template <class T, class Rule>
void check_range_matches_reference(const typename Rule::options_type& options) {
    const Rule rule{options};
    const index_t n = 1037;  // not a multiple of any chunk or vector width
    const Tensor<T> g = random_tensor<T>(Shape{n}, 21);
    Tensor<T> p_range = random_tensor<T>(Shape{n}, 22);
    Tensor<T> p_ref = p_range;
    std::array<Tensor<T>, 3> s_range, s_ref;
    for (int k = 0; k < 3; ++k) {
        s_range[k] = random_tensor<T>(Shape{n}, 23 + k);
        for (index_t i = 0; i < n; ++i) s_range[k].data()[i] = std::abs(s_range[k].data()[i]);  // moments >= 0
        s_ref[k] = s_range[k];
    }
    std::array<T*, 3> range_ptr{s_range[0].data(), s_range[1].data(), s_range[2].data()};
    std::array<T*, 3> ref_ptr{s_ref[0].data(), s_ref[1].data(), s_ref[2].data()};
    for (std::int64_t step = 1; step <= 3; ++step) {
        const auto c = rule.constants(step);
        for (const bool decay : {true, false}) {
            Rule::update_range(c, decay, p_range.data(), g.data(), range_ptr.data(), 0, n);
            for (index_t i = 0; i < n; ++i) Rule::update(c, decay, p_ref.data()[i], g.data()[i], ref_ptr.data(), i);
        }
    }
    // Identical formulas; where the compiler fuses multiply-adds (FMA targets) it may do so
    // differently in the vector and scalar loops, so a few roundings may differ. The difference
    // is measured against the vector's largest element, as cancellation (m near 0) makes
    // element-wise relative differences meaningless.
    const double limit = 32 * std::numeric_limits<T>::epsilon();
    const auto worst = [](const Tensor<T>& a, const Tensor<T>& b) {
        double diff = 0, scale = 0;
        for (index_t i = 0; i < a.numel(); ++i) {
            const double x = a.data()[i], y = b.data()[i];
            diff = std::max(diff, std::abs(x - y));
            scale = std::max({scale, std::abs(x), std::abs(y)});
        }
        return scale > 0 ? diff / scale : diff;
    };
    INFO(Rule::name << ": worst difference of parameters " << worst(p_range, p_ref));
    CHECK(worst(p_range, p_ref) <= limit);
    for (int k = 0; k < rule.state_count(); ++k) {
        INFO("state " << Rule::state_name(k) << ": worst difference " << worst(s_range[k], s_ref[k]));
        CHECK(worst(s_range[k], s_ref[k]) <= limit);
    }
}

}  // namespace

TEMPLATE_TEST_CASE("The vectorised range update equals the element-wise reference", "[optim]", float, double) {
    using T = TestType;
    using Sgd = optim::SgdRule<T>;
    using Adam = optim::AdamRule<T, optim::WeightDecay::coupled>;
    using AdamW = optim::AdamRule<T, optim::WeightDecay::decoupled>;
    check_range_matches_reference<T, Sgd>({.learning_rate = 0.1});
    check_range_matches_reference<T, Sgd>({.learning_rate = 0.1, .momentum = 0.9, .dampening = 0.3,
                                           .weight_decay = 0.01, .maximize = true});
    check_range_matches_reference<T, Sgd>({.learning_rate = 0.1, .momentum = 0.9, .weight_decay = 0.01,
                                           .nesterov = true});
    for (const bool amsgrad : {false, true})
        for (const bool maximize : {false, true}) {
            const optim::AdamOptions o{.learning_rate = 0.01, .weight_decay = 0.1, .amsgrad = amsgrad,
                                       .maximize = maximize};
            check_range_matches_reference<T, Adam>(o);
            check_range_matches_reference<T, AdamW>(o);
        }
}
