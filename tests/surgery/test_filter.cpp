#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/surgery/filter.hpp"
#include "gcl/surgery/reference/filter.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::surgery::FilterOptions;
using gcl::surgery::FilterResult;
using gcl::surgery::FilterRule;

namespace {

void require_same(const FilterResult& a, const FilterResult& b) {
    REQUIRE(a.mask.shape() == b.mask.shape());
    REQUIRE(a.indices.shape() == b.indices.shape());
    for (index_t i = 0; i < a.mask.numel(); ++i) REQUIRE(a.mask.data()[i] == b.mask.data()[i]);
    for (index_t i = 0; i < a.indices.numel(); ++i) REQUIRE(a.indices.data()[i] == b.indices.data()[i]);
}

// Magnitudes with many exact ties (levels 0..levels-1 scaled) or continuous values.
template <class T>
Tensor<T> magnitudes(index_t A, index_t M, std::uint64_t seed, int levels) {
    Tensor<T> m(Shape{A, M});
    gcl::Rng rng(seed);
    gcl::fill_uniform<T>(m.view(), rng);
    if (levels > 0)
        for (index_t i = 0; i < m.numel(); ++i) m.data()[i] = std::floor(m.data()[i] * levels) / T(4);
    return m;
}

}  // namespace

TEMPLATE_TEST_CASE("GradFilter matches the full-sort reference", "[surgery][filter]", float, double) {
    using T = TestType;
    index_t cases = 0;
    for (index_t A : {1, 7, 64})
        for (index_t M : {1, 5, 200})
            for (int levels : {0, 3})
                for (bool weighted : {false, true}) {
                    const std::uint64_t seed = static_cast<std::uint64_t>(A * 1000 + M * 10 + levels + weighted);
                    const Tensor<T> mag = magnitudes<T>(A, M, seed, levels);
                    Tensor<T> w(Shape{A});
                    gcl::Rng rng(seed + 1);
                    gcl::fill_uniform<T>(w.view(), rng);
                    if (levels > 0)
                        for (index_t a = 0; a < A; ++a) w(a) = std::floor(w(a) * 2);  // tied and zero weights
                    const gcl::ConstView<T> weights = weighted ? w.cview() : gcl::ConstView<T>{};
                    std::vector<FilterOptions> all;
                    for (index_t k : {1, 3, 250}) all.push_back({.rule = FilterRule::top_k_per_anchor, .k = k});
                    for (double r : {0.001, 0.1, 0.5, 1.0}) all.push_back({.rule = FilterRule::top_ratio_global, .ratio = r});
                    if (weighted) {
                        all.push_back({.rule = FilterRule::top_k_per_anchor, .k = 2, .anchor_ratio = 0.3});
                        all.push_back({.rule = FilterRule::top_ratio_global, .ratio = 0.2, .anchor_ratio = 0.5});
                    }
                    for (const FilterOptions& o : all) {
                        INFO("A = " << A << ", M = " << M << ", levels " << levels << ", weighted " << weighted
                                    << ", rule " << int(o.rule) << ", k " << o.k << ", ratio " << o.ratio
                                    << ", anchor_ratio " << o.anchor_ratio);
                        const FilterResult fast = gcl::surgery::filter_pairs<T>(mag.cview(), o, weights);
                        const FilterResult ref = gcl::surgery::reference::filter_pairs<T>(mag.cview(), o, weights);
                        require_same(fast, ref);
                        ++cases;
                    }
                }
    CHECK(cases == 3 * 3 * 2 * (7 + 9));
}

TEST_CASE("GradFilter: hand-checked selections and tie-breaking", "[surgery][filter]") {
    const Tensor<float> mag = Tensor<float>::from(Shape{2, 4}, {0.5f, 2.0f, 2.0f, 1.0f,  //
                                                                3.0f, 0.0f, 3.0f, 3.0f});
    // Top 2 per anchor: row 0 keeps columns 1, 2 (tie, lower first); row 1 keeps 0 and 2.
    FilterResult r = gcl::surgery::filter_pairs<float>(mag.cview(), {.rule = FilterRule::top_k_per_anchor, .k = 2});
    CHECK(r.indices.shape() == Shape{4, 2});
    const std::vector<index_t> expected = {0, 1, 0, 2, 1, 0, 1, 2};
    for (index_t i = 0; i < 8; ++i) CHECK(r.indices.data()[i] == expected[i]);
    CHECK(r.mask(0, 0) == 0);
    CHECK(r.mask(0, 1) == 1);
    CHECK(r.mask(1, 3) == 0);

    // Top 3 of 8 globally (ratio 0.375): the three 3.0 scores, flat indices 4, 6, 7.
    r = gcl::surgery::filter_pairs<float>(mag.cview(), {.rule = FilterRule::top_ratio_global, .ratio = 0.375});
    REQUIRE(r.indices.shape() == Shape{3, 2});
    CHECK((r.indices(0, 0) == 1 && r.indices(0, 1) == 0));
    CHECK((r.indices(1, 0) == 1 && r.indices(1, 1) == 2));
    CHECK((r.indices(2, 0) == 1 && r.indices(2, 1) == 3));

    // Anchor weights rescale the global ranking: row 0 weighted by 2 puts its 2.0s (now 4.0) first.
    const Tensor<float> w = Tensor<float>::from(Shape{2}, {2.0f, 1.0f});
    r = gcl::surgery::filter_pairs<float>(mag.cview(), {.rule = FilterRule::top_ratio_global, .ratio = 0.25}, w.cview());
    REQUIRE(r.indices.shape() == Shape{2, 2});
    CHECK((r.indices(0, 0) == 0 && r.indices(0, 1) == 1));
    CHECK((r.indices(1, 0) == 0 && r.indices(1, 1) == 2));
    // and select anchors: with anchor_ratio 0.5 only anchor 0 (the larger weight) takes part.
    r = gcl::surgery::filter_pairs<float>(mag.cview(), {.rule = FilterRule::top_k_per_anchor, .k = 1, .anchor_ratio = 0.5},
                                          w.cview());
    REQUIRE(r.indices.shape() == Shape{1, 2});
    CHECK((r.indices(0, 0) == 0 && r.indices(0, 1) == 1));
}

TEST_CASE("GradFilter raises gcl::Error on bad input", "[surgery][filter]") {
    Tensor<float> mag(Shape{3, 4}, 1.0f);
    const auto run = [&](const FilterOptions& o, gcl::ConstView<float> w = {}) {
        return gcl::surgery::filter_pairs<float>(mag.cview(), o, w);
    };
    CHECK_THROWS_WITH(run({.k = 0}), Catch::Contains("k must be at least 1"));
    CHECK_THROWS_WITH(run({.rule = FilterRule::top_ratio_global, .ratio = 0}), Catch::Contains("ratio must be in (0, 1]"));
    CHECK_THROWS_WITH(run({.rule = FilterRule::top_ratio_global, .ratio = 1.5}), Catch::Contains("ratio must be in (0, 1]"));
    CHECK_THROWS_WITH(run({.anchor_ratio = 0.5}), Catch::Contains("needs anchor_weights"));
    Tensor<float> w(Shape{2}, 1.0f);
    CHECK_THROWS_WITH(run({}, w.cview()), Catch::Contains("anchor_weights must have shape [3]"));
    Tensor<float> w3(Shape{3}, 1.0f);
    w3(1) = -1.0f;
    CHECK_THROWS_WITH(run({}, w3.cview()), Catch::Contains("anchor weight 1"));
    mag(2, 3) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(run({}), Catch::Contains("magnitude [2, 3]"));
    mag(2, 3) = -0.5f;
    CHECK_THROWS_WITH(run({}), Catch::Contains("magnitude [2, 3]"));
    Tensor<float> empty(Shape{0, 4});
    CHECK_THROWS_WITH(gcl::surgery::filter_pairs<float>(empty.cview()), Catch::Contains("non-empty"));
}
