// Every layer of gcl::nn: gradient checks in double (input and parameters), forward semantics,
// mode handling, seeded initialisation and dropout, and the errors they raise.
#include <omp.h>

#include <cmath>

#include "gcl/nn/activation.hpp"
#include "gcl/nn/batch_norm2d.hpp"
#include "gcl/nn/conv2d.hpp"
#include "gcl/nn/conv_transpose2d.hpp"
#include "gcl/nn/dropout.hpp"
#include "gcl/nn/global_avg_pool.hpp"
#include "gcl/nn/l2_normalize.hpp"
#include "gcl/nn/layer.hpp"
#include "gcl/testing/layer_gradcheck.hpp"
#include "gcl/nn/linear.hpp"
#include "gcl/nn/max_pool2d.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/ops/batch_norm.hpp"
#include "gcl/ops/conv2d.hpp"
#include "layer_cases.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

using namespace gcl_test;
namespace nn = gcl::nn;
namespace ops = gcl::ops;
using Arena = nn::ParameterArena<double>;
using Scope = nn::Scope<double>;

static_assert(nn::Layer<nn::Conv2d<float>> && nn::Layer<nn::Conv2d<double>>);
static_assert(nn::Layer<nn::ConvTranspose2d<float>> && nn::Layer<nn::BatchNorm2d<float>>);
static_assert(nn::Layer<nn::ReLU<float>> && nn::Layer<nn::LeakyReLU<double>> && nn::Layer<nn::MaxPool2d<float>>);
static_assert(nn::Layer<nn::Linear<float>> && nn::Layer<nn::GlobalAvgPool<double>> && nn::Layer<nn::Dropout<float>>);
static_assert(nn::Layer<nn::L2Normalize<float>>);

namespace {

struct NotALayer {
    using value_type = float;
    using device_type = gcl::cpu;
    gcl::ConstView<float> forward(gcl::ConstView<float> x) { return x; }
};
static_assert(!nn::Layer<NotALayer> && nn::HasLayerForward<NotALayer> && !nn::HasLayerBackward<NotALayer>);
static_assert(!nn::Layer<int> && !nn::HasLayerValueType<int>);

}  // namespace

// The gradient checks of every layer, its composites and the U-Net, written once over the device
// (tests/cuda/test_layers_cuda.cu runs the same cases on cuda).
TEMPLATE_LIST_TEST_CASE("every layer passes its gradient check in double on the cpu", "[nn][gradcheck]",
                        layer_cases::All) {
    layer_cases::require_gradients<TestType, gcl::cpu>();
}

TEST_CASE("Conv2d: parameter names, forward equals the op, output shape, no bias", "[nn][conv2d]") {
    gcl::Rng rng(11);
    Arena arena;
    auto conv = layer_cases::Conv2dStrided::make<double, gcl::cpu>(arena);  // 3x3, stride (2, 1), padding 1
    REQUIRE(arena.parameter_count() == 2);
    REQUIRE(arena.parameters()[0].name == "conv.weight");
    REQUIRE(arena.parameters()[1].name == "conv.bias");
    REQUIRE_FALSE(arena.parameters()[1].options.weight_decay);
    auto x = random<double>({2, 2, 7, 6}, rng);
    const auto y = copy(conv.forward(x.cview()));
    Tensor<double> expected(y.shape());
    ops::conv2d_forward(x, arena.value("conv.weight"), arena.value("conv.bias"), expected.view(),
                        {.stride = {2, 1}, .padding = {1, 1}});
    require_equal(y, expected, "forward");
    REQUIRE(conv.output_shape(x.shape()) == Shape{2, 3, 4, 6});

    Arena plain_arena;
    const auto plain = layer_cases::Conv2dPointwise::make<double, gcl::cpu>(plain_arena);
    REQUIRE(plain_arena.parameter_count() == 1);
    REQUIRE_FALSE(plain.has_bias());
}

TEST_CASE("ConvTranspose2d: PyTorch's weight layout, up-sampling shapes", "[nn][conv_transpose2d]") {
    Arena arena;
    nn::ConvTranspose2d<double> up(Scope(arena, 1).child("up"), {.in_channels = 3, .out_channels = 2});
    REQUIRE(arena.info(up.weight()).shape == Shape{3, 2, 2, 2});
    REQUIRE(up.output_shape(Shape{2, 3, 3, 4}) == Shape{2, 2, 6, 8});

    Arena arena2;
    const auto odd = layer_cases::ConvTranspose2dOdd::make<double, gcl::cpu>(arena2);
    REQUIRE(odd.output_shape(layer_cases::ConvTranspose2dOdd::input()) == Shape{1, 3, 6, 6});
}

TEST_CASE("BatchNorm2d: training and evaluation forward, running statistics in arena buffers",
          "[nn][batch_norm]") {
    gcl::Rng rng(13);
    Arena arena;
    nn::BatchNorm2d<double> bn(Scope(arena, 1).child("bn"), {.channels = 3, .momentum = 0.2});
    REQUIRE(arena.parameter_count() == 2);
    REQUIRE(arena.buffer_count() == 2);
    REQUIRE(arena.buffers()[0].name == "bn.running_mean");
    REQUIRE(arena.buffers()[1].name == "bn.running_var");
    for (int c = 0; c < 3; ++c) {
        REQUIRE(arena.value("bn.weight")(c) == 1.0);
        REQUIRE(arena.buffer_value("bn.running_var")(c) == 1.0);
    }
    auto gamma = arena.value("bn.weight");
    auto beta = arena.value("bn.bias");
    fill_uniform<double>(gamma, rng, 0.5, 1.5);
    fill_uniform<double>(beta, rng, -1, 1);
    auto x = random<double>({3, 3, 4, 5}, rng, -2, 3);

    SECTION("training: batch statistics, running estimates move by the momentum") {
        Tensor<double> rm({3}), rv({3}, 1.0), mean({3}), invstd({3}), expected(x.shape());
        ops::batch_norm_forward_train(x, gamma, beta, expected.view(), rm.view(), rv.view(), mean.view(), invstd.view(),
                                      {.momentum = 0.2});
        require_equal(bn.forward(x.cview()), expected, "forward");
        require_equal(arena.buffer_value("bn.running_mean"), rm, "running mean");
        require_equal(arena.buffer_value("bn.running_var"), rv, "running var");
    }
    SECTION("evaluation: running estimates, which forward leaves alone") {
        fill_uniform<double>(arena.buffer_value("bn.running_mean"), rng, -1, 1);
        fill_uniform<double>(arena.buffer_value("bn.running_var"), rng, 0.5, 2);
        const auto before = copy(arena.flat_buffers());
        bn.set_training(false);
        REQUIRE_FALSE(bn.training());
        Tensor<double> expected(x.shape());
        ops::batch_norm_forward_eval(x, gamma, beta, arena.buffer_value("bn.running_mean"),
                                     arena.buffer_value("bn.running_var"), expected.view());
        require_equal(bn.forward(x.cview()), expected, "forward");
        require_equal(arena.flat_buffers(), before, "buffers");
    }
    SECTION("backward uses the mode of its forward call") {
        bn.forward(x.cview());
        bn.set_training(false);
        const auto dy = random<double>(x.shape(), rng);
        arena.begin_backward();
        const auto dx_train = copy(bn.backward(dy.cview()));
        bn.set_training(true);
        bn.forward(x.cview());
        arena.begin_backward();
        require_equal(bn.backward(dy.cview()), dx_train, "dx");
    }
}

TEST_CASE("ReLU and LeakyReLU: the value at 0", "[nn][activation]") {
    Arena arena;
    nn::LeakyReLU<double> leaky(0.1);
    REQUIRE(leaky.negative_slope() == 0.1);

    const auto z = Tensor<double>::from({4}, {-2.0, 0.0, 0.5, -0.0});
    const auto y = copy(leaky.forward(z.cview()));
    REQUIRE(y(0) == -0.2);
    REQUIRE(y(1) == 0.0);
    REQUIRE(y(2) == 0.5);
    arena.begin_backward();
    const auto dx = copy(leaky.backward(Tensor<double>({4}, 1.0).cview()));
    REQUIRE(dx(1) == 0.1);  // the negative side's gradient at 0, as in PyTorch
    REQUIRE(dx(2) == 1.0);
}

TEST_CASE("MaxPool2d and GlobalAvgPool: shapes, the average", "[nn][pooling]") {
    gcl::Rng rng(15);
    auto x = random<double>({2, 3, 6, 8}, rng);
    nn::MaxPool2d<double> pool;
    REQUIRE(pool.output_shape(x.shape()) == Shape{2, 3, 3, 4});
    nn::GlobalAvgPool<double> gap;
    REQUIRE(gap.output_shape(x.shape()) == Shape{2, 3});
    const auto y = copy(gap.forward(x.cview()));
    double mean = 0;
    for (index_t h = 0; h < 6; ++h)
        for (index_t w = 0; w < 8; ++w) mean += x(1, 2, h, w) / 48.0;
    REQUIRE(std::abs(y(1, 2) - mean) < 1e-14);
}

TEST_CASE("Linear: forward with bias, parameters without", "[nn][linear]") {
    gcl::Rng rng(16);
    Arena arena;
    nn::Linear<double> fc(Scope(arena, 3).child("fc"),
                          {.in_features = 5, .out_features = 4, .bias_init = nn::Init::uniform(-1, 1)});
    auto x = random<double>({3, 5}, rng);
    REQUIRE(fc.output_shape(x.shape()) == Shape{3, 4});
    const auto y = copy(fc.forward(x.cview()));
    const auto w = arena.value("fc.weight");
    const auto b = arena.value("fc.bias");
    double y12 = b(2);
    for (index_t i = 0; i < 5; ++i) y12 += x(1, i) * w(2, i);
    REQUIRE(std::abs(y(1, 2) - y12) < 1e-13);

    Arena arena2;
    const auto nobias = layer_cases::LinearNoBias::make<double, gcl::cpu>(arena2);
    REQUIRE(arena2.parameter_count() == 1);
    REQUIRE(nobias.output_shape(x.shape()) == Shape{3, 2});
}

TEST_CASE("L2Normalize: unit length along channels", "[nn][normalize]") {
    gcl::Rng rng(17);
    nn::L2Normalize<double> norm;
    auto maps = random<double>({2, 5, 3, 3}, rng);
    const auto y = copy(norm.forward(maps.cview()));
    double s = 0;
    for (index_t c = 0; c < 5; ++c) s += y(1, c, 2, 0) * y(1, c, 2, 0);
    REQUIRE(std::abs(s - 1) < 1e-14);
}

TEST_CASE("Dropout: seeded, deterministic masks; inverted scaling; identity in evaluation", "[nn][dropout]") {
    gcl::Rng rng(18);
    Arena arena;
    Scope root(arena, 99);
    const auto x = random<double>({4, 8, 32, 32}, rng);  // enough elements for the mask fill to run in parallel
    nn::Dropout<double> drop(root.child("drop"), {.p = 0.25});

    const auto y = copy(drop.forward(x.cview()));
    const auto mask = copy(drop.mask());
    index_t dropped = 0;
    for (index_t i = 0; i < x.numel(); ++i) {
        const double m = mask.data()[i];
        REQUIRE((m == 0.0 || m == 1.0 / 0.75));
        dropped += m == 0.0;
        REQUIRE(y.data()[i] == x.data()[i] * m);
    }
    const double fraction = static_cast<double>(dropped) / static_cast<double>(x.numel());
    CHECK(std::abs(fraction - 0.25) < 0.01);
    // The mask is the inverted-dropout rule on the first counters of the layer's generator.
    const gcl::Rng fresh = root.child("drop").rng("mask");
    for (index_t i = 0; i < x.numel(); ++i) {
        const double u = gcl::uniform_at<double>(fresh.seed(), fresh.stream(), static_cast<std::uint64_t>(i), 0.0, 1.0);
        REQUIRE(mask.data()[i] == (u < 0.25 ? 0.0 : 1.0 / 0.75));
    }
    REQUIRE(drop.rng().offset() == static_cast<std::uint64_t>(x.numel()));

    // backward is dy * mask: the exact derivative of x -> x * mask.
    const auto dy = random<double>(x.shape(), rng);
    const auto dx = copy(drop.backward(dy.cview()));
    for (index_t i = 0; i < x.numel(); ++i) REQUIRE(dx.data()[i] == dy.data()[i] * mask.data()[i]);
    // and again after another backward call: the mask belongs to the forward call
    require_equal(drop.backward(dy.cview()), dx, "second backward");

    // A second forward draws a new mask; a twin layer (same seed and name) repeats the sequence,
    // with one thread or several.
    const auto second = copy(drop.forward(x.cview()));
    bool differs = false;
    for (index_t i = 0; i < x.numel() && !differs; ++i) differs = second.data()[i] != y.data()[i];
    REQUIRE(differs);
    Arena other_arena;
    nn::Dropout<double> twin(Scope(other_arena, 99).child("drop"), {.p = 0.25});
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const auto twin_first = copy(twin.forward(x.cview()));
    omp_set_num_threads(threads);
    require_equal(twin_first, y, "twin, first call");
    require_equal(twin.forward(x.cview()), second, "twin, second call");
    nn::Dropout<double> renamed(Scope(other_arena, 99).child("other"), {.p = 0.25});
    const auto renamed_y = copy(renamed.forward(x.cview()));
    differs = false;
    for (index_t i = 0; i < x.numel() && !differs; ++i) differs = renamed_y.data()[i] != y.data()[i];
    REQUIRE(differs);

    // Evaluation mode: the identity, drawing nothing.
    drop.set_training(false);
    const auto offset = drop.rng().offset();
    require_equal(drop.forward(x.cview()), x, "evaluation forward");
    require_equal(drop.backward(dy.cview()), dy, "evaluation backward");
    REQUIRE(drop.rng().offset() == offset);

    require_error([&] { nn::Dropout<double>(root.child("bad"), {.p = 1.0}); }, {"nn::Dropout", "'bad'", "[0, 1)"});
}

TEST_CASE("Dropout: finite-difference check with the mask held fixed", "[nn][dropout][gradcheck]") {
    // Each evaluation of the objective uses a fresh twin (same seed and name), so every forward
    // call draws the same mask and the objective is a smooth function of x.
    gcl::Rng rng(41);
    Arena arena;
    const Scope scope = Scope(arena, 5).child("drop");
    auto x = random<double>({2, 3, 4, 4}, rng);
    const auto w = random<double>(x.shape(), rng);
    const auto objective = [&] {
        nn::Dropout<double> twin(scope, {.p = 0.4});
        const auto y = twin.forward(x.cview());
        double s = 0;
        for (index_t i = 0; i < y.numel(); ++i) s += w.data()[i] * y.data()[i];
        return s;
    };
    nn::Dropout<double> drop(scope, {.p = 0.4});
    drop.forward(x.cview());
    const auto dx = copy(drop.backward(w.cview()));
    const auto result = gcl::testing::check_gradient(objective, x.view(), dx.cview());
    INFO(result.message);
    REQUIRE(result.passed);
}

TEMPLATE_TEST_CASE("Layers run in float and double and give the same results", "[nn][types]", float, double) {
    using T = TestType;
    gcl::Rng rng(19);
    nn::ParameterArena<T> arena;
    nn::ParameterArena<double> reference_arena;
    nn::Conv2d<T> conv(nn::Scope<T>(arena, 4).child("conv"), {.in_channels = 2, .out_channels = 4, .padding = {1, 1}});
    nn::Conv2d<double> reference(Scope(reference_arena, 4).child("conv"),
                                 {.in_channels = 2, .out_channels = 4, .padding = {1, 1}});
    // Initialisation draws the same values (to T's precision).
    require_close(arena.flat_values(), reference_arena.flat_values(), 1e-6, 1e-7, "initial weights");
    const auto xd = random<double>({2, 2, 5, 5}, rng);
    Tensor<T> x(xd.shape());
    for (index_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<T>(xd.data()[i]);
    for (index_t i = 0; i < arena.size(); ++i)
        reference_arena.flat_values().data()[i] = static_cast<double>(arena.flat_values().data()[i]);
    Tensor<double> xr(x.shape());
    for (index_t i = 0; i < x.numel(); ++i) xr.data()[i] = static_cast<double>(x.data()[i]);
    require_close(conv.forward(x.cview()), reference.forward(xr.cview()), gcl::testing::tolerance<T>::rtol,
                  gcl::testing::tolerance<T>::atol, "conv forward");
}

TEST_CASE("Layer errors name the layer and the shapes", "[nn][errors]") {
    Arena arena;
    Scope root(arena, 1);
    nn::Conv2d<double> conv(root.child("encoder").child("conv1"), {.in_channels = 3, .out_channels = 4});
    const Tensor<double> x({2, 3, 5, 5}), wrong({2, 2, 5, 5});
    require_error(
        [&] {
            conv.backward(Tensor<double>({2, 4, 3, 3}).cview());
        },
        {"nn::Conv2d::backward", "'encoder.conv1'", "before forward"});
    require_error([&] { conv.forward(wrong.cview()); },
                  {"nn::Conv2d", "'encoder.conv1'", "[N, 3, H, W]", "[2, 2, 5, 5]"});
    conv.forward(x.cview());
    arena.begin_backward();
    require_error(
        [&] {
            conv.backward(Tensor<double>({2, 4, 5, 5}).cview());
        },
        {"'encoder.conv1'", "dy has shape [2, 4, 5, 5]", "[2, 4, 3, 3]"});
    arena.end_backward();
    require_error(
        [&] {
            conv.backward(Tensor<double>({2, 4, 3, 3}).cview());
        },
        {"no backward pass has begun", "encoder.conv1.weight"});

    nn::Linear<double> fc(root.child("fc"), {.in_features = 4, .out_features = 2});
    require_error([&] { fc.forward(Tensor<double>({3, 5}).cview()); }, {"nn::Linear", "'fc'", "[N, 4]", "[3, 5]"});
    nn::BatchNorm2d<double> bn(root.child("bn"), {.channels = 2});
    require_error(
        [&] {
            bn.forward(Tensor<double>({1, 2, 1, 1}).cview());
        },
        {"'bn'", "more than one value per channel"});
    require_error([&] { nn::BatchNorm2d<double>(root.child("bn2"), {.channels = 2, .momentum = 1.5}); },
                  {"'bn2'", "momentum"});
    require_error([&] { root.child("a.b"); }, {"nn::Scope::child", "'a.b'"});
    require_error(
        [&] { nn::Conv2d<double>(root.child("encoder").child("conv1"), {.in_channels = 3, .out_channels = 4}); },
        {"'encoder.conv1.weight' is already registered"});
    nn::MaxPool2d<double> pool;
    require_error([&] { pool.forward(Tensor<double>({2, 3}).cview()); }, {"nn::MaxPool2d", "[N, C, H, W]", "[2, 3]"});
}

TEST_CASE("Initialisation: Kaiming and Xavier statistics, seeded by name", "[nn][init]") {
    Arena arena;
    Scope root(arena, 2024);
    const Shape w{256, 64, 3, 3};
    const auto h = root.parameter("kaiming", w, nn::Init::kaiming_normal(0.01));
    const auto v = arena.value(h);
    double sum = 0, sq = 0;
    for (index_t i = 0; i < v.numel(); ++i) {
        sum += v.data()[i];
        sq += v.data()[i] * v.data()[i];
    }
    const double n = static_cast<double>(v.numel());
    const double std = std::sqrt(sq / n - (sum / n) * (sum / n));
    const double expected = std::sqrt(2.0 / (1.0 + 0.01 * 0.01)) / std::sqrt(64.0 * 9.0);
    CHECK(std::abs(std / expected - 1) < 0.01);
    CHECK(std::abs(sum / n) < 0.01 * expected);
    // The values are gcl::fill_normal's draws from the parameter's generator, bit for bit.
    Tensor<double> drawn(w);
    gcl::Rng generator = root.rng("kaiming");
    gcl::fill_normal<double>(drawn.view(), generator, 0.0, expected);
    require_equal(v, drawn, "the generator's draws");

    const auto x = root.parameter("xavier", {100, 50}, nn::Init::xavier_uniform(2.0));
    const double bound = 2.0 * std::sqrt(6.0 / 150.0);
    double largest = 0;
    for (index_t i = 0; i < 5000; ++i) largest = std::max(largest, std::abs(arena.value(x).data()[i]));
    REQUIRE(largest <= bound);
    CHECK(largest > 0.99 * bound);

    const auto fan_out = root.parameter("fan_out", {40, 10}, nn::Init::kaiming_uniform(0, nn::FanMode::fan_out));
    largest = 0;
    for (index_t i = 0; i < 400; ++i) largest = std::max(largest, std::abs(arena.value(fan_out).data()[i]));
    REQUIRE(largest <= std::sqrt(3.0) * std::sqrt(2.0) / std::sqrt(40.0));
    CHECK(largest > 0.95 * std::sqrt(3.0) * std::sqrt(2.0) / std::sqrt(40.0));

    // The values depend on the seed and the full name only: another arena, another registration
    // order, the same values.
    Arena other;
    Scope other_root(other, 2024);
    other_root.parameter("padding", {7}, nn::Init::normal(0, 1));
    const auto again = other_root.parameter("kaiming", w, nn::Init::kaiming_normal(0.01));
    require_equal(other.value(again), arena.value(h), "same seed and name");
    const auto renamed = other_root.parameter("kaiming2", w, nn::Init::kaiming_normal(0.01));
    REQUIRE(other.value(renamed).data()[0] != arena.value(h).data()[0]);
    Arena reseeded;
    const auto other_seed = Scope(reseeded, 2025).parameter("kaiming", w, nn::Init::kaiming_normal(0.01));
    REQUIRE(reseeded.value(other_seed).data()[0] != arena.value(h).data()[0]);

    REQUIRE(nn::fans_of({8, 4, 3, 3}).fan_in == 36);
    REQUIRE(nn::fans_of({8, 4, 3, 3}).fan_out == 72);
    REQUIRE(nn::fans_of({5}).fan_in == 5);
    require_error([&] { root.parameter("bad", {3}, nn::Init::uniform(1, 0)); }, {"nn::initialize", "ordered"});
}
