// gcl::nn against PyTorch on fixtures written by scripts/fixtures/make_nn_fixtures.py: a small
// U-Net and the pre-training model (encoder + image head + pixel head) with the same
// architecture and parameter names, in float and double: outputs, input gradients, every
// parameter gradient, batch-norm running statistics, and two training steps with SGD and Adam.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gcl/core/npy.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/ops/softmax.hpp"
#include "gcl/optim/adam.hpp"
#include "gcl/optim/sgd.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

using namespace gcl_test;
namespace nn = gcl::nn;

namespace {

// |actual - expected| <= rtol |expected| + atol max(1, max |expected over the tensor|).
// gcl and PyTorch sum in different orders; a gradient element is a sum of many terms about as
// large as the tensor's largest elements, so the rounding error of an element that cancels to
// something small scales with the tensor, not with the element (float: 1e-4 relative; an element
// a thousand times smaller than the tensor's largest may differ by 1e-5 of that largest).
template <class T>
struct Tolerance;
template <>
struct Tolerance<float> {
    static constexpr double rtol = 1e-4, atol = 1e-5;
};
template <>
struct Tolerance<double> {
    static constexpr double rtol = 1e-9, atol = 1e-12;
};

template <class T>
std::string directory() {
    return std::string(GCL_TEST_FIXTURES) + (std::is_same_v<T, float> ? "/nn/f32/" : "/nn/f64/");
}

template <class T>
Tensor<T> load(const std::string& name) {
    return gcl::load_npy<T>(directory<T>() + name + ".npy");
}

// A flat group written with a manifest ("name d0 d1 ..." per line): the named tensors.
template <class T>
std::vector<std::pair<std::string, Tensor<T>>> load_group(const std::string& group) {
    const Tensor<T> flat = load<T>(group);
    std::ifstream manifest(directory<T>() + group + ".txt");
    REQUIRE(manifest.good());
    std::vector<std::pair<std::string, Tensor<T>>> out;
    std::string line;
    index_t offset = 0;
    while (std::getline(manifest, line)) {
        std::istringstream fields(line);
        std::string name;
        fields >> name;
        Shape shape;
        for (index_t d; fields >> d;) shape.push_back(d);
        REQUIRE(offset + shape.numel() <= flat.numel());
        Tensor<T> t(shape);
        std::copy(flat.data() + offset, flat.data() + offset + shape.numel(), t.data());
        offset += shape.numel();
        out.emplace_back(name, std::move(t));
    }
    REQUIRE(offset == flat.numel());
    return out;
}

// Sets every parameter and buffer of the arena from the fixture's initial state; all must be there.
template <class T>
void load_initial_state(nn::ParameterArena<T>& arena) {
    index_t params = 0, buffers = 0;
    for (const auto& [name, value] : load_group<T>("params"))
        if (arena.find_parameter(name)) {
            gcl::ops::copy(value.cview(), arena.value(name));
            ++params;
        }
    for (const auto& [name, value] : load_group<T>("buffers"))
        if (arena.find_buffer(name)) {
            gcl::ops::copy(value.cview(), arena.buffer_value(name));
            ++buffers;
        }
    REQUIRE(params == static_cast<index_t>(arena.parameter_count()));
    REQUIRE(buffers == static_cast<index_t>(arena.buffer_count()));
}

template <class T, class V>
void require_close_to(const V& actual, const Tensor<T>& expected, const std::string& what) {
    double scale = 1;
    for (index_t i = 0; i < expected.numel(); ++i)
        scale = std::max(scale, std::abs(static_cast<double>(expected.data()[i])));
    require_close(actual, expected, Tolerance<T>::rtol, Tolerance<T>::atol * scale, what);
}

// Every entry of a group equals the arena's gradient (the arena's own buffer), value or buffer.
enum class Field { grad, value, buffer };
template <class T>
void require_group(nn::ParameterArena<T>& arena, const std::string& group, Field field, std::size_t expected_count) {
    const auto entries = load_group<T>(group);
    REQUIRE(entries.size() == expected_count);
    for (const auto& [name, expected] : entries) {
        if (field == Field::grad) require_close_to(arena.grad(name), expected, group + " " + name);
        if (field == Field::value) require_close_to(arena.value(name), expected, group + " " + name);
        if (field == Field::buffer) require_close_to(arena.buffer_value(name), expected, group + " " + name);
    }
}

const nn::UNetOptions unet_options{.in_channels = 2, .classes = 3, .depth = 2, .base_width = 4};

// Mean cross-entropy over every pixel (PyTorch's F.cross_entropy) and its gradient.
template <class T>
double cross_entropy(gcl::ConstView<T> logits, const Tensor<std::int64_t>& labels, Tensor<T>& dlogits) {
    const index_t N = logits.dim(0), C = logits.dim(1), HW = logits.dim(2) * logits.dim(3);
    Tensor<T> log_p(logits.shape());
    gcl::ops::log_softmax_forward(logits, log_p.view(), 1);
    dlogits.resize(logits.shape());
    const double count = static_cast<double>(N * HW);
    double loss = 0;
    for (index_t n = 0; n < N; ++n)
        for (index_t c = 0; c < C; ++c)
            for (index_t i = 0; i < HW; ++i) {
                const index_t k = (n * C + c) * HW + i;
                const bool target = labels.data()[n * HW + i] == c;
                if (target) loss -= static_cast<double>(log_p.data()[k]);
                dlogits.data()[k] = static_cast<T>((std::exp(static_cast<double>(log_p.data()[k])) - target) / count);
            }
    return loss / count;
}

}  // namespace

TEMPLATE_TEST_CASE("U-Net matches PyTorch: logits, dx, every parameter gradient, running statistics",
                   "[nn][unet][torch]", float, double) {
    using T = TestType;
    nn::ParameterArena<T> arena;
    nn::UNet<T> unet(arena, unet_options, 0);
    load_initial_state(arena);
    const auto x = load<T>("x");
    require_close_to(unet.forward(x.cview()), load<T>("unet_logits"), "logits");
    arena.begin_backward();
    require_close_to(unet.backward(load<T>("unet_dlogits").cview()), load<T>("unet_dx"), "dx");
    require_group(arena, "unet_grads", Field::grad, arena.parameter_count());
    require_group(arena, "unet_buffers", Field::buffer, arena.buffer_count());
}

TEMPLATE_TEST_CASE("Pre-training model matches PyTorch: embeddings, feature map, gradients, running statistics",
                   "[nn][pretrain][torch]", float, double) {
    using T = TestType;
    nn::ParameterArena<T> arena;
    nn::PretrainModel<T> model(
        arena,
        // The fixture's image head has no batch normalisation (HeadNorm::none).
        {.encoder = unet_options.encoder(), .image_hidden = 6, .image_out = 5, .image_norm = nn::HeadNorm::none,
         .pixel_hidden = 6, .pixel_out = 5},
        0);
    load_initial_state(arena);
    const auto x = load<T>("x");
    const auto out = model.forward(x.cview());
    require_close_to(out.image, load<T>("pretrain_image"), "image embeddings");
    require_close_to(out.pixel, load<T>("pretrain_pixel"), "pixel embeddings");
    require_close_to(out.features, load<T>("pretrain_features"), "feature map");
    arena.begin_backward();
    const auto g = model.backward(load<T>("pretrain_dimage").cview(), load<T>("pretrain_dpixel").cview());
    require_close_to(g.input, load<T>("pretrain_dx"), "dx");
    require_close_to(g.features, load<T>("pretrain_dfeatures"), "dL/dF");
    require_group(arena, "pretrain_grads", Field::grad, arena.parameter_count());
    require_group(arena, "pretrain_buffers", Field::buffer, arena.buffer_count());
}

TEMPLATE_TEST_CASE("Two U-Net training steps (cross-entropy, backward, SGD or Adam) match PyTorch",
                   "[nn][unet][optim][torch]", float, double) {
    using T = TestType;
    const auto x = load<T>("x");
    const auto labels = gcl::load_npy<std::int64_t>(directory<T>() + "labels.npy");
    const auto run = [&](auto& optimizer, const std::string& name) {
        nn::ParameterArena<T> arena;
        nn::UNet<T> unet(arena, unet_options, 0);
        load_initial_state(arena);
        const auto losses = gcl::load_npy<double>(directory<T>() + name + "_losses.npy");
        Tensor<T> dlogits;
        for (int step = 0; step < 2; ++step) {
            const double loss = cross_entropy<T>(unet.forward(x.cview()), labels, dlogits);
            INFO(name << " step " << step << ": loss " << loss << ", PyTorch " << losses(step));
            REQUIRE(gcl::testing::close(loss, losses(step), Tolerance<T>::rtol, Tolerance<T>::atol));
            arena.begin_backward();
            unet.backward(dlogits.cview());
            optimizer.step(arena);
        }
        require_group(arena, name + "_params", Field::value, arena.parameter_count());
        require_group(arena, name + "_buffers", Field::buffer, arena.buffer_count());
    };
    gcl::optim::SGD<T> sgd({.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 1e-3});
    run(sgd, "sgd");
    gcl::optim::Adam<T> adam({.learning_rate = 1e-3, .weight_decay = 1e-2});
    run(adam, "adam");
}
