#include <catch2/catch.hpp>
#include <omp.h>

#include <cstring>

#include "gcl/data/batch.hpp"
#include "gcl/data/phantom.hpp"
#include "gcl/data/sampler.hpp"

namespace gd = gcl::data;
using gcl::index_t;
using gcl::Rng;

namespace {

const std::vector<gd::Slice>& data_set() {
    static const std::vector<gd::Slice> slices = [] {
        gd::PhantomOptions o;
        o.patients = 5;
        o.slices = 8;
        o.size = 64;
        o.seed = 3;
        return gd::phantom_slices(o);
    }();
    return slices;
}

}  // namespace

TEST_CASE("make_batch stacks images, labels and meta labels", "[data][batch]") {
    const auto& data = data_set();
    const std::vector<index_t> idx{3, 17, 40, 79};
    const gd::Batch b = gd::make_batch(data, idx);
    REQUIRE(b.images.shape() == gcl::Shape{4, 1, 64, 64});
    REQUIRE(b.labels.shape() == gcl::Shape{4, 64, 64});
    REQUIRE(b.meta.shape() == gcl::Shape{3, 4});
    CHECK(b.indices == idx);
    for (index_t k = 0; k < 4; ++k) {
        const gd::Slice& s = data[static_cast<std::size_t>(idx[static_cast<std::size_t>(k)])];
        CHECK(b.images(k, 0, 20, 30) == s.image(20, 30));
        CHECK(b.labels(k, 33, 31) == s.label(33, 31));
        CHECK(b.meta(0, k) == s.meta.patient);
        CHECK(b.meta(1, k) == gd::position_partition(s.meta.position, 4));
        CHECK(b.meta(2, k) == static_cast<std::int64_t>(s.meta.phase));
    }
    CHECK_THROWS_AS(gd::make_batch(data, std::vector<index_t>{}), gcl::Error);
    CHECK_THROWS_WITH(gd::make_batch(data, std::vector<index_t>{0, 80}), Catch::Contains("out of range"));
    // Unlabelled slices give a batch without labels.
    std::vector<gd::Slice> unlabelled(data.begin(), data.begin() + 2);
    unlabelled[1].label = gcl::Tensor<std::uint8_t>();
    CHECK(gd::make_batch(unlabelled, std::vector<index_t>{0, 1}).labels.empty());
}

TEST_CASE("two_view_batch pairs two augmentations of each slice, whatever the thread count", "[data][batch]") {
    const auto& data = data_set();
    gd::SamplerOptions so;
    so.batch_size = 8;
    const gd::BatchSampler sampler(gd::meta_of(data), so);
    const std::vector<index_t> idx = sampler.batch(5);
    gd::AugmentOptions ao;
    ao.height = ao.width = 48;
    const gd::MetaSpec spec;
    const Rng rng = Rng(99).split(5);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const gd::TwoViewBatch one = gd::two_view_batch(data, idx, ao, spec, rng);
    omp_set_num_threads(2);
    const gd::TwoViewBatch two = gd::two_view_batch(data, idx, ao, spec, rng);
    omp_set_num_threads(threads);
    REQUIRE(one.images.shape() == gcl::Shape{16, 1, 48, 48});
    REQUIRE(one.meta.shape() == gcl::Shape{3, 16});
    CHECK(std::memcmp(one.images.data(), two.images.data(), sizeof(float) * 16 * 48 * 48) == 0);
    for (index_t i = 0; i < 8; ++i) {
        for (index_t k = 0; k < 3; ++k) CHECK(one.meta(k, i) == one.meta(k, i + 8));
        // The two views of a slice differ, but come from the same slice: they correlate more
        // with each other than with another patient's slice.
        const float* a = one.images.data() + i * 48 * 48;
        const float* b = one.images.data() + (i + 8) * 48 * 48;
        CHECK(std::memcmp(a, b, sizeof(float) * 48 * 48) != 0);
    }
    // Positives are guaranteed by the sampler and survive the doubling.
    for (index_t p : gd::min_positives(one.meta.cview())) CHECK(p >= 3);
    // View 0 of sample i is what augment() gives with rng.split(i).split(0).
    Rng r = rng.split(2).split(0);
    const auto expected = gd::augment(data[static_cast<std::size_t>(idx[2])].image.cview(), {}, ao, r);
    CHECK(std::memcmp(expected.image.data(), one.images.data() + 2 * 48 * 48, sizeof(float) * 48 * 48) == 0);
}

TEST_CASE("augmented_batch warps labels with their images", "[data][batch]") {
    const auto& data = data_set();
    const std::vector<index_t> idx{0, 9, 21, 50, 66, 70};
    gd::AugmentOptions ao;
    ao.height = ao.width = 56;
    ao.max_rotation = 30;
    const gd::Batch b = gd::augmented_batch(data, idx, ao, gd::MetaSpec{}, Rng(4));
    REQUIRE(b.images.shape() == gcl::Shape{6, 1, 56, 56});
    REQUIRE(b.labels.shape() == gcl::Shape{6, 56, 56});
    for (index_t k = 0; k < 6; ++k) {
        // Blood is bright and the myocardium dark in the augmented images too.
        double lv = 0, myo = 0;
        index_t nl = 0, nm = 0;
        for (index_t r = 0; r < 56; ++r)
            for (index_t c = 0; c < 56; ++c) {
                const int l = b.labels(k, r, c);
                CHECK(l < 4);
                if (l == gd::cls::lv) lv += b.images(k, 0, r, c), ++nl;
                if (l == gd::cls::myocardium) myo += b.images(k, 0, r, c), ++nm;
            }
        REQUIRE(nl > 0);
        REQUIRE(nm > 0);
        CHECK(lv / static_cast<double>(nl) > myo / static_cast<double>(nm) + 0.2);
    }
}
