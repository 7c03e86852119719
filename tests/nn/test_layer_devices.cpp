// Layers as templates over the device: the contract's device_type requirement, the cpu default,
// and layers on an explicit ParameterArena<T, gcl::cpu> reading and writing their parameters
// through the arena (values in, gradients out, a round trip through another arena).
#include <string>
#include <type_traits>
#include <vector>

#include "gcl/nn/activation.hpp"
#include "gcl/nn/batch_norm1d.hpp"
#include "gcl/nn/batch_norm2d.hpp"
#include "gcl/nn/conv2d.hpp"
#include "gcl/nn/conv_block.hpp"
#include "gcl/nn/conv_transpose2d.hpp"
#include "gcl/nn/dropout.hpp"
#include "gcl/nn/global_avg_pool.hpp"
#include "gcl/nn/image_head.hpp"
#include "gcl/nn/l2_normalize.hpp"
#include "gcl/nn/layer.hpp"
#include "gcl/nn/linear.hpp"
#include "gcl/nn/max_pool2d.hpp"
#include "gcl/nn/pixel_head.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/nn/sequential.hpp"
#include "gcl/nn/transfer.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/nn/unet_decoder.hpp"
#include "gcl/nn/unet_encoder.hpp"
#include "compile_fail/non_layers.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

using namespace gcl_test;
namespace nn = gcl::nn;
using gcl::cpu;

namespace {

// Every layer, composite and head, instantiated for an explicit device, is a layer of that device.
template <class L, class D>
constexpr bool layer_on = nn::Layer<L> && std::is_same_v<typename L::device_type, D>;

static_assert(layer_on<nn::Conv2d<float, cpu>, cpu> && layer_on<nn::Conv2d<double, cpu>, cpu>);
static_assert(layer_on<nn::ConvTranspose2d<float, cpu>, cpu> && layer_on<nn::Linear<double, cpu>, cpu>);
static_assert(layer_on<nn::BatchNorm2d<float, cpu>, cpu> && layer_on<nn::BatchNorm1d<float, cpu>, cpu>);
static_assert(layer_on<nn::ReLU<float, cpu>, cpu> && layer_on<nn::LeakyReLU<double, cpu>, cpu>);
static_assert(layer_on<nn::MaxPool2d<float, cpu>, cpu> && layer_on<nn::GlobalAvgPool<float, cpu>, cpu>);
static_assert(layer_on<nn::Dropout<float, cpu>, cpu> && layer_on<nn::L2Normalize<double, cpu>, cpu>);
static_assert(layer_on<nn::ConvBlock<float, cpu>, cpu> && layer_on<nn::UNetEncoder<float, cpu>, cpu>);
static_assert(layer_on<nn::UNet<float, cpu>, cpu> && layer_on<nn::ImageHead<float, cpu>, cpu>);
static_assert(layer_on<nn::PixelHead<double, cpu>, cpu>);
static_assert(layer_on<nn::Sequential<nn::Conv2d<float, cpu>, nn::ReLU<float, cpu>>, cpu>);

// The device defaults to cpu: existing code names the same types.
static_assert(std::is_same_v<nn::Conv2d<float>, nn::Conv2d<float, cpu>>);
static_assert(std::is_same_v<nn::UNet<double>, nn::UNet<double, cpu>>);
static_assert(std::is_same_v<nn::Scope<float>, nn::Scope<float, cpu>>);

// Without a device_type a type is not a layer, whatever members it has.
using nn_non_layers::NoDevice;
static_assert(!nn::HasLayerDevice<NoDevice> && !nn::Layer<NoDevice> && !nn::HasLayerForward<NoDevice>);

// With a device_type but without backward it is not a layer either.
static_assert(nn::HasLayerDevice<nn_non_layers::NoBackward> && nn::HasLayerForward<nn_non_layers::NoBackward> &&
              !nn::HasLayerBackward<nn_non_layers::NoBackward> && !nn::Layer<nn_non_layers::NoBackward>);

// The same members with a device tag are a layer.
struct HostIdentity : NoDevice {
    using device_type = cpu;
};
static_assert(nn::HasLayerDevice<HostIdentity> && nn::Layer<HostIdentity>);

// A device_type that is not a device tag is rejected.
struct NotADevice : NoDevice {
    using device_type = int;
};
static_assert(!nn::HasLayerDevice<NotADevice> && !nn::Layer<NotADevice>);

// The views are checked on the declared device: host views do not make a cuda layer.
struct HostViewsOnCuda : NoDevice {
    using device_type = gcl::cuda;
};
static_assert(nn::HasLayerDevice<HostViewsOnCuda> && !nn::HasLayerForward<HostViewsOnCuda> &&
              !nn::Layer<HostViewsOnCuda>);

using Arena = nn::ParameterArena<double, cpu>;
using Stack = nn::Sequential<nn::Conv2d<double, cpu>, nn::BatchNorm2d<double, cpu>, nn::LeakyReLU<double, cpu>,
                             nn::ConvTranspose2d<double, cpu>>;

Stack make_stack(const nn::Scope<double, cpu>& s) {
    return Stack{nn::Conv2d<double, cpu>(s.child("conv"), {.in_channels = 2, .out_channels = 3, .padding = {1, 1}}),
                 nn::BatchNorm2d<double, cpu>(s.child("bn"), {.channels = 3}), nn::LeakyReLU<double, cpu>(0.1),
                 nn::ConvTranspose2d<double, cpu>(s.child("up"), {.in_channels = 3, .out_channels = 2})};
}

}  // namespace

TEST_CASE("layers on an explicit cpu arena read their parameters from it and write gradients into it",
          "[nn][device]") {
    Arena arena;
    Stack net = make_stack(nn::Scope<double, cpu>(arena, 21).child("net"));
    const std::vector<std::string> names{"net.conv.weight", "net.conv.bias", "net.bn.weight",
                                         "net.bn.bias",     "net.up.weight", "net.up.bias"};
    REQUIRE(arena.parameter_count() == names.size());
    for (std::size_t i = 0; i < names.size(); ++i) REQUIRE(arena.parameters()[i].name == names[i]);
    REQUIRE(net.get<0>().weight() == arena.parameter("net.conv.weight"));
    REQUIRE(net.get<3>().bias() == arena.parameter("net.up.bias"));

    gcl::Rng rng(5);
    const auto x = random<double>({2, 2, 4, 4}, rng);
    const auto y0 = copy(net.forward(x.cview()));
    REQUIRE(y0.shape() == Shape{2, 2, 8, 8});

    // A round trip of every parameter and buffer through another arena restores the outputs
    // exactly; a change made through the arena in between takes effect at the next forward.
    Arena saved;
    (void)make_stack(nn::Scope<double, cpu>(saved, 99).child("net"));
    const auto out = nn::transfer_parameters(arena, saved);
    REQUIRE(out.copied.size() == names.size() + 2);  // and the running mean and variance
    for (index_t i = 0; i < arena.size(); ++i) arena.flat_values().data()[i] += 0.25;
    const auto y_changed = copy(net.forward(x.cview()));
    REQUIRE_FALSE(std::equal(y_changed.data(), y_changed.data() + y_changed.numel(), y0.data()));
    nn::transfer_parameters(saved, arena);
    const auto y1 = copy(net.forward(x.cview()));
    REQUIRE(std::equal(y1.data(), y1.data() + y1.numel(), y0.data()));

    // Gradients go to the arena's target at the layers' handles; a second target gets the same.
    const auto dy = random<double>(y0.shape(), rng);
    arena.begin_backward();
    const auto dx = copy(net.backward(dy.cview()));
    REQUIRE(dx.shape() == x.shape());
    gcl::Tensor<double> G(Shape{2, arena.size()});
    arena.begin_backward(G.view(), 1, gcl::WriteMode::overwrite);
    net.backward(dy.cview());
    arena.end_backward();
    const auto own = arena.flat_grads();
    REQUIRE(std::equal(own.data(), own.data() + own.numel(), G.view().select(0, 1).data()));
    double weight_grad = 0;
    const auto dw = arena.grad(net.get<0>().weight());
    for (index_t i = 0; i < dw.numel(); ++i) weight_grad += std::abs(dw.data()[i]);
    REQUIRE(weight_grad > 0);
}

TEST_CASE("the weight-and-bias layers register, name and check their parameters alike", "[nn][device]") {
    Arena arena;
    const nn::Scope<double, cpu> s(arena, 3);
    nn::Conv2d<double, cpu> conv(s.child("c"), {.in_channels = 1, .out_channels = 2, .bias = false});
    nn::ConvTranspose2d<double, cpu> up(s.child("u"), {.in_channels = 2, .out_channels = 1, .bias = false});
    nn::Linear<double, cpu> fc(s.child("f"), {.in_features = 3, .out_features = 2, .bias = false});
    REQUIRE(arena.parameter_count() == 3);
    REQUIRE_FALSE(conv.has_bias());
    REQUIRE_FALSE(up.has_bias());
    REQUIRE_FALSE(fc.has_bias());
    require_error([&] { (void)conv.bias(); }, {"nn::Conv2d::bias", "'c'", "has no bias"});
    require_error([&] { (void)up.bias(); }, {"nn::ConvTranspose2d::bias", "'u'", "has no bias"});
    require_error([&] { (void)fc.bias(); }, {"nn::Linear::bias", "'f'", "has no bias"});

    nn::Linear<double, cpu> biased(s.child("g"), {.in_features = 3, .out_features = 2});
    REQUIRE(arena.info(biased.bias()).name == "g.bias");
    REQUIRE_FALSE(arena.info(biased.bias()).options.weight_decay);
    REQUIRE(arena.info(biased.weight()).options.weight_decay);
}

TEST_CASE("the two heads share one projection and keep their parameter names and order", "[nn][device]") {
    Arena image_arena, pixel_arena;
    nn::ImageHead<double, cpu> image(nn::Scope<double, cpu>(image_arena, 1).child("ih"),
                                     {.in_channels = 4, .hidden_features = 3, .out_features = 2});
    nn::PixelHead<double, cpu> pixel(nn::Scope<double, cpu>(pixel_arena, 1).child("ph"),
                                     {.in_channels = 4, .hidden_channels = 3, .out_channels = 2});
    // The image head's maps have no bias: the batch norm after each cancels it.
    const std::vector<std::string> image_names{"ih.fc1.weight", "ih.fc2.weight", "ih.bn1.weight", "ih.bn1.bias",
                                               "ih.bn2.weight", "ih.bn2.bias"};
    const std::vector<std::string> pixel_names{"ph.conv1.weight", "ph.conv1.bias", "ph.conv2.weight",
                                               "ph.conv2.bias"};
    REQUIRE(image_arena.parameter_count() == image_names.size());
    for (std::size_t i = 0; i < image_names.size(); ++i) REQUIRE(image_arena.parameters()[i].name == image_names[i]);
    REQUIRE(pixel_arena.parameter_count() == pixel_names.size());
    for (std::size_t i = 0; i < pixel_names.size(); ++i) REQUIRE(pixel_arena.parameters()[i].name == pixel_names[i]);
    REQUIRE(image.fc2().weight() == image_arena.parameter("ih.fc2.weight"));
    REQUIRE(pixel.conv1().options().kernel == gcl::Extent2{1, 1});

    gcl::Rng rng(2);
    const auto f = random<double>({3, 4, 2, 2}, rng);
    const auto e = image.forward(f.cview());
    const auto p = pixel.forward(f.cview());
    REQUIRE(e.shape() == Shape{3, 2});
    REQUIRE(p.shape() == Shape{3, 2, 2, 2});
    for (index_t n = 0; n < 3; ++n) {
        const double norm2 = e(n, 0) * e(n, 0) + e(n, 1) * e(n, 1);
        REQUIRE(norm2 == Approx(1.0).epsilon(1e-12));
    }

    // The pixel head is its layers called by hand, with the same names and seed, bit for bit.
    Arena by_hand_arena;
    const nn::Scope<double, cpu> ph = nn::Scope<double, cpu>(by_hand_arena, 1).child("ph");
    nn::Conv2d<double, cpu> conv1(ph.child("conv1"), {.in_channels = 4, .out_channels = 3, .kernel = {1, 1}});
    nn::Conv2d<double, cpu> conv2(ph.child("conv2"), {.in_channels = 3,
                                                      .out_channels = 2,
                                                      .kernel = {1, 1},
                                                      .weight_init = nn::Init::xavier_uniform()});
    nn::ReLU<double, cpu> relu;
    nn::L2Normalize<double, cpu> l2;
    const auto expected = copy(l2.forward(conv2.forward(relu.forward(conv1.forward(f.cview())))));
    REQUIRE(std::equal(expected.data(), expected.data() + expected.numel(), p.data()));
    const auto dp = random<double>(p.shape(), rng);
    pixel_arena.begin_backward();
    const auto dx = copy(pixel.backward(dp.cview()));
    by_hand_arena.begin_backward();
    const auto dx_by_hand = copy(conv1.backward(relu.backward(conv2.backward(l2.backward(dp.cview())))));
    REQUIRE(std::equal(dx.data(), dx.data() + dx.numel(), dx_by_hand.data()));
    REQUIRE(std::equal(pixel_arena.flat_grads().data(), pixel_arena.flat_grads().data() + pixel_arena.size(),
                       by_hand_arena.flat_grads().data()));
    image.set_training(false);
    pixel.set_training(false);
    REQUIRE_FALSE(image.training());
    REQUIRE_FALSE(pixel.conv2().training());
}
