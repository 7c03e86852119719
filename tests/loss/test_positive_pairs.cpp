#include <catch2/catch.hpp>

#include "gcl/loss/positive_pairs.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::loss::PositivePairs;

TEST_CASE("PositivePairs: labels, unknown values and the other view", "[loss][pairs]") {
    PositivePairs pairs(3);  // 6 embeddings: image i mod 3
    const Tensor<index_t> patient = Tensor<index_t>::from(Shape{3}, {4, 4, -1});
    pairs.add_labels(patient.cview());
    REQUIRE(pairs.labels() == 1);
    REQUIRE(pairs.embeddings() == 6);
    CHECK(pairs.positive(0, 0, 3));   // the other view of image 0
    CHECK(pairs.positive(0, 0, 1));   // same patient
    CHECK(pairs.positive(0, 0, 4));   // same patient, other view
    CHECK_FALSE(pairs.positive(0, 0, 0));
    CHECK_FALSE(pairs.positive(0, 0, 2));  // unknown never matches
    CHECK(pairs.positive(0, 2, 5));        // but its own other view does
    CHECK_FALSE(pairs.positive(0, 2, 1));
    const Tensor<std::uint8_t> m = pairs.embedding_masks();
    CHECK(m.shape() == Shape{1, 6, 6});
    CHECK(m(0, 1, 3) == 1);
}

TEST_CASE("PositivePairs: bins, thresholds and asymmetric masks", "[loss][pairs]") {
    PositivePairs pairs(4);
    const Tensor<double> pos = Tensor<double>::from(Shape{4}, {0.0, 0.24, 0.26, 1.0});
    pairs.add_bins<double>(pos.cview(), 4).add_threshold<double>(pos.cview(), 0.05);
    Tensor<std::uint8_t> mask(Shape{4, 4});
    mask(0, 3) = 1;  // anchor image 0 sees image 3 as positive, not the other way round
    pairs.add_mask(mask.cview());
    REQUIRE(pairs.labels() == 3);
    CHECK(pairs.positive(0, 0, 1));        // bins 0, 0
    CHECK_FALSE(pairs.positive(0, 1, 2));  // bins 0, 1
    CHECK(pairs.positive(1, 1, 2));        // |0.24 - 0.26| < 0.05
    CHECK_FALSE(pairs.positive(1, 0, 1));
    CHECK(pairs.positive(2, 0, 3));
    CHECK_FALSE(pairs.positive(2, 3, 0));
    const Tensor<index_t> bins = gcl::loss::bin_values<double>(pos.cview(), 4);
    CHECK(bins(0) == 0);
    CHECK(bins(2) == 1);
    CHECK(bins(3) == 3);  // 1.0 falls in the last bin
}

TEST_CASE("PositivePairs: explicit image layout", "[loss][pairs]") {
    const Tensor<index_t> image_of = Tensor<index_t>::from(Shape{5}, {0, 1, 2, 1, 0});
    PositivePairs pairs(image_of.cview(), 3);
    const Tensor<index_t> none = Tensor<index_t>::from(Shape{3}, {0, 1, 2});
    pairs.add_labels(none.cview());
    CHECK(pairs.positive(0, 0, 4));
    CHECK(pairs.positive(0, 1, 3));
    CHECK_FALSE(pairs.positive(0, 2, 0));
}

TEST_CASE("PositivePairs raises gcl::Error on bad input", "[loss][pairs]") {
    PositivePairs pairs(3);
    const Tensor<index_t> wrong = Tensor<index_t>::from(Shape{2}, {0, 1});
    CHECK_THROWS_WITH(pairs.add_labels(wrong.cview()), Catch::Contains("values must have shape [3]"));
    const Tensor<double> out_of_range = Tensor<double>::from(Shape{3}, {0.1, 1.5, 0.2});
    CHECK_THROWS_WITH(pairs.add_bins<double>(out_of_range.cview(), 2), Catch::Contains("[0, 1]"));
    const Tensor<double> ok = Tensor<double>::from(Shape{3}, {0.1, 0.5, 0.2});
    CHECK_THROWS_WITH(pairs.add_threshold<double>(ok.cview(), 0.0), Catch::Contains("delta must be positive"));
    Tensor<std::uint8_t> mask(Shape{3, 2});
    CHECK_THROWS_WITH(pairs.add_mask(mask.cview()), Catch::Contains("mask must have shape [3, 3]"));
    const Tensor<index_t> bad_layout = Tensor<index_t>::from(Shape{2}, {0, 3});
    CHECK_THROWS_WITH(PositivePairs(bad_layout.cview(), 3), Catch::Contains("outside [0, 3)"));
    CHECK_THROWS_AS(PositivePairs(0), gcl::Error);
}
