// K backward passes at once (backward_stacked) against K separate backward passes, and
// finite-difference checks of the stacked pass in double.
#include <catch2/catch.hpp>
#include <vector>

#include "gcl/core/buffer.hpp"
#include "gcl/nn/conv2d.hpp"
#include "gcl/nn/conv_block.hpp"
#include "gcl/testing/layer_gradcheck.hpp"
#include "gcl/nn/pretrain_stacked_backward.hpp"
#include "gcl/nn/unet_encoder.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

namespace nn = gcl::nn;
using gcl_test::random;
using gcl::ConstView;
using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;

namespace {

// Runs `passes` separate backward passes (pass k into row k of G) and one stacked pass (into
// G_stacked); returns the input gradients of both, stacked [K N, ...].
template <class Model, class T>
struct Both {
    Tensor<T> dx_separate, dx_stacked, g_separate, g_stacked;
};

template <class T, class Model>
Both<Model, T> run_both(Model& model, nn::ParameterArena<T>& arena, const Tensor<T>& x, const Tensor<T>& dy_stacked,
                        index_t passes) {
    Both<Model, T> r;
    const index_t P = arena.size();
    r.g_separate = Tensor<T>(Shape{passes, P});
    r.g_stacked = Tensor<T>(Shape{passes, P});
    model.forward(x.cview());
    r.dx_separate = Tensor<T>(gcl::nn::detail::stacked_shape(x.shape(), passes));
    const index_t n = x.dim(0);
    for (index_t k = 0; k < passes; ++k) {
        arena.begin_backward(r.g_separate.view(), k, gcl::WriteMode::overwrite);
        const ConstView<T> dx = model.backward(dy_stacked.cview().narrow(0, k * n, n));
        std::copy(dx.data(), dx.data() + dx.numel(), r.dx_separate.data() + k * dx.numel());
    }
    arena.begin_stacked_backward(r.g_stacked.view(), gcl::WriteMode::overwrite);
    r.dx_stacked = gcl_test::copy(model.backward_stacked(dy_stacked.cview(), passes));
    arena.end_backward();
    return r;
}

bool bitwise_equal(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() && std::equal(a.data(), a.data() + a.numel(), b.data());
}

// Finite differences of pass `pass` of a stacked backward: L = sum(w * f(x)) with w in block
// `pass` of the stacked upstream gradient and fixed random gradients in the other blocks.
template <class Model>
void check_stacked_gradients(Model& model, nn::ParameterArena<double>& arena, Tensor<double>& x, index_t passes,
                             gcl::Rng& rng) {
    const Shape y_shape = model.output_shape(x.shape());
    const index_t n = x.dim(0);
    const Tensor<double> others = random<double>(nn::detail::stacked_shape(y_shape, passes), rng);
    const auto forward = [&](gcl::TensorView<double> y) {
        const ConstView<double> out = model.forward(x.cview());
        std::copy(out.data(), out.data() + out.numel(), y.data());
    };
    for (index_t pass = 0; pass < passes; ++pass) {
        const auto stack = [&](ConstView<double> dy) {
            Tensor<double> s = others;
            std::copy(dy.data(), dy.data() + dy.numel(), s.data() + pass * dy.numel());
            return s;
        };
        Tensor<double> G(Shape{passes, arena.size()});
        const auto input = gcl::testing::check_projected_gradient(
            x.view(), y_shape, forward,
            [&](ConstView<double> dy, gcl::TensorView<double> dx) {
                const Tensor<double> s = stack(dy);
                arena.begin_stacked_backward(G.view(), gcl::WriteMode::overwrite);
                const ConstView<double> g = model.backward_stacked(s.cview(), passes).narrow(0, pass * n, n);
                std::copy(g.data(), g.data() + g.numel(), dx.data());
            },
            rng);
        INFO("pass " << pass << " input: " << input.message);
        CHECK(input.passed);
        const auto params = gcl::testing::check_projected_gradient(
            arena.flat_values(), y_shape, forward,
            [&](ConstView<double> dy, gcl::TensorView<double> dparams) {
                const Tensor<double> s = stack(dy);
                arena.begin_stacked_backward(G.view(), gcl::WriteMode::overwrite);
                model.backward_stacked(s.cview(), passes);
                const ConstView<double> row = G.cview().select(0, pass);
                std::copy(row.data(), row.data() + row.numel(), dparams.data());
            },
            rng);
        INFO("pass " << pass << " parameters: " << params.message);
        CHECK(params.passed);
    }
    arena.end_backward();
}

}  // namespace

TEST_CASE("Conv2d backward_stacked: weight gradients bitwise equal to K passes, data gradients to rounding",
          "[nn][stacked]") {
    struct Case {
        nn::Conv2dOptions options;
        Shape x;
    };
    const std::vector<Case> cases = {
        {{.in_channels = 3, .out_channels = 8, .kernel = {3, 3}, .padding = {1, 1}, .bias = false}, {4, 3, 10, 9}},
        {{.in_channels = 2, .out_channels = 5, .kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}, {3, 2, 11, 8}},
        {{.in_channels = 6, .out_channels = 4, .kernel = {1, 1}}, {1, 6, 5, 7}},  // pointwise, one image
        {{.in_channels = 4, .out_channels = 3, .kernel = {3, 3}, .dilation = {2, 2}}, {5, 4, 12, 12}},
    };
    for (index_t passes : {1, 3}) {
        for (const Case& c : cases) {
            nn::ParameterArena<float> arena;
            nn::Conv2d<float> conv(nn::Scope<float>(arena, 5).child("conv"), c.options);
            gcl::Rng rng(11);
            const Tensor<float> x = random<float>(c.x, rng);
            const Tensor<float> dy = random<float>(nn::detail::stacked_shape(conv.output_shape(c.x), passes), rng);
            const auto r = run_both(conv, arena, x, dy, passes);
            INFO("x " << c.x << ", passes " << passes);
            CHECK(bitwise_equal(r.g_stacked, r.g_separate));
            gcl_test::require_close(r.dx_stacked, r.dx_separate, 1e-5, 1e-6, "dx");
        }
    }
}

TEST_CASE("UNetEncoder backward_stacked equals K separate passes", "[nn][stacked]") {
    nn::ParameterArena<float> arena;
    nn::UNetEncoder<float> encoder(nn::Scope<float>(arena, 3).child("encoder"),
                                   {.in_channels = 1, .depth = 2, .base_width = 4});
    gcl::Rng rng(5);
    const Tensor<float> x = random<float>({4, 1, 16, 16}, rng);
    const index_t passes = 3;
    const Tensor<float> dy = random<float>(nn::detail::stacked_shape(encoder.output_shape(x.shape()), passes), rng);
    const auto r = run_both(encoder, arena, x, dy, passes);
    // Each pass's gradients in float, within rounding of the separate passes (the data-gradient
    // products sum in another order).
    const auto largest = [](const Tensor<float>& t) {
        float m = 0;
        for (index_t i = 0; i < t.numel(); ++i) m = std::max(m, std::abs(t.data()[i]));
        return static_cast<double>(m);
    };
    gcl_test::require_close(r.g_stacked, r.g_separate, 1e-4, 1e-4 * largest(r.g_separate), "parameter gradients");
    gcl_test::require_close(r.dx_stacked, r.dx_separate, 1e-4, 1e-4 * largest(r.dx_separate), "input gradients");
    // The deepest convolution's weight gradient is computed from the same operands: bit for bit.
    const auto& last = encoder.block(2).layers().get<3>();
    const auto& info = arena.info(last.weight());
    bool same = true;
    for (index_t k = 0; k < passes; ++k)
        for (index_t i = 0; i < info.numel(); ++i)
            same = same && r.g_stacked(k, info.offset + i) == r.g_separate(k, info.offset + i);
    CHECK(same);
}

TEST_CASE("backward_stacked gradient-checked in double", "[nn][stacked][gradcheck]") {
    SECTION("Conv2d with bias, stride 2") {
        nn::ParameterArena<double> arena;
        nn::Conv2d<double> conv(nn::Scope<double>(arena, 2).child("conv"),
                                {.in_channels = 2, .out_channels = 3, .kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
        gcl::Rng rng(3);
        Tensor<double> x = random<double>({2, 2, 7, 6}, rng);
        check_stacked_gradients(conv, arena, x, 2, rng);
    }
    SECTION("ConvBlock (convolution, batch norm, LeakyReLU twice)") {
        nn::ParameterArena<double> arena;
        nn::ConvBlock<double> block(nn::Scope<double>(arena, 4).child("block"), {.in_channels = 2, .out_channels = 3});
        gcl::Rng rng(8);
        Tensor<double> x = random<double>({3, 2, 6, 6}, rng);
        check_stacked_gradients(block, arena, x, 3, rng);
    }
    SECTION("UNetEncoder of depth 1 (max pooling between the blocks)") {
        nn::ParameterArena<double> arena;
        nn::UNetEncoder<double> encoder(nn::Scope<double>(arena, 6).child("encoder"),
                                        {.in_channels = 1, .depth = 1, .base_width = 2});
        gcl::Rng rng(9);
        Tensor<double> x = random<double>({2, 1, 8, 8}, rng);
        check_stacked_gradients(encoder, arena, x, 2, rng);
    }
}

TEST_CASE("backward_stacked rejects a stack that does not fit", "[nn][stacked]") {
    nn::ParameterArena<float> arena;
    nn::Conv2d<float> conv(nn::Scope<float>(arena, 1).child("conv"),
                           {.in_channels = 1, .out_channels = 2, .kernel = {3, 3}, .padding = {1, 1}});
    gcl::Rng rng(1);
    const Tensor<float> x = random<float>({2, 1, 5, 5}, rng);
    conv.forward(x.cview());
    Tensor<float> G(Shape{3, arena.size()});
    arena.begin_stacked_backward(G.view(), gcl::WriteMode::overwrite);
    const Tensor<float> wrong = random<float>({5, 2, 5, 5}, rng);
    CHECK_THROWS_WITH(conv.backward_stacked(wrong.cview(), 3),
                      Catch::Contains("nn::Conv2d::backward_stacked") && Catch::Contains("3 stacked gradients"));
    const Tensor<float> two = random<float>({4, 2, 5, 5}, rng);
    CHECK_THROWS_WITH(conv.backward_stacked(two.cview(), 2), Catch::Contains("takes 3"));
    // A single-pass write into a stacked target names the stacked form.
    CHECK_THROWS_WITH(conv.backward(random<float>({2, 2, 5, 5}, rng).cview()), Catch::Contains("grad_target(h, k)"));
    arena.end_backward();
}

TEST_CASE("a steady-state forward and K stacked backward passes allocate no host buffers", "[nn][stacked][alloc]") {
    nn::ParameterArena<float> arena;
    nn::UNetEncoder<float> encoder(nn::Scope<float>(arena, 3).child("encoder"),
                                   {.in_channels = 1, .depth = 2, .base_width = 4});
    gcl::Rng rng(5);
    const Tensor<float> x = random<float>({4, 1, 16, 16}, rng);
    const index_t passes = 3;
    const Tensor<float> dy = random<float>(nn::detail::stacked_shape(encoder.output_shape(x.shape()), passes), rng);
    Tensor<float> G(Shape{passes, arena.size()});
    const auto stacked_step = [&] {
        encoder.forward(x.cview());
        arena.begin_stacked_backward(G.view(), gcl::WriteMode::overwrite);
        encoder.backward_stacked(dy.cview(), passes);
        arena.end_backward();
    };
    const auto separate_step = [&] {
        encoder.forward(x.cview());
        for (index_t k = 0; k < passes; ++k) {
            arena.begin_backward(G.view(), k, gcl::WriteMode::overwrite);
            encoder.backward(dy.cview().narrow(0, k * x.dim(0), x.dim(0)));
        }
        arena.end_backward();
    };
    // The first step of each kind sizes the layers' outputs and the kernels' scratch.
    stacked_step();
    std::uint64_t before = gcl::host_allocation_count();
    stacked_step();
    CHECK(gcl::host_allocation_count() - before == 0);
    separate_step();
    before = gcl::host_allocation_count();
    separate_step();
    CHECK(gcl::host_allocation_count() - before == 0);
    // The counter sees allocations: a new tensor is one.
    const Tensor<float> one(Shape{7});
    CHECK(gcl::host_allocation_count() - before == 1);
}

TEST_CASE("PretrainStackedBackward equals K separate model backward passes", "[nn][stacked]") {
    nn::ParameterArena<float> arena;
    nn::PretrainModel<float> model(arena,
                                   {.encoder = {.in_channels = 1, .depth = 2, .base_width = 4},
                                    .image_hidden = 8, .image_out = 6, .pixel_hidden = 8, .pixel_out = 6},
                                   4);
    gcl::Rng rng(12);
    const Tensor<float> x = random<float>({4, 1, 16, 16}, rng);
    const index_t K = 3;
    Shape image_shape = model.image_shape(x.shape()), pixel_shape = model.pixel_shape(x.shape());
    const Tensor<float> d_image = random<float>({K, image_shape[0], image_shape[1]}, rng);
    const Tensor<float> d_pixel = random<float>({K, pixel_shape[0], pixel_shape[1], pixel_shape[2], pixel_shape[3]}, rng);
    Tensor<float> separate(Shape{K, arena.size()}), stacked(Shape{K, arena.size()});
    nn::PretrainStackedBackward<float> backward;
    for (int variant = 0; variant < 3; ++variant) {  // both heads, image head only, pixel head only
        const ConstView<float> di = variant == 2 ? ConstView<float>() : d_image.cview();
        const ConstView<float> dp = variant == 1 ? ConstView<float>() : d_pixel.cview();
        model.forward(x.cview());
        Tensor<float> dx_separate(nn::detail::stacked_shape(x.shape(), K));
        for (index_t k = 0; k < K; ++k) {
            arena.begin_backward(separate.view(), k, gcl::WriteMode::overwrite);
            const auto g = model.backward(variant == 2 ? ConstView<float>() : di.select(0, k),
                                          variant == 1 ? ConstView<float>() : dp.select(0, k));
            std::copy(g.input.data(), g.input.data() + g.input.numel(), dx_separate.data() + k * g.input.numel());
        }
        arena.end_backward();
        stacked.fill(123.0f);  // overwritten
        const Tensor<float> dx_stacked = gcl_test::copy(backward(model, arena, stacked.view(), di, dp));
        INFO("variant " << variant);
        // Rounding differences (the data-gradient products sum in another order) meet in sums with
        // cancellation (a bias gradient), so the bound is relative to the largest entry.
        const auto largest = [](const Tensor<float>& t) {
            float m = 0;
            for (index_t i = 0; i < t.numel(); ++i) m = std::max(m, std::abs(t.data()[i]));
            return static_cast<double>(m);
        };
        gcl_test::require_close(stacked, separate, 1e-4, 1e-4 * largest(separate), "parameter gradients");
        gcl_test::require_close(dx_stacked, dx_separate, 1e-4, 1e-4 * largest(dx_separate), "input gradients");
        CHECK_FALSE(arena.in_backward());
    }
    // Steady state: no host allocation in a forward and a stacked backward.
    model.forward(x.cview());
    backward(model, arena, stacked.view(), d_image.cview(), d_pixel.cview());
    const std::uint64_t before = gcl::host_allocation_count();
    model.forward(x.cview());
    backward(model, arena, stacked.view(), d_image.cview(), d_pixel.cview());
    CHECK(gcl::host_allocation_count() - before == 0);
}
