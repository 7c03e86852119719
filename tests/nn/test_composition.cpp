// Sequential, ConvBlock and the heads: composition by fold expressions, mode propagation, the
// gradient target (overwrite, accumulate, K passes into a K x P matrix) and gradient checks.
#include "gcl/nn/activation.hpp"
#include "gcl/nn/batch_norm2d.hpp"
#include "gcl/nn/conv2d.hpp"
#include "gcl/nn/conv_block.hpp"
#include "gcl/nn/image_head.hpp"
#include "gcl/nn/max_pool2d.hpp"
#include "gcl/nn/pixel_head.hpp"
#include "gcl/nn/sequential.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

using namespace gcl_test;
namespace nn = gcl::nn;
using Arena = nn::ParameterArena<double>;
using Scope = nn::Scope<double>;

static_assert(nn::Layer<nn::Sequential<nn::ReLU<float>, nn::MaxPool2d<float>>>);
static_assert(nn::Layer<nn::ConvBlock<double>> && nn::Layer<nn::ImageHead<float>> && nn::Layer<nn::PixelHead<float>>);

namespace {

// conv -> BN -> LeakyReLU -> max pool -> conv, all under "net".
auto small_stack(const Scope& net) {
    return nn::Sequential<nn::Conv2d<double>, nn::BatchNorm2d<double>, nn::LeakyReLU<double>, nn::MaxPool2d<double>,
                          nn::Conv2d<double>>{
        nn::Conv2d<double>(net.child("conv1"), {.in_channels = 2, .out_channels = 3, .padding = {1, 1}}),
        nn::BatchNorm2d<double>(net.child("bn1"), {.channels = 3}), nn::LeakyReLU<double>(0.1), nn::MaxPool2d<double>(),
        nn::Conv2d<double>(net.child("conv2"), {.in_channels = 3, .out_channels = 2, .kernel = {1, 1}})};
}

}  // namespace

TEST_CASE("Sequential: forward and backward are the layers' in order and in reverse", "[nn][sequential]") {
    gcl::Rng rng(21);
    Arena arena;
    auto net = small_stack(Scope(arena, 3).child("net"));
    STATIC_REQUIRE(decltype(net)::size() == 5);
    REQUIRE(arena.parameter_count() == 6);
    REQUIRE(arena.parameters()[0].name == "net.conv1.weight");
    REQUIRE(arena.parameters()[2].name == "net.bn1.weight");
    REQUIRE(arena.parameters()[5].name == "net.conv2.bias");

    // The same layers called one by one, with the same parameters (a second arena, same seed).
    Arena arena2;
    auto by_hand = small_stack(Scope(arena2, 3).child("net"));
    require_equal(arena2.flat_values(), arena.flat_values(), "same seed, same names, same values");

    const auto x = random<double>({2, 2, 6, 6}, rng);
    const auto y = copy(net.forward(x.cview()));
    REQUIRE(y.shape() == net.output_shape(x.shape()));
    REQUIRE(y.shape() == Shape{2, 2, 3, 3});
    gcl::ConstView<double> h = x.cview();
    h = by_hand.get<0>().forward(h);
    h = by_hand.get<1>().forward(h);
    h = by_hand.get<2>().forward(h);
    h = by_hand.get<3>().forward(h);
    h = by_hand.get<4>().forward(h);
    require_equal(y, h, "forward");

    const auto dy = random<double>(y.shape(), rng);
    arena.begin_backward();
    const auto dx = copy(net.backward(dy.cview()));
    arena2.begin_backward();
    gcl::ConstView<double> g = dy.cview();
    g = by_hand.get<4>().backward(g);
    g = by_hand.get<3>().backward(g);
    g = by_hand.get<2>().backward(g);
    g = by_hand.get<1>().backward(g);
    g = by_hand.get<0>().backward(g);
    require_equal(dx, g, "backward");
    require_equal(arena.flat_grads(), arena2.flat_grads(), "parameter gradients");

    auto nested = nn::sequential(nn::ReLU<double>(), nn::Sequential<nn::ReLU<double>>(nn::ReLU<double>()));
    REQUIRE(nested.output_shape({2, 3}) == Shape{2, 3});
}

TEST_CASE("set_training reaches every layer; evaluation uses the running statistics", "[nn][sequential][mode]") {
    gcl::Rng rng(23);
    Arena arena;
    auto net = small_stack(Scope(arena, 4).child("net"));
    REQUIRE(net.training());
    const auto x = random<double>({2, 2, 6, 6}, rng);
    for (int i = 0; i < 3; ++i) net.forward(x.cview());  // move the running statistics
    net.set_training(false);
    REQUIRE_FALSE(net.training());
    REQUIRE_FALSE(net.get<1>().training());
    REQUIRE_FALSE(net.get<4>().training());
    const auto buffers = copy(arena.flat_buffers());
    const auto eval1 = copy(net.forward(x.cview()));
    // One image at a time gives the same result in evaluation mode (no batch statistics).
    const auto x0 = copy(x.cview().narrow(0, 0, 1));
    const auto eval0 = copy(net.forward(x0.cview()));
    require_close(eval0, eval1.cview().narrow(0, 0, 1), 1e-13, 1e-14, "evaluation is per image");
    require_equal(arena.flat_buffers(), buffers, "evaluation leaves the running statistics");
    net.set_training(true);
    REQUIRE(net.get<1>().training());
}

TEST_CASE("Gradient target: overwrite, accumulate, and K passes into a K x P matrix after one forward",
          "[nn][sequential][target]") {
    gcl::Rng rng(24);
    Arena arena;
    auto net = small_stack(Scope(arena, 5).child("net"));
    const index_t P = arena.size();
    const auto x = random<double>({2, 2, 6, 6}, rng);
    const Shape ys = net.output_shape(x.shape());
    const index_t K = 4;
    std::vector<Tensor<double>> dys;
    for (index_t k = 0; k < K; ++k) dys.push_back(random<double>(ys, rng));

    // K separate forward + backward runs.
    std::vector<Tensor<double>> separate_grads, separate_dx;
    for (index_t k = 0; k < K; ++k) {
        net.forward(x.cview());
        arena.begin_backward(gcl::WriteMode::overwrite);
        separate_dx.push_back(copy(net.backward(dys[k].cview())));
        separate_grads.push_back(copy(arena.flat_grads()));
    }
    // One forward, K backward passes into the rows of G; the arena's own gradients stay untouched.
    Tensor<double> G({K, P}, 7.0);
    arena.zero_grad();
    net.forward(x.cview());
    for (index_t k = 0; k < K; ++k) {
        arena.begin_backward(G.view(), k, gcl::WriteMode::overwrite);
        require_equal(net.backward(dys[k].cview()), separate_dx[k], "dx of pass " + std::to_string(k));
    }
    for (index_t k = 0; k < K; ++k)
        require_equal(G.cview().select(0, k), separate_grads[k], "row " + std::to_string(k));
    for (index_t i = 0; i < P; ++i) REQUIRE(arena.flat_grads().data()[i] == 0.0);

    // Accumulate: two passes add up.
    arena.begin_backward(gcl::WriteMode::overwrite);
    net.backward(dys[0].cview());
    arena.begin_backward(gcl::WriteMode::accumulate);
    net.backward(dys[1].cview());
    Tensor<double> sum({P});
    for (index_t i = 0; i < P; ++i) sum.data()[i] = separate_grads[0].data()[i] + separate_grads[1].data()[i];
    require_close(arena.flat_grads(), sum, 1e-14, 1e-15, "accumulated");
}

TEST_CASE("ConvBlock: names, shapes", "[nn][conv_block]") {
    Arena arena;
    nn::ConvBlock<double> block(Scope(arena, 6).child("block0"), {.in_channels = 2, .out_channels = 3});
    std::vector<std::string> names;
    for (const auto& p : arena.parameters()) names.push_back(p.name);
    REQUIRE(names == std::vector<std::string>{"block0.conv1.weight", "block0.bn1.weight", "block0.bn1.bias",
                                              "block0.conv2.weight", "block0.bn2.weight", "block0.bn2.bias"});
    REQUIRE(arena.buffers()[0].name == "block0.bn1.running_mean");
    REQUIRE(arena.buffers()[3].name == "block0.bn2.running_var");
    REQUIRE(block.output_shape(Shape{2, 2, 5, 4}) == Shape{2, 3, 5, 4});

    Arena biased;
    nn::ConvBlock<double> with_bias(Scope(biased, 6).child("b"),
                                    {.in_channels = 2, .out_channels = 3, .conv_bias = true});
    REQUIRE(biased.find_parameter("b.conv1.bias").has_value());
    REQUIRE(biased.find_parameter("b.conv2.bias").has_value());
}

TEST_CASE("ImageHead and PixelHead: unit-length embeddings, names", "[nn][heads]") {
    gcl::Rng rng(26);
    auto f = random<double>({3, 4, 3, 2}, rng, 0, 2);

    Arena image_arena;
    nn::ImageHead<double> image(Scope(image_arena, 7).child("image_head"),
                                {.in_channels = 4, .hidden_features = 8, .out_features = 3});
    REQUIRE(image_arena.parameters()[0].name == "image_head.fc1.weight");
    REQUIRE(image_arena.parameters()[1].name == "image_head.fc2.weight");
    // The batch norms after both maps cancel any bias, so the maps have none.
    REQUIRE_FALSE(image_arena.find_parameter("image_head.fc1.bias"));
    REQUIRE_FALSE(image_arena.find_parameter("image_head.fc2.bias"));
    const auto e = copy(image.forward(f.cview()));
    REQUIRE(e.shape() == Shape{3, 3});
    for (index_t n = 0; n < 3; ++n)
        REQUIRE(std::abs(e(n, 0) * e(n, 0) + e(n, 1) * e(n, 1) + e(n, 2) * e(n, 2) - 1) < 1e-14);

    Arena pixel_arena;
    nn::PixelHead<double> pixel(Scope(pixel_arena, 7).child("pixel_head"),
                                {.in_channels = 4, .hidden_channels = 6, .out_channels = 3});
    REQUIRE(pixel_arena.parameters()[0].name == "pixel_head.conv1.weight");
    REQUIRE(pixel_arena.info(pixel_arena.parameter("pixel_head.conv1.weight")).shape == Shape{6, 4, 1, 1});
    REQUIRE(pixel_arena.parameters()[3].name == "pixel_head.conv2.bias");
    const auto p = copy(pixel.forward(f.cview()));
    REQUIRE(p.shape() == Shape{3, 3, 3, 2});
    double s = 0;
    for (index_t c = 0; c < 3; ++c) s += p(2, c, 1, 1) * p(2, c, 1, 1);
    REQUIRE(std::abs(s - 1) < 1e-14);
}
