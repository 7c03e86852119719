// CudaGradFilter against the CPU GradFilter and the full-sort reference: identical selections.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/cuda.cuh"
#include "gcl/surgery/filter.hpp"
#include "gcl/surgery/reference/filter.hpp"
#include "surgery_cuda_util.hpp"

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

// Magnitudes with many exact ties (levels > 0: multiples of 1/4 below levels / 4) or continuous values.
template <class T>
Tensor<T> magnitudes(index_t A, index_t M, std::uint64_t seed, int levels) {
    Tensor<T> m(Shape{A, M});
    gcl::Rng rng(seed);
    gcl::fill_uniform<T>(m.view(), rng);
    if (levels > 0)
        for (index_t i = 0; i < m.numel(); ++i) m.data()[i] = std::floor(m.data()[i] * levels) / T(4);
    return m;
}

// The CUDA filter of host inputs (copied to the device), copied back.
template <class T>
FilterResult run_cuda(const Tensor<T>& mag, const FilterOptions& options, const Tensor<T>* weights = nullptr,
                      cudaStream_t stream = nullptr) {
    const Tensor<T, gcl::cuda> mag_device = gcl::to_device(mag);
    Tensor<T, gcl::cuda> weights_device;
    if (weights) weights_device = gcl::to_device(*weights);
    const gcl::ConstView<T, gcl::cuda> w = weights ? weights_device.cview() : gcl::ConstView<T, gcl::cuda>{};
    return to_host(gcl::surgery::filter_pairs<T>(mag_device.cview(), options, w, stream));
}

std::vector<FilterOptions> all_options(bool weighted) {
    std::vector<FilterOptions> all;
    for (index_t k : {1, 3, 250}) all.push_back({.rule = FilterRule::top_k_per_anchor, .k = k});
    for (double r : {0.001, 0.1, 0.5, 1.0}) all.push_back({.rule = FilterRule::top_ratio_global, .ratio = r});
    if (weighted) {
        all.push_back({.rule = FilterRule::top_k_per_anchor, .k = 2, .anchor_ratio = 0.3});
        all.push_back({.rule = FilterRule::top_ratio_global, .ratio = 0.2, .anchor_ratio = 0.5});
    }
    return all;
}

}  // namespace

TEMPLATE_TEST_CASE("CudaGradFilter selects exactly what the CPU kernel and the reference select", "[cuda][surgery]",
                   float, double) {
    using T = TestType;
    index_t cases = 0;
    for (index_t A : {1, 7, 64, 300})
        for (index_t M : {1, 5, 200, 1000})
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
                    for (const FilterOptions& o : all_options(weighted)) {
                        INFO("A = " << A << ", M = " << M << ", levels " << levels << ", weighted " << weighted
                                    << ", rule " << int(o.rule) << ", k " << o.k << ", ratio " << o.ratio
                                    << ", anchor_ratio " << o.anchor_ratio);
                        const FilterResult gpu = run_cuda<T>(mag, o, weighted ? &w : nullptr);
                        require_same(gpu, gcl::surgery::filter_pairs<T>(mag.cview(), o, weights));
                        require_same(gpu, gcl::surgery::reference::filter_pairs<T>(mag.cview(), o, weights));
                        ++cases;
                    }
                }
    CHECK(cases == 4 * 4 * 2 * (7 + 9));
}

TEMPLATE_TEST_CASE("CudaGradFilter on a million heavily tied pairs", "[cuda][surgery]", float, double) {
    using T = TestType;
    const index_t A = 1024, M = 1024;
    const Tensor<T> mag = magnitudes<T>(A, M, 5, 6);
    Tensor<T> w(Shape{A});
    gcl::Rng rng(6);
    gcl::fill_uniform<T>(w.view(), rng);
    for (index_t a = 0; a < A; ++a) w(a) = std::floor(w(a) * 3);
    std::vector<FilterOptions> options = {{.rule = FilterRule::top_k_per_anchor, .k = 16},
                                          {.rule = FilterRule::top_k_per_anchor, .k = 100, .anchor_ratio = 0.25},
                                          {.rule = FilterRule::top_ratio_global, .ratio = 0.05},
                                          {.rule = FilterRule::top_ratio_global, .ratio = 0.3, .anchor_ratio = 0.5}};
    for (const FilterOptions& o : options) {
        INFO("rule " << int(o.rule) << ", k " << o.k << ", ratio " << o.ratio << ", anchor_ratio " << o.anchor_ratio);
        require_same(run_cuda<T>(mag, o, &w), gcl::surgery::filter_pairs<T>(mag.cview(), o, w.cview()));
        if (o.anchor_ratio == 1) require_same(run_cuda<T>(mag, o), gcl::surgery::filter_pairs<T>(mag.cview(), o));
    }
}

TEST_CASE("CudaGradFilter: hand-checked selections and tie-breaking", "[cuda][surgery]") {
    const Tensor<float> mag = Tensor<float>::from(Shape{2, 4}, {0.5f, 2.0f, 2.0f, 1.0f,  //
                                                                3.0f, 0.0f, 3.0f, 3.0f});
    // Top 2 per anchor: row 0 keeps columns 1, 2 (tie, lower first); row 1 keeps 0 and 2.
    FilterResult r = run_cuda<float>(mag, {.rule = FilterRule::top_k_per_anchor, .k = 2});
    REQUIRE(r.indices.shape() == Shape{4, 2});
    const std::vector<index_t> expected = {0, 1, 0, 2, 1, 0, 1, 2};
    for (index_t i = 0; i < 8; ++i) CHECK(r.indices.data()[i] == expected[i]);
    CHECK(r.mask(0, 0) == 0);
    CHECK(r.mask(0, 1) == 1);
    CHECK(r.mask(1, 3) == 0);

    // Top 3 of 8 globally (ratio 0.375): the three 3.0 scores, flat indices 4, 6, 7.
    r = run_cuda<float>(mag, {.rule = FilterRule::top_ratio_global, .ratio = 0.375});
    REQUIRE(r.indices.shape() == Shape{3, 2});
    CHECK((r.indices(0, 0) == 1 && r.indices(0, 1) == 0));
    CHECK((r.indices(1, 0) == 1 && r.indices(1, 1) == 2));
    CHECK((r.indices(2, 0) == 1 && r.indices(2, 1) == 3));

    // Anchor weights rescale the global ranking: row 0 weighted by 2 puts its 2.0s (now 4.0) first.
    const Tensor<float> w = Tensor<float>::from(Shape{2}, {2.0f, 1.0f});
    r = run_cuda<float>(mag, {.rule = FilterRule::top_ratio_global, .ratio = 0.25}, &w);
    REQUIRE(r.indices.shape() == Shape{2, 2});
    CHECK((r.indices(0, 0) == 0 && r.indices(0, 1) == 1));
    CHECK((r.indices(1, 0) == 0 && r.indices(1, 1) == 2));
    // and select anchors: with anchor_ratio 0.5 only anchor 0 (the larger weight) takes part.
    r = run_cuda<float>(mag, {.rule = FilterRule::top_k_per_anchor, .k = 1, .anchor_ratio = 0.5}, &w);
    REQUIRE(r.indices.shape() == Shape{1, 2});
    CHECK((r.indices(0, 0) == 0 && r.indices(0, 1) == 1));
    CHECK(r.mask(1, 0) == 0);
}

TEST_CASE("CudaGradFilter: signed zeros tie like equal values", "[cuda][surgery]") {
    // -0.0 passes the >= 0 check and equals +0.0: ties go to the lower index, as on the CPU.
    Tensor<float> mag(Shape{3, 6});
    const std::vector<float> values = {-0.0f, 0.0f, 1.0f, -0.0f, 0.0f, 1.0f};
    for (index_t a = 0; a < 3; ++a)
        for (index_t m = 0; m < 6; ++m) mag(a, m) = values[(m + a) % 6];
    for (const FilterOptions& o : {FilterOptions{.rule = FilterRule::top_k_per_anchor, .k = 4},
                                   FilterOptions{.rule = FilterRule::top_ratio_global, .ratio = 0.6}})
        require_same(run_cuda<float>(mag, o), gcl::surgery::filter_pairs<float>(mag.cview(), o));
}

TEMPLATE_TEST_CASE("CudaGradFilter reads padded rows and strided weights", "[cuda][surgery]", float, double) {
    using T = TestType;
    const index_t A = 50, M = 70, pitch = 83;
    const Tensor<T> mag = magnitudes<T>(A, M, 12, 4);
    Tensor<T> w(Shape{A});
    gcl::Rng rng(13);
    gcl::fill_uniform<T>(w.view(), rng);
    Tensor<T> padded(Shape{A, pitch}), pairs(Shape{A, 2});
    for (index_t a = 0; a < A; ++a) {
        for (index_t m = 0; m < M; ++m) padded(a, m) = mag(a, m);
        for (index_t m = M; m < pitch; ++m) padded(a, m) = std::numeric_limits<T>::quiet_NaN();  // never read
        pairs(a, 0) = -1;  // never read
        pairs(a, 1) = w(a);
    }
    const Tensor<T, gcl::cuda> padded_device = gcl::to_device(padded), pairs_device = gcl::to_device(pairs);
    const gcl::ConstView<T, gcl::cuda> mag_view = padded_device.cview().narrow(1, 0, M);
    const gcl::ConstView<T, gcl::cuda> w_view = pairs_device.cview().select(1, 1);
    for (const FilterOptions& o : all_options(true)) {
        INFO("rule " << int(o.rule) << ", k " << o.k << ", ratio " << o.ratio << ", anchor_ratio " << o.anchor_ratio);
        require_same(to_host(gcl::surgery::filter_pairs<T>(mag_view, o, w_view)),
                     gcl::surgery::filter_pairs<T>(mag.cview(), o, w.cview()));
    }
}

TEST_CASE("CudaGradFilter repeats exactly, on any stream", "[cuda][surgery]") {
    const Tensor<float> mag = magnitudes<float>(200, 300, 3, 2);
    const gcl::testing::NonBlockingStream stream;
    for (const FilterOptions& o : all_options(false)) {
        const FilterResult a = run_cuda<float>(mag, o);
        require_same(a, run_cuda<float>(mag, o));
        require_same(a, run_cuda<float>(mag, o, nullptr, stream.get()));
    }
}

TEST_CASE("CudaGradFilter raises gcl::Error on bad input", "[cuda][surgery]") {
    Tensor<float> mag(Shape{3, 4}, 1.0f);
    const auto run = [&](const FilterOptions& o, const Tensor<float>* w = nullptr) { return run_cuda<float>(mag, o, w); };
    CHECK_THROWS_WITH(run({.k = 0}), Catch::Contains("k must be at least 1"));
    CHECK_THROWS_WITH(run({.rule = FilterRule::top_ratio_global, .ratio = 0}), Catch::Contains("ratio must be in (0, 1]"));
    CHECK_THROWS_WITH(run({.rule = FilterRule::top_ratio_global, .ratio = 1.5}), Catch::Contains("ratio must be in (0, 1]"));
    CHECK_THROWS_WITH(run({.anchor_ratio = 0.5}), Catch::Contains("needs anchor_weights"));
    const Tensor<float> w2(Shape{2}, 1.0f);
    CHECK_THROWS_WITH(run({}, &w2), Catch::Contains("anchor_weights must have shape [3]"));
    Tensor<float> w3(Shape{3}, 1.0f);
    w3(1) = -1.0f;
    CHECK_THROWS_WITH(run({}, &w3), Catch::Contains("anchor weight 1"));
    w3(1) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(run({}, &w3), Catch::Contains("anchor weight 1"));
    mag(2, 3) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(run({}), Catch::Contains("magnitude [2, 3]"));
    mag(2, 3) = -0.5f;
    mag(2, 1) = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(run({}), Catch::Contains("magnitude [2, 1]"));  // the first bad value is named
    const Tensor<float, gcl::cuda> empty(Shape{0, 4});
    CHECK_THROWS_WITH(gcl::surgery::filter_pairs<float>(empty.cview()), Catch::Contains("non-empty"));
    const Tensor<float, gcl::cuda> wide(Shape{4, 3});
    CHECK_THROWS_WITH(gcl::surgery::filter_pairs<float>(wide.cview().transpose(0, 1)), Catch::Contains("contiguous"));
}
