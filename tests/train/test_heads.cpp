// The projection heads of pre-training with and without batch normalisation, and the split of
// PretrainModel's backward into its head and encoder halves: gradient checks in double.
#include <catch2/catch.hpp>

#include "gcl/core/random.hpp"
#include "gcl/nn/batch_norm1d.hpp"
#include "gcl/testing/layer_gradcheck.hpp"
#include "gcl/nn/pretrain_model.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace nn = gcl::nn;

namespace {
Tensor<double> random_tensor(const Shape& shape, gcl::Rng& rng) {
    Tensor<double> t(shape);
    gcl::fill_normal(t.view(), rng);
    return t;
}
}  // namespace

TEST_CASE("BatchNorm1d is BatchNorm2d on [N, C, 1, 1]", "[train][heads]") {
    gcl::Rng rng(4);
    nn::ParameterArena<double> a1, a2;
    nn::BatchNorm1d<double> bn1(nn::Scope<double>(a1, 1).child("bn"), {.channels = 3});
    nn::BatchNorm2d<double> bn2(nn::Scope<double>(a2, 1).child("bn"), {.channels = 3});
    REQUIRE(a1.parameters()[0].name == "bn.weight");
    auto x = random_tensor({5, 3}, rng);
    const auto y1 = Tensor<double>::copy_of(bn1.forward(x.cview()));
    const auto y2 = bn2.forward(gcl::ConstView<double>(x.data(), Shape{5, 3, 1, 1}));
    for (index_t i = 0; i < 15; ++i) CHECK(y1.data()[i] == y2.data()[i]);
    CHECK_THROWS_WITH(bn1.forward(Tensor<double>(Shape{5, 4}).cview()), Catch::Contains("expects input [N, 3]"));
}

TEST_CASE("ImageHead passes its gradient check with every batch-normalisation choice", "[train][heads][gradcheck]") {
    for (nn::HeadNorm norm : {nn::HeadNorm::none, nn::HeadNorm::hidden, nn::HeadNorm::hidden_and_output}) {
        gcl::Rng rng(26);
        nn::ParameterArena<double> arena;
        nn::ImageHead<double> head(nn::Scope<double>(arena, 7).child("image_head"),
                                   {.in_channels = 4, .hidden_features = 8, .out_features = 3, .batch_norm = norm});
        // A map followed by a batch norm has no bias (the batch norm cancels it).
        const bool fc1_bias = norm == nn::HeadNorm::none, fc2_bias = norm != nn::HeadNorm::hidden_and_output;
        const std::size_t expected = norm == nn::HeadNorm::none ? 4 : norm == nn::HeadNorm::hidden ? 5 : 6;
        REQUIRE(arena.parameters().size() == expected);
        REQUIRE(arena.find_parameter("image_head.fc1.bias").has_value() == fc1_bias);
        REQUIRE(arena.find_parameter("image_head.fc2.bias").has_value() == fc2_bias);
        REQUIRE(arena.parameters()[fc1_bias ? 2 : 1].name == "image_head.fc2.weight");
        if (norm != nn::HeadNorm::none) REQUIRE(arena.parameters()[fc2_bias ? 3 : 2].name == "image_head.bn1.weight");
        // Positive features and random biases: no embedding starts near zero length, where
        // normalising is ill-conditioned.
        Tensor<double> f(Shape{5, 4, 3, 2});
        gcl::fill_uniform<double>(f.view(), rng, 0, 2);
        for (const char* bias : {"image_head.fc1.bias", "image_head.fc2.bias", "image_head.bn1.bias", "image_head.bn2.bias"})
            if (arena.find_parameter(bias)) gcl::fill_uniform<double>(arena.value(bias), rng, -0.5, 0.5);
        const auto e = Tensor<double>::copy_of(head.forward(f.cview()));
        for (index_t n = 0; n < 5; ++n)
            CHECK(e(n, 0) * e(n, 0) + e(n, 1) * e(n, 1) + e(n, 2) * e(n, 2) == Approx(1).epsilon(1e-12));
        for (bool training : {true, false}) {
            head.set_training(training);
            CHECK(head.training() == training);
            gcl::testing::GradCheckOptions options;
            options.atol = 1e-7;
            const auto r = gcl::testing::check_layer_gradients(head, arena, f.view(), rng, options);
            INFO(nn::to_string(norm) << (training ? " training: " : " evaluation: ") << r.message);
            CHECK(r.passed);
        }
    }
}

TEST_CASE("PretrainModel's heads_backward then encoder_backward is its backward", "[train][heads]") {
    gcl::Rng rng(9);
    nn::ParameterArena<double> arena;
    nn::PretrainModel<double> model(arena,
                                    {.encoder = {.in_channels = 1, .depth = 1, .base_width = 4},
                                     .image_hidden = 8,
                                     .image_out = 6,
                                     .pixel_hidden = 8,
                                     .pixel_out = 6},
                                    3);
    auto x = random_tensor({4, 1, 8, 8}, rng);
    const auto out = model.forward(x.cview());
    auto d_image = random_tensor(out.image.shape(), rng);
    auto d_pixel = random_tensor(out.pixel.shape(), rng);
    const index_t P = arena.size();
    Tensor<double> whole(Shape{P}), halves(Shape{P});
    arena.begin_backward(whole.view(), gcl::WriteMode::overwrite);
    const auto dx = Tensor<double>::copy_of(model.backward(d_image.cview(), d_pixel.cview()).input);
    arena.begin_backward(halves.view(), gcl::WriteMode::overwrite);
    const auto g = model.heads_backward(d_image.cview(), d_pixel.cview());
    CHECK(g.input.data() == nullptr);
    const auto dF = Tensor<double>::copy_of(g.features);
    const auto dx2 = Tensor<double>::copy_of(model.encoder_backward(dF.cview()));
    arena.end_backward();
    for (index_t p = 0; p < P; ++p) CHECK(halves(p) == whole(p));
    for (index_t i = 0; i < dx.numel(); ++i) CHECK(dx2.data()[i] == dx.data()[i]);
}
