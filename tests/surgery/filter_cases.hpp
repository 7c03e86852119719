#pragma once
// The test bodies of GradFilter<T, D>, written once for every device: the CPU tests
// (test_filter.cpp) instantiate them for gcl::cpu, the CUDA tests (test_filter_cuda.cu) for
// gcl::cuda. Every body asks for exactly the selection of the full-sort reference; on a device
// other than the cpu also for exactly the CPU kernel's.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/surgery/filter.hpp"
#include "gcl/surgery/reference/filter.hpp"
#include "surgery_data.hpp"
#include "surgery_device.hpp"

namespace gcl::testing::filter_cases {

using surgery::FilterOptions;
using surgery::FilterResult;
using surgery::FilterRule;
using surgery::GradFilter;

// The filter of host inputs on device D (copied there), its result copied back.
template <class T, class D>
FilterResult run_on(const Tensor<T>& mag, const FilterOptions& options, const Tensor<T>* weights = nullptr,
                    Stream<D> stream = {}) {
    using Dev = SurgeryDevice<D>;
    const Tensor<T, D> mag_device = Dev::upload(mag);
    Tensor<T, D> weights_device;
    if (weights) weights_device = Dev::upload(*weights);
    const ConstView<T, D> w = weights ? weights_device.cview() : ConstView<T, D>{};
    return Dev::download(GradFilter<T, D>(options)({mag_device.cview(), w}, stream));
}

// The device's selection is the reference's (and, off the cpu, the CPU kernel's).
template <class T, class D>
void require_reference_selection(const FilterResult& device, const Tensor<T>& mag, const FilterOptions& options,
                                 const Tensor<T>* weights = nullptr) {
    const ConstView<T> w = weights ? weights->cview() : ConstView<T>{};
    require_same_selection(device, surgery::reference::filter_pairs<T>(mag.cview(), options, w));
    if constexpr (!is_cpu<D>) require_same_selection(device, surgery::filter_pairs<T>(mag.cview(), options, w));
}

// Every (A, M) of the lists, continuous and tied magnitudes, with and without (tied and zero)
// anchor weights, every option set.
template <class T, class D>
void matches_reference(const std::vector<index_t>& As, const std::vector<index_t>& Ms) {
    index_t cases = 0;
    for (index_t A : As)
        for (index_t M : Ms)
            for (int levels : {0, 3})
                for (bool weighted : {false, true}) {
                    const std::uint64_t seed = static_cast<std::uint64_t>(A * 1000 + M * 10 + levels + weighted);
                    const Tensor<T> mag = magnitudes<T>(A, M, seed, levels);
                    Tensor<T> w(Shape{A});
                    Rng rng(seed + 1);
                    fill_uniform<T>(w.view(), rng);
                    if (levels > 0)
                        for (index_t a = 0; a < A; ++a) w(a) = std::floor(w(a) * 2);  // tied and zero weights
                    for (const FilterOptions& o : filter_option_sets(weighted)) {
                        INFO("A = " << A << ", M = " << M << ", levels " << levels << ", weighted " << weighted
                                    << ", rule " << int(o.rule) << ", k " << o.k << ", ratio " << o.ratio
                                    << ", anchor_ratio " << o.anchor_ratio);
                        const Tensor<T>* weights = weighted ? &w : nullptr;
                        require_reference_selection<T, D>(run_on<T, D>(mag, o, weights), mag, o, weights);
                        ++cases;
                    }
                }
    CHECK(cases == static_cast<index_t>(As.size() * Ms.size()) * 2 * (7 + 9));
}

// A million pairs with few distinct values: ties everywhere.
template <class T, class D>
void million_tied_pairs() {
    const index_t A = 1024, M = 1024;
    const Tensor<T> mag = magnitudes<T>(A, M, 5, 6);
    Tensor<T> w(Shape{A});
    Rng rng(6);
    fill_uniform<T>(w.view(), rng);
    for (index_t a = 0; a < A; ++a) w(a) = std::floor(w(a) * 3);
    const std::vector<FilterOptions> options = {{.rule = FilterRule::top_k_per_anchor, .k = 16},
                                                {.rule = FilterRule::top_k_per_anchor, .k = 100, .anchor_ratio = 0.25},
                                                {.rule = FilterRule::top_ratio_global, .ratio = 0.05},
                                                {.rule = FilterRule::top_ratio_global, .ratio = 0.3, .anchor_ratio = 0.5}};
    for (const FilterOptions& o : options) {
        INFO("rule " << int(o.rule) << ", k " << o.k << ", ratio " << o.ratio << ", anchor_ratio " << o.anchor_ratio);
        require_reference_selection<T, D>(run_on<T, D>(mag, o, &w), mag, o, &w);
        if (o.anchor_ratio == 1) require_reference_selection<T, D>(run_on<T, D>(mag, o), mag, o);
    }
}

template <class D>
void hand_checked_selections() {
    const Tensor<float> mag = Tensor<float>::from(Shape{2, 4}, {0.5f, 2.0f, 2.0f, 1.0f,  //
                                                                3.0f, 0.0f, 3.0f, 3.0f});
    // Top 2 per anchor: row 0 keeps columns 1, 2 (tie, lower first); row 1 keeps 0 and 2.
    FilterResult r = run_on<float, D>(mag, {.rule = FilterRule::top_k_per_anchor, .k = 2});
    REQUIRE(r.indices.shape() == Shape{4, 2});
    const std::vector<index_t> expected = {0, 1, 0, 2, 1, 0, 1, 2};
    for (index_t i = 0; i < 8; ++i) CHECK(r.indices.data()[i] == expected[i]);
    CHECK(r.mask(0, 0) == 0);
    CHECK(r.mask(0, 1) == 1);
    CHECK(r.mask(1, 3) == 0);

    // Top 3 of 8 globally (ratio 0.375): the three 3.0 scores, flat indices 4, 6, 7.
    r = run_on<float, D>(mag, {.rule = FilterRule::top_ratio_global, .ratio = 0.375});
    REQUIRE(r.indices.shape() == Shape{3, 2});
    CHECK((r.indices(0, 0) == 1 && r.indices(0, 1) == 0));
    CHECK((r.indices(1, 0) == 1 && r.indices(1, 1) == 2));
    CHECK((r.indices(2, 0) == 1 && r.indices(2, 1) == 3));

    // Anchor weights rescale the global ranking: row 0 weighted by 2 puts its 2.0s (now 4.0) first.
    const Tensor<float> w = Tensor<float>::from(Shape{2}, {2.0f, 1.0f});
    r = run_on<float, D>(mag, {.rule = FilterRule::top_ratio_global, .ratio = 0.25}, &w);
    REQUIRE(r.indices.shape() == Shape{2, 2});
    CHECK((r.indices(0, 0) == 0 && r.indices(0, 1) == 1));
    CHECK((r.indices(1, 0) == 0 && r.indices(1, 1) == 2));
    // and select anchors: with anchor_ratio 0.5 only anchor 0 (the larger weight) takes part.
    r = run_on<float, D>(mag, {.rule = FilterRule::top_k_per_anchor, .k = 1, .anchor_ratio = 0.5}, &w);
    REQUIRE(r.indices.shape() == Shape{1, 2});
    CHECK((r.indices(0, 0) == 0 && r.indices(0, 1) == 1));
    CHECK(r.mask(1, 0) == 0);
}

// -0.0 passes the >= 0 check and equals +0.0: ties go to the lower index.
template <class D>
void signed_zeros_tie() {
    Tensor<float> mag(Shape{3, 6});
    const std::vector<float> values = {-0.0f, 0.0f, 1.0f, -0.0f, 0.0f, 1.0f};
    for (index_t a = 0; a < 3; ++a)
        for (index_t m = 0; m < 6; ++m) mag(a, m) = values[(m + a) % 6];
    for (const FilterOptions& o : {FilterOptions{.rule = FilterRule::top_k_per_anchor, .k = 4},
                                   FilterOptions{.rule = FilterRule::top_ratio_global, .ratio = 0.6}})
        require_reference_selection<float, D>(run_on<float, D>(mag, o), mag, o);
}

// Magnitudes in padded rows (the padding is NaN, never read) and weights every other element
// select what the dense inputs select on the CPU.
template <class T, class D>
void padded_rows_and_strided_weights() {
    using Dev = SurgeryDevice<D>;
    const index_t A = 50, M = 70, pitch = 83;
    const Tensor<T> mag = magnitudes<T>(A, M, 12, 4);
    Tensor<T> w(Shape{A});
    Rng rng(13);
    fill_uniform<T>(w.view(), rng);
    Tensor<T> padded(Shape{A, pitch}), pairs(Shape{A, 2});
    for (index_t a = 0; a < A; ++a) {
        for (index_t m = 0; m < M; ++m) padded(a, m) = mag(a, m);
        for (index_t m = M; m < pitch; ++m) padded(a, m) = std::numeric_limits<T>::quiet_NaN();
        pairs(a, 0) = -1;  // never read
        pairs(a, 1) = w(a);
    }
    const Tensor<T, D> padded_device = Dev::upload(padded), pairs_device = Dev::upload(pairs);
    const ConstView<T, D> mag_view = padded_device.cview().narrow(1, 0, M);
    const ConstView<T, D> w_view = pairs_device.cview().select(1, 1);
    for (const FilterOptions& o : filter_option_sets(true)) {
        INFO("rule " << int(o.rule) << ", k " << o.k << ", ratio " << o.ratio << ", anchor_ratio " << o.anchor_ratio);
        // The one-call form on D: GradFilter<T, D>'s operator() on the default stream.
        require_same_selection(Dev::download(surgery::filter_pairs(mag_view, o, w_view)),
                               surgery::filter_pairs<T>(mag.cview(), o, w.cview()));
    }
}

// The same selection again, and on a stream other than the default one.
template <class D>
void repeats_on_any_stream() {
    const Tensor<float> mag = magnitudes<float>(200, 300, 3, 2);
    const typename SurgeryDevice<D>::SideStream stream;
    for (const FilterOptions& o : filter_option_sets(false)) {
        const FilterResult a = run_on<float, D>(mag, o);
        require_same_selection(a, run_on<float, D>(mag, o));
        require_same_selection(a, run_on<float, D>(mag, o, nullptr, stream.get()));
    }
}

// Options, shapes and values (NaN, Inf, negative; the first bad one named) raise gcl::Error.
template <class D>
void rejects_bad_input() {
    Tensor<float> mag(Shape{3, 4}, 1.0f);
    const auto run = [&](const FilterOptions& o, const Tensor<float>* w = nullptr) { return run_on<float, D>(mag, o, w); };
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
    CHECK_THROWS_WITH(run({}), Catch::Contains("magnitude [2, 3]"));
    mag(2, 1) = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(run({}), Catch::Contains("magnitude [2, 1]"));  // the first bad value is named
    const Tensor<float, D> empty(Shape{0, 4});
    CHECK_THROWS_WITH((GradFilter<float, D>()({empty.cview(), {}})), Catch::Contains("non-empty"));
    const Tensor<float, D> wide(Shape{4, 3});
    CHECK_THROWS_WITH((GradFilter<float, D>()({wide.cview().transpose(0, 1), {}})), Catch::Contains("contiguous"));
}

}  // namespace gcl::testing::filter_cases
