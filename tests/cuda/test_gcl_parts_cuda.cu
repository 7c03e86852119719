// GCL's objective on cuda against the same calls on the cpu: one whole pre-training step
// (GclObjective::gradient at every mitigation level, with and without the pixel filter), and its
// parts: the sampled locations, the host <-> device transfers, the encoder-output level's
// rearrangements and Gram matrix, and the pixel filter's anchor scores and kept-anchor rows.
// Copies and additions give the cpu's bits; sums may differ in their last bits (another order,
// cuDNN's convolutions, fused multiply-adds).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../optim/optim_test_util.hpp"
#include "gcl/core/random.hpp"
#include "gcl/cuda.cuh"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/transfer.hpp"
#include "gcl/train/gcl_objective.hpp"
#include "gcl/train/gradient_rows.hpp"
#include "support/cuda_parity.hpp"

using gcl::ConstView;
using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace ops = gcl::ops;
namespace tr = gcl::train;
using optim_test::random_tensor;

namespace {

template <class O>
concept HasGradient = requires(O& objective, gcl::ConstView<float, typename O::device_type> images,
                               gcl::ConstView<std::int64_t, typename O::device_type> meta) {
    objective.gradient(images, meta, std::uint64_t{0});
};

static_assert(HasGradient<tr::GclObjective<float>> && HasGradient<tr::GclObjective<float, gcl::cuda>>,
              "the objective computes its gradient on both devices");
static_assert(std::is_abstract_v<tr::GclBatchExchange<float, gcl::cuda>>);

gcl::nn::PretrainModelOptions tiny_model() {
    return {.encoder = {.in_channels = 1, .depth = 1, .base_width = 4},
            .image_hidden = 8,
            .image_out = 6,
            .pixel_hidden = 8,
            .pixel_out = 6};
}

// One model with the same parameters on each device (copied, so that the comparison does not
// depend on the two devices' normal draws), its arena, and a batch of 3 images x 2 views under
// two meta labels that contradict each other.
template <class T, class D>
struct StepSetup {
    gcl::nn::ParameterArena<T, D> arena;
    gcl::nn::PretrainModel<T, D> model;
    Tensor<T, D> images;
    Tensor<std::int64_t, D> meta;
    StepSetup(const Tensor<T>& parameters, const Tensor<T>& host_images, const Tensor<std::int64_t>& host_meta)
        : model(arena, tiny_model(), 3),
          images(ops::host_to_device<D>(host_images)),
          meta(ops::host_to_device<D>(host_meta)) {
        REQUIRE(arena.size() == parameters.numel());
        ops::copy(ops::host_to_device<D>(parameters).cview(), arena.flat_values());
    }
};

}  // namespace

TEMPLATE_TEST_CASE("one whole GCL step on cuda equals the cpu's: losses, report and parameter gradients",
                   "[cuda][train][gcl]", float, double) {
    using T = TestType;
    const double rtol = std::is_same_v<T, float> ? 1e-4 : 1e-10;
    const Tensor<T> images = random_tensor<T>(Shape{6, 1, 8, 8}, 5);
    const Tensor<std::int64_t> meta = Tensor<std::int64_t>::from(Shape{2, 6}, {0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0});
    Tensor<T> parameters;
    {
        gcl::nn::ParameterArena<T> arena;
        gcl::nn::PretrainModel<T> model(arena, tiny_model(), 3);
        parameters = Tensor<T>::copy_of(arena.flat_values());
    }
    StepSetup<T, gcl::cpu> host(parameters, images, meta);
    StepSetup<T, gcl::cuda> device(parameters, images, meta);

    struct Case {
        const char* name;
        tr::GclObjectiveOptions options;
    };
    std::vector<Case> cases;
    for (tr::Mitigation level : {tr::Mitigation::none, tr::Mitigation::parameters, tr::Mitigation::representation,
                                 tr::Mitigation::embeddings})
        for (tr::LabelSpace space : {tr::LabelSpace::shared, tr::LabelSpace::per_label})
            cases.push_back({tr::to_string(level),
                             {.mitigation = level, .label_space = space, .pixel_samples = 4,
                              .filter = tr::PixelFilter::none, .seed = 11}});
    // The filter ranks pixel pairs: in float, pairs whose scores agree to float rounding may be
    // ranked differently by the two devices, so the filtered steps are compared in double.
    if constexpr (std::is_same_v<T, double>) {
        cases.push_back({"anchors with image guidance",
                         {.pixel_samples = 4, .filter = tr::PixelFilter::anchors, .image_guidance = true, .seed = 11}});
        cases.push_back({"anchors without guidance",
                         {.pixel_samples = 4, .filter = tr::PixelFilter::anchors, .image_guidance = false, .seed = 11}});
        cases.push_back({"pairs",
                         {.pixel_samples = 4,
                          .filter = tr::PixelFilter::pairs,
                          .filter_options = {.rule = gcl::surgery::FilterRule::top_k_per_anchor, .k = 3},
                          .seed = 11}});
    }
    for (const Case& c : cases) {
        INFO(c.name << ", label space " << tr::to_string(c.options.label_space));
        tr::GclObjective<T> on_cpu(host.model, host.arena, c.options);
        tr::GclObjective<T, gcl::cuda> on_gpu(device.model, device.arena, c.options);
        const tr::GclStepReport r = on_cpu.gradient(host.images.cview(), host.meta.cview(), 7);
        const tr::GclStepReport g = on_gpu.gradient(device.images.cview(), device.meta.cview(), 7);
        REQUIRE(g.image_losses.size() == r.image_losses.size());
        REQUIRE(g.pixel_losses.size() == r.pixel_losses.size());
        for (std::size_t m = 0; m < r.image_losses.size(); ++m) {
            CHECK(g.image_losses[m] == Approx(r.image_losses[m]).epsilon(rtol));
            CHECK(g.pixel_losses[m] == Approx(r.pixel_losses[m]).epsilon(rtol));
        }
        CHECK(g.total == Approx(r.total).epsilon(rtol));
        CHECK(g.conflicting_pairs == r.conflicting_pairs);
        CHECK(g.projections == r.projections);
        CHECK(g.kept_pairs == r.kept_pairs);
        CHECK(g.candidate_pairs == r.candidate_pairs);
        CHECK(g.image_anchors_without_positives == r.image_anchors_without_positives);
        REQUIRE(g.label_cosines.size() == r.label_cosines.size());
        for (std::size_t i = 0; i < r.label_cosines.size(); ++i)
            CHECK(g.label_cosines[i] == Approx(r.label_cosines[i]).epsilon(rtol).margin(rtol));
        const Tensor<T> cpu_grads = Tensor<T>::copy_of(host.arena.flat_grads());
        const Tensor<T> gpu_grads = ops::device_to_host(ConstView<T, gcl::cuda>(device.arena.flat_grads()));
        CHECK(gcl_test::relative_gap(cpu_grads, gpu_grads) <= rtol * 10);
        // A second step on the same batch repeats the first bit for bit on the device.
        on_gpu.gradient(device.images.cview(), device.meta.cview(), 7);
        CHECK(gcl_test::same_bits(ops::device_to_host(ConstView<T, gcl::cuda>(device.arena.flat_grads())), gpu_grads));
    }
}

// Every member compiles for cuda: the objective's construction, options and data-parallel row
// selection, the levels' and the context's members.
template class gcl::train::GclObjective<float, gcl::cuda>;
template class gcl::train::MitigationLevels<float, gcl::cuda>;
template struct gcl::train::MitigationContext<double, gcl::cuda>;
template class gcl::train::DensePixelGradient<float, gcl::cuda>;
template struct gcl::train::GclStage<double, gcl::cuda>;
template struct gcl::train::EmbeddingGradients<float, gcl::cuda>;

TEST_CASE("PixelSampling on cuda holds the cpu's locations", "[cuda][train][gcl]") {
    const tr::PixelSampling sampling{.samples = 10, .seed = 7};
    const Tensor<index_t, gcl::cuda> device = sampling.locations<gcl::cuda>(6, 5, 3);
    CHECK(gcl_test::same_bits(gcl::to_host(device), sampling.locations(6, 5, 3)));
}

TEST_CASE("host_to_device and device_to_host on cuda, strided views included", "[cuda][ops][transfer]") {
    const Tensor<float> host = random_tensor<float>(Shape{4, 3}, 1);
    const Tensor<float, gcl::cuda> device = ops::host_to_device<gcl::cuda>(host);
    CHECK(gcl_test::same_bits(ops::device_to_host(device.cview()), host));
    const Tensor<float> transposed = ops::device_to_host(device.cview().transpose(0, 1));
    REQUIRE(transposed.shape() == Shape{3, 4});
    for (index_t i = 0; i < 3; ++i)
        for (index_t j = 0; j < 4; ++j) CHECK(transposed(i, j) == host(j, i));
}

TEMPLATE_TEST_CASE("the encoder-output level's rearrangements on cuda give the cpu's bits", "[cuda][train][gcl]", float,
                   double) {
    using T = TestType;
    const index_t N = 3, K = 2, C = 4, h = 2, w = 3, HW = h * w, F = C * HW;
    const Shape fs{N, C, h, w};
    Tensor<T> rows_sample(Shape{N, K, F}), rows_location(Shape{N * HW, K, C});
    Tensor<T, gcl::cuda> rows_sample_d(Shape{N, K, F}), rows_location_d(Shape{N * HW, K, C});
    for (index_t m = 0; m < K; ++m) {
        const Tensor<T> g = random_tensor<T>(fs, 10 + static_cast<std::uint64_t>(m));
        const Tensor<T, gcl::cuda> g_d = gcl::to_device(g);
        tr::label_rows_by_sample<T, gcl::cpu>(g.cview(), m, rows_sample.view());
        tr::label_rows_by_sample<T, gcl::cuda>(g_d.cview(), m, rows_sample_d.view());
        tr::label_rows_by_location<T, gcl::cpu>(g.cview(), m, rows_location.view());
        tr::label_rows_by_location<T, gcl::cuda>(g_d.cview(), m, rows_location_d.view());
        for (index_t n = 0; n < N; ++n)
            for (index_t c = 0; c < C; ++c)
                for (index_t p = 0; p < HW; ++p) {
                    CHECK(rows_sample(n, m, c * HW + p) == g(n, c, p / w, p % w));
                    CHECK(rows_location(n * HW + p, m, c) == g(n, c, p / w, p % w));
                }
    }
    CHECK(gcl_test::same_bits(gcl::to_host(rows_sample_d), rows_sample));
    CHECK(gcl_test::same_bits(gcl::to_host(rows_location_d), rows_location));

    const Tensor<T> combined = random_tensor<T>(Shape{N * HW, C}, 20);
    Tensor<T> map = random_tensor<T>(fs, 21), scratch(fs);
    Tensor<T, gcl::cuda> map_d = gcl::to_device(map), scratch_d(fs);
    const Tensor<T> before = map;
    tr::add_location_rows<T, gcl::cpu>(combined.cview(), map.view(), scratch.view());
    tr::add_location_rows<T, gcl::cuda>(gcl::to_device(combined).cview(), map_d.view(), scratch_d.view());
    for (index_t n = 0; n < N; ++n)
        for (index_t c = 0; c < C; ++c)
            for (index_t p = 0; p < HW; ++p)
                CHECK(map(n, c, p / w, p % w) == before(n, c, p / w, p % w) + combined(n * HW + p, c));
    CHECK(gcl_test::same_bits(gcl::to_host(map_d), map));

    const Tensor<T> g = random_tensor<T>(Shape{3, 500}, 30);
    const std::vector<double> gram = tr::row_gram<T, gcl::cpu>(g.cview());
    const std::vector<double> gram_d = tr::row_gram<T, gcl::cuda>(gcl::to_device(g).cview());
    REQUIRE(gram_d.size() == 9);
    for (std::size_t i = 0; i < 9; ++i) CHECK(gram_d[i] == Approx(gram[i]).epsilon(1e-12));
    CHECK(gram_d[1] == gram_d[3]);
}

TEST_CASE("PixelFilterPolicy's anchor scores and kept rows on cuda", "[cuda][train][gcl]") {
    const index_t A = 12;
    const Tensor<float> magnitudes = random_tensor<float>(Shape{A, A}, 40);
    const Tensor<float> scores = tr::PixelFilterPolicy::anchor_scores<float, gcl::cpu>(magnitudes.cview());
    const Tensor<float> scores_d =
        gcl::to_host(tr::PixelFilterPolicy::anchor_scores<float, gcl::cuda>(gcl::to_device(magnitudes).cview()));
    REQUIRE(scores_d.shape() == Shape{A, 1});
    for (index_t i = 0; i < A; ++i) CHECK(scores_d(i, 0) == Approx(scores(i, 0)).epsilon(1e-6));

    Tensor<std::uint8_t> kept(Shape{A, 1});
    for (index_t i = 0; i < A; ++i) kept(i, 0) = i % 3 == 0;
    const Tensor<std::uint8_t> rows = tr::PixelFilterPolicy::anchor_rows<gcl::cpu>(kept.cview());
    const Tensor<std::uint8_t> rows_d = gcl::to_host(tr::PixelFilterPolicy::anchor_rows<gcl::cuda>(gcl::to_device(kept).cview()));
    CHECK(gcl_test::same_bits(rows_d, rows));
    for (index_t i = 0; i < A; ++i)
        for (index_t a = 0; a < A; ++a) CHECK(rows(i, a) == kept(i, 0));
}
