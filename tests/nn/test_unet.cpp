// The U-Net, the pre-training model and weight transfer: names and shapes, gradient checks of
// the whole models in double, K backward passes after one forward against K separate runs, the
// image-branch feature gradient, errors.
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <set>

#include "gcl/testing/gradcheck.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/nn/pretrain_stacked_backward.hpp"
#include "gcl/nn/transfer.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/train/checkpoint_state.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

using namespace gcl_test;
namespace nn = gcl::nn;
using Arena = nn::ParameterArena<double>;
using gcl::WriteMode;

static_assert(nn::Layer<nn::UNet<float>> && nn::Layer<nn::UNet<double>> && nn::Layer<nn::UNetEncoder<float>>);

namespace {

const nn::UNetOptions tiny_unet{.in_channels = 1, .classes = 3, .depth = 2, .base_width = 2};
const nn::PretrainModelOptions tiny_pretrain{
    .encoder = tiny_unet.encoder(), .image_hidden = 5, .image_out = 3, .pixel_hidden = 4, .pixel_out = 3};

std::set<std::string> names_of(const Arena& arena) {
    std::set<std::string> names;
    for (const auto& p : arena.parameters()) names.insert(p.name);
    for (const auto& b : arena.buffers()) names.insert(b.name);
    return names;
}

// d/dtheta and d/dx of sum(w_img * image) + sum(w_pix * pixel), for a gradient check of both heads.
struct PretrainObjective {
    nn::PretrainModel<double>& model;
    const Tensor<double>& w_image;
    const Tensor<double>& w_pixel;
    double operator()(gcl::ConstView<double> x) const {
        const auto out = model.forward(x);
        double s = 0;
        for (index_t i = 0; i < out.image.numel(); ++i) s += w_image.data()[i] * out.image.data()[i];
        for (index_t i = 0; i < out.pixel.numel(); ++i) s += w_pixel.data()[i] * out.pixel.data()[i];
        return s;
    }
};

}  // namespace

TEST_CASE("UNet: names, shapes, parameter options", "[nn][unet]") {
    Arena arena;
    nn::UNet<double> unet(arena, {.in_channels = 2, .classes = 4, .depth = 3, .base_width = 4}, 1);
    REQUIRE(arena.parameters().front().name == "encoder.block0.conv1.weight");
    REQUIRE(arena.parameters().back().name == "decoder.head.bias");
    REQUIRE(arena.info(arena.parameter("encoder.block3.conv2.weight")).shape == Shape{32, 32, 3, 3});
    REQUIRE(arena.info(arena.parameter("decoder.up2.weight")).shape == Shape{32, 16, 2, 2});
    REQUIRE(arena.info(arena.parameter("decoder.block0.conv1.weight")).shape == Shape{4, 8, 3, 3});
    REQUIRE(arena.info(arena.parameter("decoder.head.weight")).shape == Shape{4, 4, 1, 1});
    REQUIRE(arena.find_buffer("decoder.block1.bn2.running_var").has_value());
    REQUIRE_FALSE(arena.find_parameter("encoder.block0.conv1.bias").has_value());  // BN follows
    REQUIRE_FALSE(arena.info(arena.parameter("encoder.block0.bn1.weight")).options.weight_decay);
    REQUIRE(arena.info(arena.parameter("encoder.block0.conv1.weight")).options.weight_decay);
    // 4 encoder blocks x 6 + 3 x (up weight, up bias) + 3 decoder blocks x 6 + head 2
    REQUIRE(arena.parameter_count() == 24 + 6 + 18 + 2);
    REQUIRE(arena.buffer_count() == 7 * 4);

    REQUIRE(unet.output_shape({3, 2, 16, 24}) == Shape{3, 4, 16, 24});
    REQUIRE(unet.encoder().output_shape({3, 2, 16, 24}) == Shape{3, 32, 2, 3});
    REQUIRE(unet.encoder().skip_shape({3, 2, 16, 24}, 1) == Shape{3, 8, 8, 12});

    gcl::Rng rng(31);
    const auto x = random<double>({2, 2, 16, 8}, rng);
    const auto logits = unet.forward(x.cview());
    REQUIRE(logits.shape() == Shape{2, 4, 16, 8});
    REQUIRE(unet.encoder().skips().size() == 3);
    REQUIRE(unet.encoder().skip(2).shape() == Shape{2, 16, 4, 2});
    REQUIRE(unet.encoder().bottleneck().shape() == Shape{2, 32, 2, 1});
}

TEST_CASE("UNet: K backward passes after one forward equal K separate runs, bit for bit", "[nn][unet][target]") {
    gcl::Rng rng(33);
    nn::ParameterArena<float> arena;
    nn::UNet<float> unet(arena, {.in_channels = 1, .classes = 3, .depth = 2, .base_width = 4}, 3);
    const auto x = random<float>({3, 1, 16, 16}, rng);
    const Shape ys = unet.output_shape(x.shape());
    const index_t K = 3, P = arena.size();
    std::vector<Tensor<float>> dys, grads, dxs;
    for (index_t k = 0; k < K; ++k) dys.push_back(random<float>(ys, rng));
    for (index_t k = 0; k < K; ++k) {
        unet.forward(x.cview());
        arena.begin_backward();
        dxs.push_back(copy(unet.backward(dys[k].cview())));
        grads.push_back(copy(arena.flat_grads()));
    }
    Tensor<float> G({K, P});
    unet.forward(x.cview());
    for (index_t k = 0; k < K; ++k) {
        arena.begin_backward(G.view(), k, WriteMode::overwrite);
        require_equal(unet.backward(dys[k].cview()), dxs[k], "dx");
    }
    for (index_t k = 0; k < K; ++k) require_equal(G.cview().select(0, k), grads[k], "row " + std::to_string(k));
}

TEMPLATE_TEST_CASE("UNet and PretrainModel without the input gradient: the same parameter gradients, bit for bit",
                   "[nn][unet][pretrain][input_gradient]", float, double) {
    using T = TestType;
    gcl::Rng rng(41);
    nn::ParameterArena<T> arena;
    nn::UNet<T> unet(arena, {.in_channels = 1, .classes = 3, .depth = 2, .base_width = 4}, 5);
    const auto x = random<T>({3, 1, 16, 16}, rng);
    const auto dy = random<T>(unet.output_shape(x.shape()), rng);
    const auto run = [&](bool input_gradient) {
        unet.set_input_gradient(input_gradient);
        unet.forward(x.cview());
        arena.begin_backward();
        const gcl::ConstView<T> dx = unet.backward(dy.cview());
        arena.end_backward();
        REQUIRE((dx.data() != nullptr) == input_gradient);
        return copy(arena.flat_grads());
    };
    REQUIRE(unet.input_gradient());
    const auto with = run(true);
    const auto without = run(false);
    REQUIRE_FALSE(unet.input_gradient());
    require_equal(without.cview(), with, "parameter gradients");

    // The pre-training model, one pass and K stacked passes.
    nn::ParameterArena<T> parena;
    nn::PretrainModel<T> model(parena,
                               {.encoder = {.in_channels = 1, .depth = 2, .base_width = 4},
                                .image_hidden = 8, .image_out = 4, .pixel_hidden = 8, .pixel_out = 4},
                               6);
    const index_t K = 2;
    const auto d_image = random<T>(Shape{K, 3, 4}, rng);
    const auto d_pixel = random<T>(Shape{K, 3, 4, 4, 4}, rng);
    nn::PretrainStackedBackward<T> stacked;
    std::vector<Tensor<T>> rows;
    for (bool input_gradient : {true, false}) {
        model.set_input_gradient(input_gradient);
        model.forward(x.cview());
        parena.begin_backward();
        const auto g = model.backward(d_image.cview().select(0, 0), d_pixel.cview().select(0, 0));
        parena.end_backward();
        REQUIRE((g.input.data() != nullptr) == input_gradient);
        rows.push_back(copy(parena.flat_grads()));
        Tensor<T> G({K, parena.size()});
        model.forward(x.cview());
        const gcl::ConstView<T> dx = stacked(model, parena, G.view(), d_image.cview(), d_pixel.cview());
        REQUIRE((dx.data() != nullptr) == input_gradient);
        rows.push_back(copy(G.cview()));
    }
    require_equal(rows[2].cview(), rows[0], "one pass");
    require_equal(rows[3].cview(), rows[1], "K stacked passes");
}

TEST_CASE("UNet: evaluation mode, input checks", "[nn][unet][errors]") {
    gcl::Rng rng(34);
    Arena arena;
    nn::UNet<double> unet(arena, tiny_unet, 4);
    const auto x = random<double>({2, 1, 8, 8}, rng);
    unet.forward(x.cview());
    unet.set_training(false);
    REQUIRE_FALSE(unet.training());
    REQUIRE_FALSE(unet.decoder().block(0).layers().get<1>().training());
    const auto buffers = copy(arena.flat_buffers());
    const auto a = copy(unet.forward(x.cview()));
    require_equal(unet.forward(x.cview()), a, "evaluation is repeatable");
    require_equal(arena.flat_buffers(), buffers, "evaluation leaves the running statistics");

    require_error(
        [&] {
            unet.forward(Tensor<double>({2, 1, 8, 6}).cview());
        },
        {"nn::UNet", "divisible by 4", "[2, 1, 8, 6]"});
    require_error([&] { unet.forward(Tensor<double>({2, 3, 8, 8}).cview()); }, {"[N, 1, H, W]", "[2, 3, 8, 8]"});
    Tensor<double> bad = x;
    bad(1, 0, 3, 4) = std::numeric_limits<double>::quiet_NaN();
    require_error([&] { unet.forward(bad.cview()); }, {"nn::UNet::forward", "the input", "[1, 0, 3, 4]"});
    Arena fresh_arena;
    nn::UNet<double> fresh(fresh_arena, tiny_unet, 4);
    fresh_arena.begin_backward();
    require_error([&] { fresh.backward(Tensor<double>({2, 3, 8, 8}).cview()); }, {"before forward"});
    require_error([&] { nn::UNet<double>(fresh_arena, tiny_unet, 4); }, {"already registered"});
}

TEST_CASE("PretrainModel: names, shapes, gradient check of both heads through the encoder",
          "[nn][pretrain][gradcheck]") {
    gcl::Rng rng(35);
    Arena arena;
    nn::PretrainModel<double> model(arena, tiny_pretrain, 5);
    const auto names = names_of(arena);
    REQUIRE(names.contains("encoder.block2.bn2.running_mean"));
    REQUIRE(names.contains("image_head.fc2.weight"));
    REQUIRE(names.contains("pixel_head.conv1.bias"));
    REQUIRE(arena.info(arena.parameter("image_head.fc1.weight")).shape == Shape{5, 8});
    REQUIRE(arena.info(arena.parameter("pixel_head.conv2.weight")).shape == Shape{3, 4, 1, 1});

    // Random head biases (the image head's are its batch norms'): no embedding starts near zero
    // length, where normalising is ill-conditioned.
    for (const char* bias :
         {"image_head.bn1.bias", "image_head.bn2.bias", "pixel_head.conv1.bias", "pixel_head.conv2.bias"})
        gcl::fill_uniform<double>(arena.value(bias), rng, -0.5, 0.5);
    auto x = random<double>({3, 1, 8, 8}, rng);
    REQUIRE(model.feature_shape(x.shape()) == Shape{3, 8, 2, 2});
    REQUIRE(model.image_shape(x.shape()) == Shape{3, 3});
    REQUIRE(model.pixel_shape(x.shape()) == Shape{3, 3, 2, 2});
    const auto out = model.forward(x.cview());
    REQUIRE(out.image.shape() == Shape{3, 3});
    REQUIRE(out.pixel.shape() == Shape{3, 3, 2, 2});
    REQUIRE(out.features.data() == model.encoder().bottleneck().data());

    const auto w_image = random<double>({3, 3}, rng), w_pixel = random<double>({3, 3, 2, 2}, rng);
    PretrainObjective objective{model, w_image, w_pixel};
    gcl::testing::GradCheckOptions options;
    options.atol = 1e-7;
    // Parameters: the arena's flat gradient after one backward pass with both heads.
    objective(x.cview());
    arena.begin_backward();
    const auto grads = model.backward(w_image.cview(), w_pixel.cview());
    const auto dx = copy(grads.input);
    const auto analytic = copy(arena.flat_grads());
    auto param_check = gcl::testing::check_gradient([&] { return objective(x.cview()); }, arena.flat_values(),
                                                    analytic.cview(), options);
    INFO(param_check.message);
    REQUIRE(param_check.passed);
    auto input_check =
        gcl::testing::check_gradient([&] { return objective(x.cview()); }, x.view(), dx.cview(), options);
    INFO(input_check.message);
    REQUIRE(input_check.passed);
}

TEST_CASE("PretrainModel: K backward passes into a K x P matrix equal K separate runs; one head at a time",
          "[nn][pretrain][target]") {
    gcl::Rng rng(36);
    nn::ParameterArena<float> arena;
    nn::PretrainModel<float> model(arena,
                                   {.encoder = {.in_channels = 1, .depth = 2, .base_width = 4},
                                    .image_hidden = 8,
                                    .image_out = 4,
                                    .pixel_hidden = 8,
                                    .pixel_out = 4},
                                   7);
    const auto x = random<float>({4, 1, 16, 16}, rng);
    const index_t K = 3, P = arena.size();
    // Pass k: image gradient only (k = 0), pixel gradient only (k = 1), both (k = 2).
    std::vector<Tensor<float>> d_image, d_pixel;
    for (index_t k = 0; k < K; ++k) {
        d_image.push_back(random<float>(model.image_shape(x.shape()), rng));
        d_pixel.push_back(random<float>(model.pixel_shape(x.shape()), rng));
    }
    const auto image_of = [&](index_t k) { return k == 1 ? gcl::ConstView<float>() : d_image[k].cview(); };
    const auto pixel_of = [&](index_t k) { return k == 0 ? gcl::ConstView<float>() : d_pixel[k].cview(); };

    std::vector<Tensor<float>> grads, dxs, dfs;
    for (index_t k = 0; k < K; ++k) {
        model.forward(x.cview());
        arena.begin_backward();
        const auto g = model.backward(image_of(k), pixel_of(k));
        dxs.push_back(copy(g.input));
        dfs.push_back(copy(g.features));
        grads.push_back(copy(arena.flat_grads()));
    }
    // The image-only pass leaves the pixel head's gradients at zero and vice versa.
    const auto pixel_weight = arena.info(arena.parameter("pixel_head.conv1.weight"));
    const auto image_weight = arena.info(arena.parameter("image_head.fc1.weight"));
    const auto nonzero = [](const Tensor<float>& g, const gcl::nn::ParameterInfo& p) {
        index_t count = 0;
        for (index_t i = 0; i < p.numel(); ++i) count += g.data()[p.offset + i] != 0.0f;
        return count;
    };
    REQUIRE(nonzero(grads[0], pixel_weight) == 0);
    REQUIRE(nonzero(grads[1], image_weight) == 0);
    REQUIRE(nonzero(grads[2], pixel_weight) > 0);
    REQUIRE(nonzero(grads[2], image_weight) > 0);

    Tensor<float> G({K, P}, 3.0f);
    const auto out = model.forward(x.cview());
    (void)out;
    Tensor<float> df_image_sum(model.feature_shape(x.shape()));
    for (index_t k = 0; k < K; ++k) {
        arena.begin_backward(G.view(), k, WriteMode::overwrite);
        const auto g = model.backward(image_of(k), pixel_of(k));
        require_equal(g.input, dxs[k], "dx");
        require_equal(g.features, dfs[k], "dF");
        REQUIRE((g.features_from_image.data() == nullptr) == (k == 1));
        REQUIRE((g.features_from_pixel.data() == nullptr) == (k == 0));
    }
    for (index_t k = 0; k < K; ++k) require_equal(G.cview().select(0, k), grads[k], "row " + std::to_string(k));

    // Both heads at once: dF is the sum of the two heads' dF.
    arena.begin_backward();
    const auto both = model.backward(d_image[2].cview(), d_pixel[2].cview());
    const auto from_image = copy(both.features_from_image), from_pixel = copy(both.features_from_pixel);
    for (index_t i = 0; i < from_image.numel(); ++i)
        REQUIRE(both.features.data()[i] == from_image.data()[i] + from_pixel.data()[i]);

    require_error([&] { model.backward({}, {}); }, {"nn::PretrainModel::backward", "at least one head"});
}

TEST_CASE("PretrainModel: the image branch's feature gradient writes no parameter gradient",
          "[nn][pretrain][guidance]") {
    gcl::Rng rng(37);
    Arena arena;
    nn::PretrainModel<double> model(arena, tiny_pretrain, 8);
    const auto x = random<double>({3, 1, 8, 8}, rng);
    const auto d_image = random<double>({3, 3}, rng), d_pixel = random<double>({3, 3, 2, 2}, rng);
    model.forward(x.cview());

    // Inside a pass into row 1 of G: the guidance leaves G and the arena's own gradients alone,
    // and the pass goes on into the same row.
    Tensor<double> G({2, arena.size()});
    arena.zero_grad();
    arena.begin_backward(G.view(), 1, WriteMode::overwrite);
    const auto guidance = copy(model.image_feature_gradient(d_image.cview()));
    for (index_t i = 0; i < G.numel(); ++i) REQUIRE(G.data()[i] == 0.0);
    for (index_t i = 0; i < arena.size(); ++i) REQUIRE(arena.flat_grads().data()[i] == 0.0);
    REQUIRE(arena.in_backward());
    const auto g = model.backward(d_image.cview(), d_pixel.cview());
    require_equal(guidance, g.features_from_image, "guidance = dF through the image head");
    Arena reference_arena;
    nn::PretrainModel<double> reference(reference_arena, tiny_pretrain, 8);
    reference.forward(x.cview());
    reference_arena.begin_backward();
    reference.backward(d_image.cview(), d_pixel.cview());
    require_equal(G.cview().select(0, 1), reference_arena.flat_grads(), "the pass went on into row 1");

    // Outside a pass: no pass is left open afterwards, also when the gradient has the wrong shape.
    arena.end_backward();
    model.image_feature_gradient(d_image.cview());
    REQUIRE_FALSE(arena.in_backward());
    require_error([&] { model.image_feature_gradient(Tensor<double>({3, 4}).cview()); }, {"dy has shape [3, 4]"});
    REQUIRE_FALSE(arena.in_backward());
    arena.begin_backward(G.view(), 0, WriteMode::overwrite);
    require_error([&] { model.image_feature_gradient(Tensor<double>({3, 4}).cview()); }, {"dy has shape [3, 4]"});
    REQUIRE(arena.flat_grad_target().data() == G.data());
}

TEST_CASE("Transfer: a pre-trained encoder into a U-Net, by name", "[nn][transfer]") {
    gcl::Rng rng(38);
    Arena pretrain_arena;
    nn::PretrainModel<double> pretrain(pretrain_arena, tiny_pretrain, 11);
    // "Pre-train": change every parameter and buffer.
    gcl::fill_uniform<double>(pretrain_arena.flat_values(), rng, -1, 1);
    gcl::fill_uniform<double>(pretrain_arena.flat_buffers(), rng, 0.5, 1);

    nn::ParameterArena<float> unet_arena;
    nn::UNet<float> unet(unet_arena, tiny_unet, 12);
    const auto decoder_before = copy(unet_arena.value("decoder.head.weight"));
    const auto report = nn::transfer_parameters(pretrain_arena, unet_arena, {.source_prefix = "encoder."});
    // 3 blocks x (2 convs + 2 BN x 2 parameters) = 18 parameters, 3 x 4 buffers
    REQUIRE(report.copied.size() == 18 + 12);
    REQUIRE(report.skipped.empty());
    std::set<std::string> missing(report.missing.begin(), report.missing.end());
    REQUIRE(missing.empty());  // only names under "encoder." are considered on both sides
    for (const auto& p : unet_arena.parameters()) {
        if (p.name.rfind("encoder.", 0) != 0) continue;
        const auto from = pretrain_arena.value(p.name);
        const auto to = unet_arena.value(p.name);
        for (index_t i = 0; i < from.numel(); ++i) REQUIRE(to.data()[i] == static_cast<float>(from.data()[i]));
    }
    const auto rm = pretrain_arena.buffer_value("encoder.block1.bn2.running_mean");
    REQUIRE(unet_arena.buffer_value("encoder.block1.bn2.running_mean")(3) == static_cast<float>(rm(3)));
    require_equal(unet_arena.value("decoder.head.weight"), decoder_before, "decoder untouched");

    // Everything: the heads are skipped, the decoder is reported as left alone.
    const auto all = nn::transfer_parameters(pretrain_arena, unet_arena);
    REQUIRE(all.copied.size() == 30);
    REQUIRE(std::find(all.skipped.begin(), all.skipped.end(), "image_head.fc1.weight") != all.skipped.end());
    REQUIRE(all.skipped.size() == 14);  // the pixel head's 4 conv tensors, the image head's 2 weights and two batch norms (4 values each)
    REQUIRE(std::find(all.missing.begin(), all.missing.end(), "decoder.head.bias") != all.missing.end());
    REQUIRE(std::find(all.missing.begin(), all.missing.end(), "decoder.block0.bn1.running_var") != all.missing.end());
    const std::string summary = all.summary(2);
    INFO(summary);
    REQUIRE(summary.find("copied 30 entries, skipped 14 (") == 0);
    REQUIRE(summary.find(", ...)") != std::string::npos);

    // Without buffers.
    REQUIRE(nn::transfer_parameters(pretrain_arena, unet_arena, {.source_prefix = "encoder.", .buffers = false})
                .copied.size() == 18);
}

TEST_CASE("Transfer: renamed prefixes; shape and kind mismatches copy nothing", "[nn][transfer][errors]") {
    gcl::Rng rng(39);
    Arena source;
    nn::UNetEncoder<double> encoder(nn::Scope<double>(source, 1).child("backbone"), tiny_unet.encoder());
    gcl::fill_uniform<double>(source.flat_values(), rng, -1, 1);
    Arena target;
    nn::UNet<double> unet(target, tiny_unet, 2);
    const auto report =
        nn::transfer_parameters(source, target, {.source_prefix = "backbone.", .target_prefix = "encoder."});
    REQUIRE(report.copied.size() == 30);
    REQUIRE(report.copied.front() == "encoder.block0.conv1.weight");
    REQUIRE(target.value("encoder.block2.conv1.weight")(3, 1, 2, 0) ==
            source.value("backbone.block2.conv1.weight")(3, 1, 2, 0));

    // A wider U-Net: every encoder shape differs; nothing is copied and the message lists them.
    Arena wide;
    nn::UNet<double> wide_unet(wide, {.in_channels = 1, .classes = 3, .depth = 2, .base_width = 3}, 2);
    const auto before = copy(wide.flat_values());
    require_error([&] { nn::transfer_parameters(target, wide, {.source_prefix = "encoder."}); },
                  {"nn::transfer_parameters", "nothing was copied",
                   "'encoder.block0.conv1.weight' has shape [2, 1, 3, 3] in the source but "
                   "'encoder.block0.conv1.weight' has shape [3, 1, 3, 3] in the target"});
    require_equal(wide.flat_values(), before, "unchanged");

    // A parameter on one side, a buffer on the other.
    Arena a, b;
    a.add_parameter("x", {2});
    b.add_buffer("x", {2});
    require_error([&] { nn::transfer_parameters(a, b); }, {"'x' is a parameter in the source but 'x' is a buffer"});
}

TEST_CASE("Transfer through a checkpoint: a saved pre-training model loads partially into a U-Net",
          "[nn][transfer][checkpoint]") {
    gcl::Rng rng(40);
    Arena pretrain_arena;
    nn::PretrainModel<double> pretrain(pretrain_arena, tiny_pretrain, 13);
    gcl::fill_uniform<double>(pretrain_arena.flat_values(), rng, -1, 1);
    gcl::fill_uniform<double>(pretrain_arena.flat_buffers(), rng, 0.5, 1);
    const auto path =
        std::filesystem::temp_directory_path() / ("gcl_nn_transfer_" + std::to_string(::getpid()) + ".gclc");
    gcl::train::CheckpointWriter writer;
    gcl::train::add_parameters(writer, pretrain_arena);
    writer.write(path);

    Arena unet_arena;
    nn::UNet<double> unet(unet_arena, tiny_unet, 14);
    const auto head_before = copy(unet_arena.value("decoder.head.weight"));
    const auto checkpoint = gcl::train::Checkpoint::read(path);
    std::filesystem::remove(path);
    const auto report = gcl::train::load_parameters(checkpoint, unet_arena, gcl::train::LoadMode::partial);
    REQUIRE(report.loaded.size() == 30);
    for (const auto& name : report.missing) REQUIRE(name.find("decoder.") != std::string::npos);
    require_equal(unet_arena.value("encoder.block1.conv2.weight"), pretrain_arena.value("encoder.block1.conv2.weight"),
                  "encoder weight");
    require_equal(unet_arena.buffer_value("encoder.block2.bn1.running_var"),
                  pretrain_arena.buffer_value("encoder.block2.bn1.running_var"), "encoder running variance");
    require_equal(unet_arena.value("decoder.head.weight"), head_before, "decoder untouched");
}
