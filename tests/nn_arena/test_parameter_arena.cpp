#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "gcl/core/eigen.hpp"
#include "gcl/core/random.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/testing/gradcheck.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::WriteMode;
using gcl::nn::ParameterArena;

namespace {

// A minimal layer y = x W^T + b written against the arena's contract: it keeps handles, resolves
// views when it runs, and adds its parameter gradients into the current gradient target.
template <class T>
class TinyLinear {
public:
    TinyLinear(ParameterArena<T>& arena, const std::string& name, index_t in, index_t out)
        : arena_(arena),
          weight_(arena.add_parameter(name + ".weight", Shape{out, in})),
          bias_(arena.add_parameter(name + ".bias", Shape{out}, {.weight_decay = false})) {}

    Tensor<T> forward(const Tensor<T>& x) {
        x_ = x;
        const auto w = arena_.value(weight_);
        Tensor<T> y(Shape{x.dim(0), w.dim(0)});
        for (index_t n = 0; n < x.dim(0); ++n)
            for (index_t o = 0; o < w.dim(0); ++o) {
                T acc = arena_.value(bias_)(o);
                for (index_t i = 0; i < w.dim(1); ++i) acc += x(n, i) * w(o, i);
                y(n, o) = acc;
            }
        return y;
    }

    // Adds dL/dW through a view of the target (as a GEMM with beta = 1 would) and dL/db through
    // accumulate_grad.
    void backward(const Tensor<T>& dy) {
        auto gw = gcl::as_eigen(arena_.grad_target(weight_));
        gw.noalias() += gcl::as_eigen(dy.cview()).transpose() * gcl::as_eigen(x_.cview());
        Tensor<T> db(Shape{dy.dim(1)});
        for (index_t n = 0; n < dy.dim(0); ++n)
            for (index_t o = 0; o < dy.dim(1); ++o) db(o) += dy(n, o);
        arena_.accumulate_grad(bias_, db.cview());
    }

private:
    ParameterArena<T>& arena_;
    gcl::nn::ParamHandle weight_, bias_;
    Tensor<T> x_;
};

// prefix followed by k ("p7"), built without operator+ (GCC 12 warns falsely about it).
std::string numbered(const char* prefix, int k) {
    std::string s = prefix;
    s += std::to_string(k);
    return s;
}

template <class T>
void fill_random(gcl::TensorView<T> v, std::uint64_t seed) {
    gcl::Rng rng(seed);
    gcl::fill_normal<T>(v, rng);
}

}  // namespace

TEMPLATE_TEST_CASE("ParameterArena lays parameters out contiguously, in registration order", "[nn][arena]", float,
                   double) {
    ParameterArena<TestType> arena;
    const auto w = arena.add_parameter("conv.weight", Shape{4, 3, 3, 3});
    const auto b = arena.add_parameter("conv.bias", Shape{4}, {.weight_decay = false});
    const auto g = arena.add_parameter("bn.gamma", Shape{4}, {.weight_decay = false, .trainable = false});
    const auto mean = arena.add_buffer("bn.running_mean", Shape{4});

    CHECK(arena.size() == 108 + 4 + 4);
    CHECK(arena.parameter_count() == 3);
    CHECK(arena.buffer_count() == 1);
    CHECK(arena.buffer_size() == 4);
    CHECK(arena.info(w).offset == 0);
    CHECK(arena.info(b).offset == 108);
    CHECK(arena.info(g).offset == 112);
    CHECK(arena.info(w).shape == Shape{4, 3, 3, 3});
    CHECK(arena.info(w).options.weight_decay);
    CHECK_FALSE(arena.info(b).options.weight_decay);
    CHECK(arena.info(b).options.trainable);
    CHECK_FALSE(arena.info(g).options.trainable);
    CHECK(arena.parameters()[1].name == "conv.bias");
    CHECK(arena.parameter("bn.gamma") == g);
    CHECK(arena.buffer("bn.running_mean") == mean);
    CHECK_FALSE(arena.find_parameter("nope").has_value());
    CHECK_FALSE(arena.find_parameter("bn.running_mean").has_value());
    CHECK_FALSE(arena.find_buffer("conv.bias").has_value());

    // Named views alias the flat ones.
    arena.value(b)(2) = TestType(5);
    CHECK(arena.flat_values()(110) == TestType(5));
    CHECK(arena.value("conv.bias")(2) == TestType(5));
    arena.flat_grads()(1) = TestType(-3);
    CHECK(arena.grad(w)(0, 0, 0, 1) == TestType(-3));
    CHECK(arena.grad("conv.weight")(0, 0, 0, 1) == TestType(-3));
    arena.buffer_value(mean)(3) = TestType(0.5);
    CHECK(arena.flat_buffers()(3) == TestType(0.5));
    CHECK(arena.buffer_value("bn.running_mean")(3) == TestType(0.5));
    // Buffers live apart from parameters.
    for (index_t i = 0; i < arena.size(); ++i) CHECK(arena.flat_values()(i) == (i == 110 ? TestType(5) : TestType(0)));

    arena.zero_grad();
    CHECK(arena.grad(w)(0, 0, 0, 1) == TestType(0));
}

TEMPLATE_TEST_CASE("ParameterArena rejects bad names and handles", "[nn][arena]", float, double) {
    ParameterArena<TestType> arena;
    arena.add_parameter("a", Shape{2});
    arena.add_buffer("m", Shape{2});
    CHECK_THROWS_AS(arena.add_parameter("a", Shape{3}), gcl::Error);
    CHECK_THROWS_AS(arena.add_parameter("m", Shape{3}), gcl::Error);
    CHECK_THROWS_AS(arena.add_buffer("a", Shape{3}), gcl::Error);
    CHECK_THROWS_AS(arena.add_parameter("", Shape{3}), gcl::Error);
    CHECK_THROWS_AS(arena.add_parameter(std::string("x\0y", 3), Shape{3}), gcl::Error);
    CHECK_THROWS_AS(arena.add_parameter(std::string(2000, 'x'), Shape{3}), gcl::Error);
    CHECK_THROWS_AS(arena.value(gcl::nn::ParamHandle{7}), gcl::Error);
    CHECK_THROWS_AS(arena.buffer_value(gcl::nn::BufferHandle{1}), gcl::Error);
    CHECK_THROWS_AS(arena.value("b"), gcl::Error);
    CHECK_THROWS_AS(arena.buffer("a"), gcl::Error);
    try {
        arena.parameter("missing.weight");
        FAIL("no exception");
    } catch (const gcl::Error& e) {
        CHECK(std::string(e.what()).find("missing.weight") != std::string::npos);
    }
    // A failed registration changes nothing.
    CHECK(arena.size() == 2);
    CHECK(arena.parameter_count() == 1);
}

TEMPLATE_TEST_CASE("ParameterArena growth keeps values and handles", "[nn][arena]", float, double) {
    ParameterArena<TestType> arena;
    std::vector<gcl::nn::ParamHandle> handles;
    for (int k = 0; k < 50; ++k) {
        handles.push_back(arena.add_parameter(numbered("p", k), Shape{k + 1, 3}));
        auto v = arena.value(handles.back());
        auto g = arena.grad(handles.back());
        for (index_t i = 0; i < v.numel(); ++i) {
            v.data()[i] = TestType(k * 1000 + i);
            g.data()[i] = TestType(-k * 1000 - i);
        }
    }
    arena.add_buffer("running", Shape{10});
    index_t expected_offset = 0;
    for (int k = 0; k < 50; ++k) {
        const auto& info = arena.info(handles[k]);
        CHECK(info.offset == expected_offset);
        expected_offset += info.numel();
        const auto v = arena.value(handles[k]);
        const auto g = arena.grad(handles[k]);
        for (index_t i = 0; i < v.numel(); ++i) {
            REQUIRE(v.data()[i] == TestType(k * 1000 + i));
            REQUIRE(g.data()[i] == TestType(-k * 1000 - i));
        }
    }
    CHECK(arena.size() == expected_offset);

    // After reserve(), registering within the reservation moves nothing, so views stay valid.
    ParameterArena<TestType> reserved;
    reserved.reserve(1000, 100);
    const auto first = reserved.add_parameter("first", Shape{10});
    const auto view = reserved.value(first);
    const auto buf = reserved.add_buffer("b0", Shape{5});
    const auto buf_view = reserved.buffer_value(buf);
    for (int k = 0; k < 30; ++k) reserved.add_parameter(numbered("q", k), Shape{30});
    for (int k = 0; k < 9; ++k) reserved.add_buffer(numbered("b", k + 1), Shape{10});
    CHECK(reserved.value(first).data() == view.data());
    CHECK(reserved.buffer_value(buf).data() == buf_view.data());
    CHECK_THROWS_AS(reserved.reserve(-1), gcl::Error);
}

TEMPLATE_TEST_CASE("Gradients are written only inside a backward pass", "[nn][arena]", float, double) {
    ParameterArena<TestType> arena;
    const auto a = arena.add_parameter("a", Shape{3});
    Tensor<TestType> one(Shape{3}, TestType(1));
    CHECK_FALSE(arena.in_backward());
    CHECK_THROWS_AS(arena.accumulate_grad(a, one.cview()), gcl::Error);
    CHECK_THROWS_AS(arena.grad_target(a), gcl::Error);
    arena.begin_backward();
    CHECK(arena.in_backward());
    arena.accumulate_grad(a, one.cview());
    // Registering a parameter changes P, so the old target no longer fits.
    arena.add_parameter("b", Shape{2});
    CHECK_FALSE(arena.in_backward());
    CHECK_THROWS_AS(arena.accumulate_grad(a, one.cview()), gcl::Error);
}

TEMPLATE_TEST_CASE("Overwrite and accumulate modes on the arena's own gradients", "[nn][arena]", float, double) {
    ParameterArena<TestType> arena;
    const auto a = arena.add_parameter("a", Shape{2, 2});
    const auto b = arena.add_parameter("b", Shape{3});
    const Tensor<TestType> ga = Tensor<TestType>::from(Shape{2, 2}, {1, 2, 3, 4});
    const Tensor<TestType> gb = Tensor<TestType>::from(Shape{3}, {10, 20, 30});

    arena.flat_grads().data()[0] = TestType(99);  // stale contents
    arena.begin_backward(WriteMode::overwrite);
    CHECK(arena.grad_mode() == WriteMode::overwrite);
    arena.accumulate_grad(a, ga.cview());
    arena.accumulate_grad(a, ga.cview());  // two contributions within one pass add up
    CHECK(arena.grad(a)(0, 0) == TestType(2));
    CHECK(arena.grad(a)(1, 1) == TestType(8));
    CHECK(arena.grad(b)(0) == TestType(0));  // untouched by the pass: exactly zero

    arena.begin_backward(WriteMode::accumulate);
    CHECK(arena.grad_mode() == WriteMode::accumulate);
    arena.accumulate_grad(b, gb.cview());
    CHECK(arena.grad(a)(1, 1) == TestType(8));  // kept
    CHECK(arena.grad(b)(2) == TestType(30));

    arena.begin_backward(WriteMode::overwrite);
    arena.accumulate_grad(b, gb.cview());
    CHECK(arena.grad(a)(1, 1) == TestType(0));
    CHECK(arena.grad(b)(2) == TestType(30));

    // Adding through the target view (as a GEMM with beta = 1 does) is the same thing.
    auto target = arena.grad_target(b);
    target(1) += TestType(1);
    CHECK(arena.grad(b)(1) == TestType(21));

    // Contributions must have the parameter's shape; strided contributions are fine.
    CHECK_THROWS_AS(arena.accumulate_grad(a, gb.cview()), gcl::Error);
    const Tensor<TestType> gt = Tensor<TestType>::from(Shape{2, 2}, {1, 3, 2, 4});
    arena.begin_backward();
    arena.accumulate_grad(a, gt.cview().transpose(0, 1));
    CHECK(arena.grad(a)(0, 1) == TestType(2));
    CHECK(arena.grad(a)(1, 0) == TestType(3));
}

TEMPLATE_TEST_CASE("Gradient targets outside the arena: a flat vector or a row of K x P", "[nn][arena]", float,
                   double) {
    ParameterArena<TestType> arena;
    const auto a = arena.add_parameter("a", Shape{2});
    const auto b = arena.add_parameter("b", Shape{3});
    const index_t P = arena.size();
    Tensor<TestType> G(Shape{3, P}, TestType(7));  // garbage to be overwritten
    const Tensor<TestType> ga = Tensor<TestType>::from(Shape{2}, {1, 2});
    const Tensor<TestType> gb = Tensor<TestType>::from(Shape{3}, {3, 4, 5});

    arena.begin_backward(G.view(), 1, WriteMode::overwrite);
    arena.accumulate_grad(a, ga.cview());
    CHECK(arena.grad_target(b).data() == G.data() + P + 2);
    for (index_t j = 0; j < P; ++j) {
        CHECK(G(0, j) == TestType(7));  // other rows untouched
        CHECK(G(2, j) == TestType(7));
    }
    CHECK(G(1, 0) == TestType(1));
    CHECK(G(1, 1) == TestType(2));
    CHECK(G(1, 2) == TestType(0));  // b untouched by this pass: zero
    CHECK(arena.flat_grads()(0) == TestType(0));  // the arena's own gradients are untouched

    arena.begin_backward(G.view(), 2, WriteMode::accumulate);
    arena.accumulate_grad(b, gb.cview());
    CHECK(G(2, 0) == TestType(7));
    CHECK(G(2, 2) == TestType(10));
    CHECK(G(2, 4) == TestType(12));

    Tensor<TestType> flat(Shape{P}, TestType(1));
    arena.begin_backward(flat.view(), WriteMode::accumulate);
    arena.accumulate_grad(b, gb.cview());
    CHECK(flat(4) == TestType(6));
    CHECK(arena.flat_grad_target().data() == flat.data());

    // Shapes are checked.
    Tensor<TestType> wrong(Shape{3, P + 1});
    CHECK_THROWS_AS(arena.begin_backward(wrong.view(), 0, WriteMode::overwrite), gcl::Error);
    CHECK_THROWS_AS(arena.begin_backward(G.view(), 3, WriteMode::overwrite), gcl::Error);
    CHECK_THROWS_AS(arena.begin_backward(G.view(), -1, WriteMode::overwrite), gcl::Error);
    CHECK_THROWS_AS(arena.begin_backward(G.view(), WriteMode::overwrite), gcl::Error);  // 3P elements, not P
    Tensor<TestType> wide(Shape{P, 2});
    CHECK_THROWS_AS(arena.begin_backward(wide.view().select(1, 0), WriteMode::overwrite), gcl::Error);  // strided
}

TEST_CASE("K backward passes after one forward give K per-loss gradients (gradient-checked)", "[nn][arena]") {
    using T = double;
    ParameterArena<T> arena;
    TinyLinear<T> first(arena, "first", 4, 3);
    TinyLinear<T> second(arena, "second", 3, 2);
    arena.add_parameter("unused", Shape{5});  // reached by no loss: its columns stay zero
    fill_random<T>(arena.flat_values(), 11);
    const index_t P = arena.size();

    Tensor<T> x(Shape{5, 4});
    fill_random<T>(x.view(), 12);
    constexpr index_t K = 3;
    Tensor<T> weights(Shape{K, 5, 2});  // loss k = sum(weights[k] * model(x))
    fill_random<T>(weights.view(), 13);
    const auto loss_weights = [&](index_t k) {
        return Tensor<T>::copy_of(weights.cview().select(0, k));
    };
    const auto loss = [&](index_t k) {
        const Tensor<T> y = second.forward(first.forward(x));
        const Tensor<T> c = loss_weights(k);
        double s = 0;
        for (index_t i = 0; i < y.numel(); ++i) s += y.data()[i] * c.data()[i];
        return s;
    };

    // One forward, then K backward passes, each into its own row.
    Tensor<T> G(Shape{K, P}, T(42));
    second.forward(first.forward(x));
    for (index_t k = 0; k < K; ++k) {
        arena.begin_backward(G.view(), k, WriteMode::overwrite);
        const Tensor<T> dy = loss_weights(k);
        // dL/dh for the hidden activations h = first(x): dy W2, computed from the arena's W2.
        const auto w2 = arena.value("second.weight");
        Tensor<T> dh(Shape{5, 3});
        for (index_t n = 0; n < 5; ++n)
            for (index_t i = 0; i < 3; ++i)
                for (index_t o = 0; o < 2; ++o) dh(n, i) += dy(n, o) * w2(o, i);
        second.backward(dy);
        first.backward(dh);
    }

    for (index_t k = 0; k < K; ++k) {
        const Tensor<T> row = Tensor<T>::copy_of(G.cview().select(0, k));
        const auto result = gcl::testing::check_gradient([&] { return loss(k); }, arena.flat_values(), row.cview());
        INFO("loss " << k << ": " << result.message);
        CHECK(result.passed);
        const auto& unused = arena.info(arena.parameter("unused"));
        for (index_t j = unused.offset; j < unused.offset + unused.numel(); ++j) CHECK(row(j) == T(0));
    }
    // The rows differ: each is its own loss's gradient.
    double diff = 0;
    for (index_t j = 0; j < P; ++j) diff += std::abs(G(0, j) - G(1, j));
    CHECK(diff > 1e-3);
}
