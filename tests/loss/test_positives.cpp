// Positives as data (loss/contract.hpp): keys and masks describe the same pairs as the
// PositivePairs rules, and the contrast gives the same results, bit for bit, from either.
#include <catch2/catch.hpp>

#include <cstring>

#include "gcl/core/random.hpp"
#include "gcl/loss/pixel_contrast.hpp"
#include "gcl/loss/supcon.hpp"
#include "gcl/testing/gradcheck.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::loss::ContrastOptions;
using gcl::loss::ContrastResult;
using gcl::loss::PositivePairs;
using gcl::loss::Positives;

namespace {

template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(T) * a.numel()) == 0;
}

template <class T>
void require_same_result(const ContrastResult<T>& a, const ContrastResult<T>& b) {
    CHECK(same_bits(a.losses, b.losses));
    CHECK(same_bits(a.grads, b.grads));
    CHECK(same_bits(a.grad_sum, b.grad_sum));
    CHECK(same_bits(a.pair_grads, b.pair_grads));
    CHECK(a.total == b.total);
    CHECK(a.anchors_without_positives == b.anchors_without_positives);
}

// Whether the positives say a is a positive of i under m (keys or masks), a != i.
bool says_positive(const Positives<>& p, index_t m, index_t i, index_t a) {
    return p.by_keys() ? p.keys(m, i) == p.keys(m, a) : p.masks(m, i, a) != 0;
}

// Masks [K, A, A] equivalent to the given positives, by the definition above.
Positives<> as_masks(const Positives<>& p) {
    const index_t K = p.labels(), A = p.embeddings();
    Positives<> out;
    out.masks = Tensor<std::uint8_t>(Shape{K, A, A});
    for (index_t m = 0; m < K; ++m)
        for (index_t i = 0; i < A; ++i)
            for (index_t a = 0; a < A; ++a) out.masks(m, i, a) = i != a && says_positive(p, m, i, a);
    return out;
}

Tensor<double> normal(const Shape& shape, std::uint64_t seed) {
    Tensor<double> x(shape);
    gcl::Rng rng(seed);
    gcl::fill_normal<double>(x.view(), rng);
    return x;
}

}  // namespace

TEST_CASE("positives as keys describe the PositivePairs rules, unknown labels included", "[loss][positives]") {
    const index_t B = 5;
    const Tensor<index_t> patient = Tensor<index_t>::from(Shape{B}, {3, 1, 3, -1, 1});
    const Tensor<double> position = Tensor<double>::from(Shape{B}, {0.05, 0.3, 0.32, 0.7, 1.0});
    PositivePairs pairs(B);
    pairs.add_labels(patient.cview()).add_bins<double>(position.cview(), 3);
    const Positives<> p = pairs.positives();
    REQUIRE(p.by_keys());
    REQUIRE(p.keys.shape() == Shape{2, 2 * B});
    for (index_t m = 0; m < 2; ++m)
        for (index_t i = 0; i < 2 * B; ++i)
            for (index_t a = 0; a < 2 * B; ++a)
                if (a != i) REQUIRE(says_positive(p, m, i, a) == pairs.positive(m, i, a));

    // Pixels: (n, s) and (n', s') are positives when s = s', n != n' and the images match.
    const index_t S = 3;
    const Positives<> px = pairs.pixel_positives(S);
    REQUIRE(px.by_keys());
    for (index_t m = 0; m < 2; ++m)
        for (index_t i = 0; i < 2 * B * S; ++i)
            for (index_t a = 0; a < 2 * B * S; ++a) {
                if (a == i) continue;
                const index_t ni = i / S, na = a / S;
                const bool expected = i % S == a % S && ni != na &&
                                      pairs.images_match(m, pairs.image_of(ni), pairs.image_of(na));
                REQUIRE(says_positive(px, m, i, a) == expected);
            }

    // A threshold label turns every label into masks, with the same pairs.
    pairs.add_threshold<double>(position.cview(), 0.1);
    const Positives<> q = pairs.positives();
    REQUIRE_FALSE(q.by_keys());
    const Tensor<std::uint8_t> reference = pairs.embedding_masks();
    REQUIRE(q.masks.shape() == reference.shape());
    CHECK(std::memcmp(q.masks.data(), reference.data(), reference.numel()) == 0);
    const Positives<> qx = pairs.pixel_positives(S);
    for (index_t m = 0; m < 3; ++m)
        for (index_t i = 0; i < 2 * B * S; ++i)
            for (index_t a = 0; a < 2 * B * S; ++a) {
                const index_t ni = i / S, na = a / S;
                const bool expected = i % S == a % S && ni != na &&
                                      pairs.images_match(m, pairs.image_of(ni), pairs.image_of(na));
                REQUIRE((qx.masks(m, i, a) != 0) == expected);
            }
}

TEMPLATE_TEST_CASE("the contrast gives the same bits from keys and from masks", "[loss][positives]", float, double) {
    using T = TestType;
    const index_t B = 6;
    const Tensor<index_t> a = Tensor<index_t>::from(Shape{B}, {0, 1, 0, 2, -1, 1});
    const Tensor<index_t> b = Tensor<index_t>::from(Shape{B}, {4, 4, 5, 5, 4, -3});
    PositivePairs pairs(B);
    pairs.add_labels(a.cview()).add_labels(b.cview());
    const Tensor<T> z = gcl::testing::cast<T>(normal(Shape{2 * B, 5}, 7));
    for (bool normalize : {true, false}) {
        const ContrastOptions options{.temperature = 0.2, .normalize = normalize, .keep_pair_grads = true};
        const Positives<> keys = pairs.positives();
        const ContrastResult<T> by_pairs = gcl::loss::supcon<T>(z.cview(), pairs, options);
        const ContrastResult<T> by_keys = gcl::loss::supcon<T>(z.cview(), keys, options);
        const ContrastResult<T> by_masks = gcl::loss::supcon<T>(z.cview(), as_masks(keys), options);
        require_same_result(by_pairs, by_keys);
        require_same_result(by_keys, by_masks);

        // The [K, N] label matrix gives the same keys' pairs.
        Tensor<index_t> labels(Shape{2, 2 * B});
        for (index_t i = 0; i < 2 * B; ++i) {
            labels(0, i) = a(i % B);
            labels(1, i) = b(i % B);
        }
        require_same_result(gcl::loss::supcon<T>(z.cview(), labels.cview(), options), by_keys);
    }

    // Pixels: keys from PositivePairs against the masks of the same pairs.
    const Tensor<T> f = gcl::testing::cast<T>(normal(Shape{2 * B, 4, 3, 3}, 8));
    const Tensor<index_t> loc = Tensor<index_t>::from(Shape{3}, {0, 4, 8});
    const ContrastOptions options{.temperature = 0.1, .normalize = true, .keep_pair_grads = true};
    const ContrastResult<T> pixel = gcl::loss::pixel_contrast<T>(f.cview(), loc.cview(), pairs, options);
    const Tensor<T> gathered = gcl::loss::gather_pixels<T>(f.cview(), loc.cview());
    const ContrastResult<T> masked =
        gcl::loss::multi_label_contrast<T>("test", gathered.cview(), as_masks(pairs.pixel_positives(3)), options);
    require_same_result(pixel, masked);
    const Positives<> pixel_masks = as_masks(pairs.pixel_positives(3));
    require_same_result(pixel, gcl::loss::pixel_contrast<T>(f.cview(), loc.cview(), pixel_masks, options));
}

TEST_CASE("contrast gradients from keys and from an asymmetric mask pass the finite-difference check",
          "[loss][positives][gradcheck]") {
    const index_t A = 7, D = 4;
    Tensor<double> z = normal(Shape{A, D}, 9);
    Positives<> keys;
    keys.keys = Tensor<index_t>::from(Shape{2, A}, {0, 0, 1, 1, 2, -1, -2, 5, 6, 5, 6, 5, 6, 5});
    Positives<> masks;
    masks.masks = Tensor<std::uint8_t>(Shape{1, A, A});
    gcl::Rng rng(10);
    for (index_t i = 0; i < A * A; ++i) masks.masks.data()[i] = rng.below(3) == 0;
    for (const Positives<>* p : {&keys, &masks})
        for (bool normalize : {true, false}) {
            const ContrastOptions options{.temperature = normalize ? 0.1 : 2.0, .normalize = normalize};
            const auto contrast = [&] { return gcl::loss::multi_label_contrast<double>("test", z.cview(), *p, options); };
            const ContrastResult<double> r = contrast();
            for (index_t m = 0; m < p->labels(); ++m) {
                const auto result = gcl::testing::check_gradient([&] { return contrast().losses(m); }, z.view(),
                                                                 r.grads.cview().select(0, m),
                                                                 {.step = 1e-6, .rtol = 1e-6, .atol = 1e-9});
                INFO(result.message);
                CHECK(result.passed);
            }
        }
}

TEST_CASE("malformed positives are a gcl::Error naming the shapes", "[loss][positives][errors]") {
    const Tensor<double> z = normal(Shape{4, 3}, 11);
    Positives<> none;
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(z.cview(), none), Catch::Contains("either keys"));
    Positives<> both;
    both.keys = Tensor<index_t>(Shape{1, 4});
    both.masks = Tensor<std::uint8_t>(Shape{1, 4, 4});
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(z.cview(), both), Catch::Contains("either keys"));
    Positives<> short_keys;
    short_keys.keys = Tensor<index_t>(Shape{2, 3});
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(z.cview(), short_keys),
                      Catch::Contains("supcon") && Catch::Contains("[2, 3]") && Catch::Contains("4 embeddings"));
    Positives<> wrong_mask;
    wrong_mask.masks = Tensor<std::uint8_t>(Shape{1, 4, 5});
    CHECK_THROWS_WITH(gcl::loss::supcon<double>(z.cview(), wrong_mask), Catch::Contains("[1, 4, 5]"));
}
