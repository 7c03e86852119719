#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "gcl/data/meta.hpp"
#include "gcl/data/sampler.hpp"

namespace gd = gcl::data;
using gcl::index_t;

namespace {

// Meta labels of a data set: `patients` stacks of `slices` slices at two phases; the patients'
// scanners alternate when `two_scanners`.
std::vector<gd::SliceMeta> stacks(int patients, int slices, bool two_scanners = false) {
    std::vector<gd::SliceMeta> m;
    for (int p = 0; p < patients; ++p)
        for (gd::Phase ph : {gd::Phase::ed, gd::Phase::es})
            for (int k = 0; k < slices; ++k)
                m.push_back({p + 1, k, slices, gd::slice_position(k, slices), ph, two_scanners ? p % 2 : 0});
    return m;
}

gcl::Tensor<std::int64_t> batch_meta(const std::vector<gd::SliceMeta>& all, const std::vector<index_t>& idx,
                                     const gd::MetaSpec& spec) {
    std::vector<gd::SliceMeta> m;
    for (index_t i : idx) m.push_back(all[static_cast<std::size_t>(i)]);
    return gd::encode_meta(m, spec);
}

}  // namespace

TEST_CASE("meta labels encode as a K x N matrix with position partitions", "[data][meta]") {
    CHECK(gd::position_partition(0.0, 4) == 0);
    CHECK(gd::position_partition(0.249, 4) == 0);
    CHECK(gd::position_partition(0.25, 4) == 1);
    CHECK(gd::position_partition(1.0, 4) == 3);
    CHECK(gd::position_partition(0.7, 1) == 0);
    CHECK_THROWS_AS(gd::position_partition(1.2, 4), gcl::Error);
    CHECK_THROWS_AS(gd::position_partition(0.5, 0), gcl::Error);

    const auto meta = stacks(2, 5);
    gd::MetaSpec spec;
    spec.labels = {gd::MetaLabel::patient, gd::MetaLabel::position, gd::MetaLabel::phase, gd::MetaLabel::scanner};
    spec.position_partitions = 3;
    const auto m = gd::encode_meta(meta, spec);
    REQUIRE(m.shape() == gcl::Shape{4, 20});
    CHECK(m(0, 0) == 1);
    CHECK(m(0, 19) == 2);
    // Positions 0, .25, .5, .75, 1 fall in partitions 0, 0, 1, 2, 2.
    for (index_t k = 0; k < 5; ++k) CHECK(m(1, k) == std::array<std::int64_t, 5>{0, 0, 1, 2, 2}[static_cast<std::size_t>(k)]);
    CHECK(m(2, 4) == 0);
    CHECK(m(2, 5) == 1);
    CHECK(m(3, 7) == 0);
    CHECK(gd::encode_positions(meta)(3) == 0.75);
    CHECK_THROWS_AS(gd::encode_meta(meta, gd::MetaSpec{{}, 4}), gcl::Error);

    // Positives: every patient has 10 images, every (partition) many, every phase 10.
    CHECK(gd::min_positives(m.cview()) == std::vector<index_t>{9, 3, 9, 19});
    gcl::Tensor<std::int64_t> lonely = gcl::Tensor<std::int64_t>::from(gcl::Shape{1, 3}, {1, 1, 2});
    CHECK(gd::min_positives(lonely.cview()) == std::vector<index_t>{0});
}

TEST_CASE("the sampler guarantees a positive for every image under every chosen meta label", "[data][sampler]") {
    const auto meta = stacks(12, 10);
    gd::SamplerOptions o;
    o.batch_size = 32;
    o.seed = 17;
    const gd::BatchSampler sampler(meta, o);
    CHECK(sampler.per_patient() == 8);  // 4 partitions x 2 phases
    CHECK(sampler.patients_per_batch() == 4);
    // B = 16: not 2 x 8 (patient would be a binary label in every batch) but 6 + 6 + 4.
    gd::SamplerOptions small = o;
    small.batch_size = 16;
    const gd::BatchSampler three(meta, small);
    CHECK(three.per_patient() == 6);
    CHECK(three.patients_per_batch() == 3);
    for (index_t p : gd::min_positives(batch_meta(meta, three.batch(3), gd::MetaSpec{o.positives, 4}).cview()))
        CHECK(p >= 1);
    const gd::MetaSpec spec{o.positives, o.position_partitions};
    std::set<std::vector<index_t>> distinct;
    std::map<index_t, int> seen;
    for (std::uint64_t step = 0; step < 200; ++step) {
        const auto idx = sampler.batch(step);
        REQUIRE(idx.size() == 32);
        CHECK(std::set<index_t>(idx.begin(), idx.end()).size() == 32);  // no image twice
        for (index_t p : gd::min_positives(batch_meta(meta, idx, spec).cview())) CHECK(p >= 1);
        distinct.insert(idx);
        for (index_t i : idx) ++seen[i];
    }
    CHECK(distinct.size() == 200);
    CHECK(seen.size() > meta.size() * 9 / 10);  // the whole data set gets used
    // Deterministic by (seed, step).
    const gd::BatchSampler again(meta, o);
    CHECK(again.batch(42) == sampler.batch(42));
    o.seed = 18;
    CHECK(gd::BatchSampler(meta, o).batch(42) != sampler.batch(42));
}

TEST_CASE("the sampler handles other label sets and uneven batch sizes", "[data][sampler]") {
    const auto meta = stacks(9, 7, true);
    for (const std::vector<gd::MetaLabel>& labels :
         std::vector<std::vector<gd::MetaLabel>>{{gd::MetaLabel::patient},
                                                 {gd::MetaLabel::position},
                                                 {gd::MetaLabel::phase, gd::MetaLabel::scanner},
                                                 {gd::MetaLabel::patient, gd::MetaLabel::position, gd::MetaLabel::scanner}}) {
        for (index_t b : {6, 10, 13, 16}) {
            gd::SamplerOptions o;
            o.batch_size = b;
            o.positives = labels;
            o.position_partitions = 3;
            const gd::BatchSampler sampler(meta, o);
            for (std::uint64_t step = 0; step < 30; ++step) {
                const auto idx = sampler.batch(step);
                REQUIRE(static_cast<index_t>(idx.size()) == b);
                CHECK(std::set<index_t>(idx.begin(), idx.end()).size() == idx.size());
                for (index_t p : gd::min_positives(batch_meta(meta, idx, gd::MetaSpec{labels, 3}).cview())) CHECK(p >= 1);
            }
        }
    }
}

TEST_CASE("the sampler says clearly when the data cannot satisfy the request", "[data][sampler]") {
    gd::SamplerOptions o;
    o.batch_size = 32;
    CHECK_THROWS_WITH(gd::BatchSampler(stacks(1, 10), o), Catch::Contains("fewer than the batch size") ||
                                                               Catch::Contains("patient"));
    o.per_patient = 8;
    CHECK_THROWS_WITH(gd::BatchSampler(stacks(3, 10), o), Catch::Contains("needs 4 patients"));
    o.per_patient = 0;  // chosen automatically, 3 patients suffice: 11 + 11 + 10 images
    CHECK(gd::BatchSampler(stacks(3, 10), o).patients_per_batch() == 3);
    o.batch_size = 3;
    CHECK_THROWS_WITH(gd::BatchSampler(stacks(5, 10), o), Catch::Contains("at least 4"));
    o.batch_size = 9;
    o.per_patient = 4;
    CHECK_THROWS_WITH(gd::BatchSampler(stacks(5, 10), o), Catch::Contains("single image"));
    o.per_patient = 0;
    o.batch_size = 16;
    o.positives = {gd::MetaLabel::patient, gd::MetaLabel::position, gd::MetaLabel::phase};
    o.position_partitions = 4;
    // Stacks of 2 slices fill only 2 of 4 partitions; asking for 8 images per patient of
    // distinct cells still works by repeating cells, unless a patient has too few images.
    o.per_patient = 8;
    CHECK_THROWS_WITH(gd::BatchSampler(stacks(4, 2), o), Catch::Contains("cannot build a batch"));
    // Patients on two scanners never share a scanner cell with half the others: with only one
    // patient per scanner no batch can hold positives under scanner.
    o.per_patient = 0;
    o.batch_size = 8;
    o.positives = {gd::MetaLabel::patient, gd::MetaLabel::scanner};
    CHECK_THROWS_WITH(gd::BatchSampler(stacks(2, 10, true), o), Catch::Contains("cannot build a batch"));
    o.positives = {gd::MetaLabel::patient};
    CHECK_NOTHROW(gd::BatchSampler(stacks(2, 10, true), o));
}
