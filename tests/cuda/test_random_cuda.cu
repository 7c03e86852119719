// Random fills on the GPU (backend::RandomFill<cuda>) against the CPU: the ops, the initial
// parameters of layers built in a ParameterArena<T, gcl::cuda>, and Dropout's masks.
//
// Uniform draws, dropout masks and constants are the CPU's bits, and so are float normals. A
// double normal is the device's pinned rule (normal_at_pinned) bit for bit, and equals the CPU's
// but for a few draws in a thousand, where z is a unit or two apart in its last place: the C
// library's log and cos that the CPU uses are not correctly rounded there (core/box_muller.hpp).
// The CPU side is this file's host code, which nvcc's host compiler builds without FMA
// contraction.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "gcl/cuda.cuh"
#include "gcl/nn/batch_norm2d.hpp"
#include "gcl/nn/conv2d.hpp"
#include "gcl/nn/dropout.hpp"
#include "gcl/nn/layer.hpp"
#include "gcl/nn/linear.hpp"
#include "gcl/ops/random.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace nn = gcl::nn;
namespace ops = gcl::ops;

// Parameters and dropout are no longer host-only: the layers are layers of the cuda device.
static_assert(nn::Layer<nn::Conv2d<float, gcl::cuda>> && nn::Layer<nn::Linear<double, gcl::cuda>>);
static_assert(nn::Layer<nn::Dropout<float, gcl::cuda>> && nn::Layer<nn::BatchNorm2d<float, gcl::cuda>>);

namespace {

// Bitwise equality of two host tensors or views.
template <class A, class B>
bool same_bits(const A& a, const B& b) {
    using T = std::remove_const_t<typename A::value_type>;
    return a.shape() == b.shape() &&
           std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.numel())) == 0;
}

template <class T>
Tensor<std::remove_const_t<T>> download(gcl::TensorView<T, gcl::cuda> device) {
    GCL_CUDA_CHECK(cudaDeviceSynchronize());
    return gcl::to_host(device);
}

// How far apart two host views are: the largest difference in units of epsilon times the larger
// of 1 and the CPU's magnitude (a normal's mean + std z can cancel, so units in its own last
// place would overstate a one-unit difference of z), and how many elements differ at all.
struct Apart {
    double worst = 0;
    index_t differing = 0;
};

template <class A, class B>
Apart apart(const A& device, const B& cpu) {
    REQUIRE(device.shape() == cpu.shape());
    using T = std::remove_const_t<typename A::value_type>;
    Apart out;
    for (index_t i = 0; i < device.numel(); ++i) {
        const T x = device.data()[i], y = cpu.data()[i];
        if (std::memcmp(&x, &y, sizeof x) == 0) continue;
        ++out.differing;
        const double scale = std::max(1.0, std::abs(static_cast<double>(y))) * std::numeric_limits<T>::epsilon();
        out.worst = std::max(out.worst, std::abs(static_cast<double>(x) - static_cast<double>(y)) / scale);
    }
    return out;
}

// The CPU's numbers, or for double normals the tolerance the C library's rounding needs.
template <class A, class B>
void require_normals_match(const A& device, const B& cpu) {
    if constexpr (std::is_same_v<std::remove_const_t<typename A::value_type>, float>) {
        REQUIRE(same_bits(device, cpu));
    } else {
        const Apart a = apart(device, cpu);
        INFO(a.differing << " of " << cpu.numel() << " apart, at most " << a.worst << " epsilons");
        REQUIRE(a.worst <= 8);
        REQUIRE(a.differing <= 2 + cpu.numel() / 200);  // a few in a thousand
    }
}

}  // namespace

TEMPLATE_TEST_CASE("ops random fills on cuda give the CPU's numbers", "[cuda][random]", float, double) {
    using T = TestType;
    for (const Shape& shape : {Shape{1}, Shape{1000}, Shape{3, 257, 1031}}) {
        DYNAMIC_SECTION("shape " << shape) {
            Tensor<T> host(shape);
            Tensor<T, gcl::cuda> device(shape);
            gcl::Rng h(77, 5), d(77, 5);
            h.reserve(3);
            d.reserve(3);

            ops::fill_uniform(host.view(), h, T(-0.3), T(1.7));
            ops::fill_uniform(device.view(), d, T(-0.3), T(1.7));
            REQUIRE(same_bits(download(device.cview()).cview(), host.cview()));

            ops::fill_normal(host.view(), h, T(0.25), T(3));
            ops::fill_normal(device.view(), d, T(0.25), T(3));
            const Tensor<T> normals = download(device.cview());
            require_normals_match(normals.cview(), host.cview());
            // The device computes the pinned rule, which the host replays bit for bit.
            Tensor<T> replay(shape);
            const std::uint64_t first = h.offset() - static_cast<std::uint64_t>(host.numel());
            for (index_t i = 0; i < replay.numel(); ++i)
                replay.data()[i] = gcl::normal_at_pinned<T>(h.seed(), h.stream(), first + static_cast<std::uint64_t>(i),
                                                            T(0.25), T(3));
            REQUIRE(same_bits(normals.cview(), replay.cview()));

            ops::dropout_mask(host.view(), h, 0.3);
            ops::dropout_mask(device.view(), d, 0.3);
            REQUIRE(same_bits(download(device.cview()).cview(), host.cview()));
            REQUIRE(h.offset() == d.offset());
        }
    }
}

TEST_CASE("ops::fill_uniform on cuda covers a grid-stride loop longer than the grid", "[cuda][random]") {
    const Shape shape{(index_t{1} << 24) + 4099};  // more than 65536 blocks of 256 threads
    Tensor<float> host(shape);
    Tensor<float, gcl::cuda> device(shape);
    gcl::Rng h(3), d(3);
    ops::fill_uniform(host.view(), h);
    ops::fill_uniform(device.view(), d);
    REQUIRE(same_bits(download(device.cview()).cview(), host.cview()));
}

TEMPLATE_TEST_CASE("layers built on cuda hold the CPU layers' initial parameters", "[cuda][random][nn]", float,
                   double) {
    using T = TestType;
    const auto build = [](const auto& root) {
        using D = typename std::decay_t<decltype(root)>::device_type;
        const auto net = root.child("net");
        nn::Conv2d<T, D> conv(net.child("conv"), {.in_channels = 3, .out_channels = 16});
        nn::Conv2d<T, D> head(net.child("head"), {.in_channels = 16,
                                                  .out_channels = 4,
                                                  .kernel = {1, 1},
                                                  .weight_init = nn::Init::xavier_uniform(),
                                                  .bias_init = nn::Init::uniform(-0.5, 0.25)});
        nn::Linear<T, D> fc(net.child("fc"), {.in_features = 64,
                                              .out_features = 33,
                                              .weight_init = nn::Init::kaiming_uniform(0.01, nn::FanMode::fan_out),
                                              .bias_init = nn::Init::normal(0.5, 2)});
        nn::Linear<T, D> proj(net.child("proj"), {.in_features = 33,
                                                  .out_features = 7,
                                                  .weight_init = nn::Init::xavier_normal(1.5),
                                                  .bias_init = nn::Init::constant(0.125)});
        nn::BatchNorm2d<T, D> bn(net.child("bn"), {.channels = 16});
    };
    nn::ParameterArena<T> host;
    nn::ParameterArena<T, gcl::cuda> device;
    build(nn::Scope<T>(host, 2024));
    build(nn::Scope<T, gcl::cuda>(device, 2024));
    REQUIRE(device.size() == host.size());
    REQUIRE(device.buffer_size() == host.buffer_size());
    REQUIRE(same_bits(download(device.flat_buffers()).cview(), host.flat_buffers()));
    const Tensor<T> values = download(device.flat_values());
    REQUIRE(host.parameter_count() == 10);
    for (const auto& info : host.parameters()) {
        INFO(info.name);
        const auto got = values.cview().narrow(0, info.offset, info.numel()).reshape(info.shape);
        const bool normal = info.name == "net.conv.weight" || info.name == "net.fc.bias" || info.name == "net.proj.weight";
        if (normal)
            require_normals_match(got, host.value(info.name));
        else
            REQUIRE(same_bits(got, host.value(info.name)));
    }
}

TEMPLATE_TEST_CASE("Dropout on cuda drops the CPU layer's elements", "[cuda][random][nn]", float, double) {
    using T = TestType;
    nn::ParameterArena<T> host_arena;
    nn::ParameterArena<T, gcl::cuda> device_arena;
    nn::Dropout<T> host(nn::Scope<T>(host_arena, 9).child("drop"), {.p = 0.2});
    nn::Dropout<T, gcl::cuda> device(nn::Scope<T, gcl::cuda>(device_arena, 9).child("drop"), {.p = 0.2});
    Tensor<T> x(Shape{4, 8, 33, 35}), dy(x.shape());
    gcl::Rng rng(1);
    ops::fill_normal(x.view(), rng);
    ops::fill_normal(dy.view(), rng);
    const Tensor<T, gcl::cuda> x_device = gcl::to_device(x), dy_device = gcl::to_device(dy);

    for (int call = 0; call < 2; ++call) {  // the second call continues at the next counters
        INFO("call " << call);
        const Tensor<T> y = download(device.forward(x_device.cview()));
        REQUIRE(same_bits(y.cview(), host.forward(x.cview())));
        REQUIRE(same_bits(download(device.mask()).cview(), host.mask()));
        REQUIRE(same_bits(download(device.backward(dy_device.cview())).cview(), host.backward(dy.cview())));
        REQUIRE(device.rng().offset() == host.rng().offset());
    }
    device.set_training(false);
    REQUIRE(same_bits(download(device.forward(x_device.cview())).cview(), x.cview()));
}
