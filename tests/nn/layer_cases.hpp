#pragma once
// Every layer of gcl::nn, its composites and the U-Net, written once over the device. A case
// names a layer, its input shape and how its parameters are set; two bodies run it:
//
//   require_gradients<Case, D>()       finite differences in double on device D (test_layers.cpp
//                                      on the cpu, tests/cuda/test_layers_cuda.cu on cuda)
//   require_cpu_parity<Case, T, D>()   the same forward and backward on device D and on the cpu
//                                      from the same parameters: outputs, input gradients,
//                                      parameter gradients and running statistics
//
// Parameters are set on the host (a case's prepare()) and copied to the device, so parity does
// not depend on how the two devices draw initial values (tests/cuda/test_random_cuda.cu checks
// those).
#include <catch2/catch.hpp>

#include <initializer_list>
#include <string>
#include <tuple>
#include <type_traits>

#include "gcl/core/random.hpp"
#include "gcl/nn/activation.hpp"
#include "gcl/nn/batch_norm1d.hpp"
#include "gcl/nn/batch_norm2d.hpp"
#include "gcl/nn/conv2d.hpp"
#include "gcl/nn/conv_block.hpp"
#include "gcl/nn/conv_transpose2d.hpp"
#include "gcl/nn/global_avg_pool.hpp"
#include "gcl/nn/image_head.hpp"
#include "gcl/nn/l2_normalize.hpp"
#include "gcl/nn/linear.hpp"
#include "gcl/nn/max_pool2d.hpp"
#include "gcl/nn/pixel_head.hpp"
#include "gcl/nn/scope.hpp"
#include "gcl/nn/sequential.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/transfer.hpp"
#include "gcl/testing/layer_gradcheck.hpp"
#include "support/cuda_parity.hpp"
#include "support/tensors.hpp"

namespace layer_cases {

namespace nn = gcl::nn;
using gcl::Shape;
using gcl::Tensor;
template <class T, class D = gcl::cpu>
using Arena = nn::ParameterArena<T, D>;

// What a case leaves as it is unless it says otherwise: inputs in [-1, 1), the layer's initial
// parameters, training mode.
struct Defaults {
    static constexpr double input_low = -1, input_high = 1;
    template <class T>
    static void prepare(Arena<T>&, gcl::Rng&) {}
    template <class L>
    static void set_mode(L&) {}
};

// A layer without parameters or options, made as Layer<T, D>().
template <template <class, class> class Layer>
struct WithoutParameters : Defaults {
    template <class T, class D>
    static auto make(Arena<T, D>&) {
        return Layer<T, D>();
    }
};

// Each named parameter of a host arena drawn uniformly from [lo, hi).
template <class T>
void fill_named(Arena<T>& arena, gcl::Rng& rng, std::initializer_list<const char*> names, double lo, double hi) {
    for (const char* name : names) gcl::fill_uniform<T>(arena.value(name), rng, static_cast<T>(lo), static_cast<T>(hi));
}

// Batch-norm affines away from (1, 0): their gradients are checked at general values.
template <class T>
void randomise_batch_norms(Arena<T>& arena, gcl::Rng& rng) {
    for (const auto& p : arena.parameters()) {
        if (p.name.find(".bn") == std::string::npos) continue;
        const bool scale = p.name.ends_with(".weight");
        gcl::fill_uniform<T>(arena.value(p.name), rng, static_cast<T>(scale ? 0.5 : -0.5), static_cast<T>(scale ? 1.5 : 0.5));
    }
}

struct Conv2dStrided : Defaults {
    static constexpr const char* name = "Conv2d 3x3, stride (2, 1), padding 1, bias";
    static Shape input() { return {2, 2, 7, 6}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::Conv2d<T, D>(nn::Scope<T, D>(arena, 5).child("conv"), {.in_channels = 2,
                                                                            .out_channels = 3,
                                                                            .kernel = {3, 3},
                                                                            .stride = {2, 1},
                                                                            .padding = {1, 1},
                                                                            .weight_init = nn::Init::uniform(-1, 1),
                                                                            .bias_init = nn::Init::uniform(-1, 1)});
    }
};

struct Conv2dPointwise : Defaults {
    static constexpr const char* name = "Conv2d 1x1 without bias";
    static Shape input() { return {2, 3, 4, 4}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::Conv2d<T, D>(nn::Scope<T, D>(arena, 5).child("c"),
                                {.in_channels = 3, .out_channels = 2, .kernel = {1, 1}, .bias = false});
    }
};

struct ConvTranspose2dUp : Defaults {
    static constexpr const char* name = "ConvTranspose2d 2x2, stride 2";
    static Shape input() { return {2, 3, 3, 4}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::ConvTranspose2d<T, D>(nn::Scope<T, D>(arena, 1).child("up"), {.in_channels = 3, .out_channels = 2});
    }
    template <class T>
    static void prepare(Arena<T>& arena, gcl::Rng& rng) {
        fill_named(arena, rng, {"up.bias"}, -1, 1);
    }
};

struct ConvTranspose2dOdd : Defaults {
    static constexpr const char* name = "ConvTranspose2d 3x3, stride 2, padding 1, output padding 1";
    static Shape input() { return {1, 2, 3, 3}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::ConvTranspose2d<T, D>(nn::Scope<T, D>(arena, 1).child("up"), {.in_channels = 2,
                                                                                   .out_channels = 3,
                                                                                   .kernel = {3, 3},
                                                                                   .stride = {2, 2},
                                                                                   .padding = {1, 1},
                                                                                   .output_padding = {1, 1},
                                                                                   .bias = false});
    }
};

template <bool Training>
struct BatchNorm2dIn : Defaults {
    static constexpr const char* name = Training ? "BatchNorm2d, training" : "BatchNorm2d, evaluation";
    static constexpr double input_low = -2, input_high = 3;
    static Shape input() { return {3, 3, 4, 5}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::BatchNorm2d<T, D>(nn::Scope<T, D>(arena, 1).child("bn"), {.channels = 3, .momentum = 0.2});
    }
    template <class T>
    static void prepare(Arena<T>& arena, gcl::Rng& rng) {
        fill_named(arena, rng, {"bn.weight"}, 0.5, 1.5);
        fill_named(arena, rng, {"bn.bias"}, -1, 1);
        gcl::fill_uniform<T>(arena.buffer_value("bn.running_mean"), rng, T(-1), T(1));
        gcl::fill_uniform<T>(arena.buffer_value("bn.running_var"), rng, T(0.5), T(2));
    }
    template <class L>
    static void set_mode(L& layer) {
        layer.set_training(Training);
    }
};

template <bool Training>
struct BatchNorm1dIn : BatchNorm2dIn<Training> {
    static constexpr const char* name = Training ? "BatchNorm1d, training" : "BatchNorm1d, evaluation";
    static Shape input() { return {5, 3}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::BatchNorm1d<T, D>(nn::Scope<T, D>(arena, 1).child("bn"), {.channels = 3, .momentum = 0.2});
    }
};

struct ReLUCase : WithoutParameters<nn::ReLU> {
    static constexpr const char* name = "ReLU";
    static Shape input() { return {2, 3, 4, 5}; }
};

struct LeakyReLUCase : ReLUCase {
    static constexpr const char* name = "LeakyReLU 0.1";
    template <class T, class D>
    static auto make(Arena<T, D>&) {
        return nn::LeakyReLU<T, D>(0.1);
    }
};

struct MaxPool2dCase : WithoutParameters<nn::MaxPool2d> {
    static constexpr const char* name = "MaxPool2d 2x2";
    static Shape input() { return {2, 3, 6, 8}; }
};

struct MaxPool2dOverlapping : MaxPool2dCase {
    static constexpr const char* name = "MaxPool2d 3x3, stride 2, padding 1 (overlapping windows)";
    template <class T, class D>
    static auto make(Arena<T, D>&) {
        return nn::MaxPool2d<T, D>({.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
    }
};

struct GlobalAvgPoolCase : WithoutParameters<nn::GlobalAvgPool> {
    static constexpr const char* name = "GlobalAvgPool";
    static Shape input() { return MaxPool2dCase::input(); }
};

struct LinearBias : Defaults {
    static constexpr const char* name = "Linear with bias";
    static Shape input() { return {3, 5}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::Linear<T, D>(nn::Scope<T, D>(arena, 3).child("fc"),
                                {.in_features = 5, .out_features = 4, .bias_init = nn::Init::uniform(-1, 1)});
    }
};

struct LinearNoBias : LinearBias {
    static constexpr const char* name = "Linear without bias";
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::Linear<T, D>(nn::Scope<T, D>(arena, 3).child("fc"),
                                {.in_features = 5, .out_features = 2, .bias = false});
    }
};

struct L2NormalizeRows : WithoutParameters<nn::L2Normalize> {
    static constexpr const char* name = "L2Normalize along features";
    static Shape input() { return {4, 6}; }
};

struct L2NormalizeMaps : L2NormalizeRows {
    static constexpr const char* name = "L2Normalize along channels";
    static Shape input() { return {2, 5, 3, 3}; }
};

// conv -> BN -> LeakyReLU -> max pool -> conv, all under "net".
struct SmallStack : Defaults {
    static constexpr const char* name = "Sequential: conv, batch norm, LeakyReLU, max pool, conv";
    static Shape input() { return {2, 2, 6, 6}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        const auto net = nn::Scope<T, D>(arena, 4).child("net");
        return nn::Sequential<nn::Conv2d<T, D>, nn::BatchNorm2d<T, D>, nn::LeakyReLU<T, D>, nn::MaxPool2d<T, D>,
                              nn::Conv2d<T, D>>{
            nn::Conv2d<T, D>(net.child("conv1"), {.in_channels = 2, .out_channels = 3, .padding = {1, 1}}),
            nn::BatchNorm2d<T, D>(net.child("bn1"), {.channels = 3}), nn::LeakyReLU<T, D>(0.1),
            nn::MaxPool2d<T, D>(),
            nn::Conv2d<T, D>(net.child("conv2"), {.in_channels = 3, .out_channels = 2, .kernel = {1, 1}})};
    }
};

struct ConvBlockCase : Defaults {
    static constexpr const char* name = "ConvBlock";
    static Shape input() { return {2, 2, 5, 4}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::ConvBlock<T, D>(nn::Scope<T, D>(arena, 6).child("block0"), {.in_channels = 2, .out_channels = 3});
    }
    template <class T>
    static void prepare(Arena<T>& arena, gcl::Rng& rng) {
        randomise_batch_norms(arena, rng);
    }
};

// Positive features and random biases: no embedding starts near zero length, where normalising
// is ill-conditioned.
template <bool Training>
struct ImageHeadIn : Defaults {
    static constexpr const char* name = Training ? "ImageHead, training" : "ImageHead, evaluation";
    static constexpr double input_low = 0, input_high = 2;
    static Shape input() { return {3, 4, 3, 2}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::ImageHead<T, D>(nn::Scope<T, D>(arena, 7).child("image_head"),
                                   {.in_channels = 4, .hidden_features = 8, .out_features = 3});
    }
    template <class T>
    static void prepare(Arena<T>& arena, gcl::Rng& rng) {
        fill_named(arena, rng, {"image_head.bn1.bias", "image_head.bn2.bias"}, -0.5, 0.5);
        for (const auto& b : arena.buffers())
            gcl::fill_uniform<T>(arena.buffer_value(b.name), rng, static_cast<T>(0.5), static_cast<T>(1.5));
    }
    template <class L>
    static void set_mode(L& layer) {
        layer.set_training(Training);
    }
};

struct PixelHeadCase : Defaults {
    static constexpr const char* name = "PixelHead";
    static constexpr double input_low = 0, input_high = 2;
    static Shape input() { return {3, 4, 3, 2}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::PixelHead<T, D>(nn::Scope<T, D>(arena, 7).child("pixel_head"),
                                   {.in_channels = 4, .hidden_channels = 6, .out_channels = 3});
    }
    template <class T>
    static void prepare(Arena<T>& arena, gcl::Rng& rng) {
        fill_named(arena, rng, {"pixel_head.conv1.bias", "pixel_head.conv2.bias"}, -0.5, 0.5);
    }
};

struct TinyUNet : Defaults {
    static constexpr const char* name = "UNet, depth 2, width 2";
    static Shape input() { return {2, 1, 8, 8}; }
    template <class T, class D>
    static auto make(Arena<T, D>& arena) {
        return nn::UNet<T, D>(arena, {.in_channels = 1, .classes = 3, .depth = 2, .base_width = 2}, 2);
    }
    template <class T>
    static void prepare(Arena<T>& arena, gcl::Rng& rng) {
        randomise_batch_norms(arena, rng);
    }
};

using All = std::tuple<Conv2dStrided, Conv2dPointwise, ConvTranspose2dUp, ConvTranspose2dOdd, BatchNorm2dIn<true>,
                       BatchNorm2dIn<false>, BatchNorm1dIn<true>, BatchNorm1dIn<false>, ReLUCase, LeakyReLUCase,
                       MaxPool2dCase, MaxPool2dOverlapping, GlobalAvgPoolCase, LinearBias, LinearNoBias,
                       L2NormalizeRows, L2NormalizeMaps, SmallStack, ConvBlockCase, ImageHeadIn<true>,
                       ImageHeadIn<false>, PixelHeadCase, TinyUNet>;

// A host tensor's values into a view on device D of the same shape.
template <class T, class D>
void upload_into(const gcl::ConstView<T>& host, gcl::TensorView<T, D> to) {
    if (host.numel() == 0) return;
    gcl::ops::copy(gcl::ops::host_to_device<D>(Tensor<T>::copy_of(host)).cview(), to);
}

// The parameters and buffers of `layer` (the case's layer on device D in `arena`) set to those
// the case prepares on the host from rng, and its mode set.
template <class Case, class T, class D, class L>
void prepare(Arena<T, D>& arena, L& layer, gcl::Rng& rng) {
    Arena<T> host;
    const auto host_layer = Case::template make<T, gcl::cpu>(host);
    REQUIRE(arena.size() == host.size());
    REQUIRE(arena.buffer_size() == host.buffer_size());
    Case::prepare(host, rng);
    upload_into<T, D>(host.flat_values(), arena.flat_values());
    upload_into<T, D>(host.flat_buffers(), arena.flat_buffers());
    Case::set_mode(layer);
}

template <class Case, class T>
Tensor<T> input(gcl::Rng& rng) {
    return gcl_test::random<T>(Case::input(), rng, Case::input_low, Case::input_high);
}

// Finite differences in double on device D: the input gradient and every parameter's.
template <class Case, class D>
void require_gradients() {
    INFO(Case::name);
    gcl::Rng rng(11);
    Arena<double, D> arena;
    auto layer = Case::template make<double, D>(arena);
    prepare<Case>(arena, layer, rng);
    Tensor<double, D> x = gcl::ops::host_to_device<D>(input<Case, double>(rng));
    gcl::testing::GradCheckOptions options;
    options.atol = 1e-7;
    const auto result = gcl::testing::check_layer_gradients(layer, arena, x.view(), rng, options);
    INFO(result.message);
    REQUIRE(result.passed);
    REQUIRE(result.input.checked == x.numel());
    REQUIRE(result.parameters.checked == arena.size());
}

// Within rtol of the largest |expected| (both on the host).
template <class T>
void require_near(const char* what, const Tensor<T>& expected, const Tensor<T>& got, double rtol) {
    INFO(what);
    REQUIRE(got.shape() == expected.shape());
    CHECK(gcl_test::relative_gap(expected, got) <= rtol);
}

// One forward and one backward pass on device D and on the cpu, from the same parameters.
template <class Case, class T, class D>
void require_cpu_parity() {
    INFO(Case::name << (std::is_same_v<T, float> ? " in float" : " in double"));
    const double rtol = std::is_same_v<T, float> ? 1e-4 : 1e-10;
    gcl::Rng host_rng(12), device_rng(12);
    Arena<T> host_arena;
    Arena<T, D> device_arena;
    auto host = Case::template make<T, gcl::cpu>(host_arena);
    auto device = Case::template make<T, D>(device_arena);
    prepare<Case>(host_arena, host, host_rng);
    prepare<Case>(device_arena, device, device_rng);
    const Tensor<T> x = input<Case, T>(host_rng);
    const Tensor<T, D> x_device = gcl::ops::host_to_device<D>(Tensor<T>::copy_of(x.cview()));

    const Tensor<T> y = Tensor<T>::copy_of(host.forward(x.cview()));
    require_near("forward", y, gcl::ops::device_to_host(device.forward(x_device.cview())), rtol);
    if (host_arena.buffer_size() > 0)
        require_near("running statistics", Tensor<T>::copy_of(host_arena.flat_buffers()),
                     gcl::ops::device_to_host(gcl::ConstView<T, D>(device_arena.flat_buffers())), rtol);

    const Tensor<T> dy = gcl_test::random<T>(y.shape(), host_rng);
    host_arena.begin_backward();
    device_arena.begin_backward();
    const Tensor<T> dx = Tensor<T>::copy_of(host.backward(dy.cview()));
    const Tensor<T, D> dy_device = gcl::ops::host_to_device<D>(Tensor<T>::copy_of(dy.cview()));
    require_near("input gradient", dx, gcl::ops::device_to_host(device.backward(dy_device.cview())), rtol);
    if (host_arena.size() > 0)
        require_near("parameter gradients", Tensor<T>::copy_of(host_arena.flat_grads()),
                     gcl::ops::device_to_host(gcl::ConstView<T, D>(device_arena.flat_grads())), rtol);
}

}  // namespace layer_cases
