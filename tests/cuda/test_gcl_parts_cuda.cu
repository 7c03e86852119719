// The device-generic parts of GCL's objective on cuda, against the same calls on the cpu: the
// sampled locations, the host <-> device transfers, the encoder-output level's rearrangements and
// Gram matrix, and the pixel filter's anchor scores and kept-anchor rows. Copies and additions
// give the cpu's bits; sums in double may differ in their last bits (another order).
//
// GclObjective<float, gcl::cuda> and its levels instantiate here; the members that compute the
// contrasts wait for cuda to join train::ContrastDevice (contrast_device.hpp says what is
// missing), which the static_asserts hold to: when cuda joins, they say so.
#include <catch2/catch.hpp>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "../optim/optim_test_util.hpp"
#include "gcl/core/random.hpp"
#include "gcl/cuda.cuh"
#include "gcl/ops/transfer.hpp"
#include "gcl/train/gcl_objective.hpp"
#include "gcl/train/gradient_rows.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace ops = gcl::ops;
namespace tr = gcl::train;
using optim_test::random_tensor;

namespace {

// Same shape and the same bits.
template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() && optim_test::bitwise_equal<T>(a.cview(), b.cview());
}

template <class O>
concept HasGradient = requires(O& objective, gcl::ConstView<float, typename O::device_type> images,
                               gcl::ConstView<std::int64_t, typename O::device_type> meta) {
    objective.gradient(images, meta, std::uint64_t{0});
};

static_assert(HasGradient<tr::GclObjective<float>>, "the cpu objective computes its gradient");
static_assert(!tr::ContrastDevice<gcl::cuda> && !HasGradient<tr::GclObjective<float, gcl::cuda>>,
              "cuda is not a ContrastDevice yet (contrast_device.hpp); when it is, test the whole GCL step here");
static_assert(std::is_abstract_v<tr::GclBatchExchange<float, gcl::cuda>>);

}  // namespace

// Every member whose constraints cuda meets compiles: the objective's construction, options and
// data-parallel row selection, the levels' and the context's device-independent members.
template class gcl::train::GclObjective<float, gcl::cuda>;
template class gcl::train::MitigationLevels<float, gcl::cuda>;
template struct gcl::train::MitigationContext<double, gcl::cuda>;
template class gcl::train::DensePixelGradient<float, gcl::cuda>;
template struct gcl::train::GclStage<double, gcl::cuda>;
template struct gcl::train::EmbeddingGradients<float, gcl::cuda>;

TEST_CASE("PixelSampling on cuda holds the cpu's locations", "[cuda][train][gcl]") {
    const tr::PixelSampling sampling{.samples = 10, .seed = 7};
    const Tensor<index_t, gcl::cuda> device = sampling.locations<gcl::cuda>(6, 5, 3);
    CHECK(same_bits(gcl::to_host(device), sampling.locations(6, 5, 3)));
}

TEST_CASE("host_to_device and device_to_host on cuda, strided views included", "[cuda][ops][transfer]") {
    const Tensor<float> host = random_tensor<float>(Shape{4, 3}, 1);
    const Tensor<float, gcl::cuda> device = ops::host_to_device<gcl::cuda>(host);
    CHECK(same_bits(ops::device_to_host(device.cview()), host));
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
    CHECK(same_bits(gcl::to_host(rows_sample_d), rows_sample));
    CHECK(same_bits(gcl::to_host(rows_location_d), rows_location));

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
    CHECK(same_bits(gcl::to_host(map_d), map));

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
    CHECK(same_bits(rows_d, rows));
    for (index_t i = 0; i < A; ++i)
        for (index_t a = 0; a < A; ++a) CHECK(rows(i, a) == kept(i, 0));
}
