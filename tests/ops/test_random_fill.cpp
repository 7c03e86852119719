// ops::fill_uniform, ops::fill_normal and ops::dropout_mask (backend::RandomFill<cpu>) against
// the element-by-element draws they replace: gcl::fill_uniform and gcl::fill_normal
// (core/random.hpp) and the inverted-dropout rule, bit for bit, at any thread count.
#include <algorithm>
#include <cstring>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "gcl/core/random.hpp"
#include "gcl/ops/random.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/tensors.hpp"

using namespace gcl_test;
namespace ops = gcl::ops;

namespace {

template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.numel())) == 0;
}

// The generator both sides start from: a stream and counters already used, as a layer's would be.
gcl::Rng used_generator() {
    gcl::Rng rng(20241, 77);
    rng.reserve(13);
    return rng;
}

}  // namespace

TEMPLATE_TEST_CASE("ops random fills give gcl::fill_uniform's and gcl::fill_normal's numbers bit for bit",
                   "[ops][random]", float, double) {
    using T = TestType;
    for (const Shape& shape : {Shape{1}, Shape{3, 333}, Shape{2, 3, 129, 131}}) {
        DYNAMIC_SECTION("shape " << shape) {
            Tensor<T> got(shape), expected(shape);
            gcl::Rng a = used_generator(), b = used_generator();
            ops::fill_uniform(got.view(), a, T(-0.75), T(1.5));
            gcl::fill_uniform<T>(expected.view(), b, T(-0.75), T(1.5));
            REQUIRE(same_bits(got, expected));
            REQUIRE(a.offset() == b.offset());
            REQUIRE(a.offset() == 13 + static_cast<std::uint64_t>(got.numel()));

            // The next fill continues at the next counter on both sides.
            ops::fill_normal(got.view(), a, T(0.5), T(2));
            gcl::fill_normal<T>(expected.view(), b, T(0.5), T(2));
            REQUIRE(same_bits(got, expected));
            ops::fill_normal(got.view(), a);
            gcl::fill_normal<T>(expected.view(), b);
            REQUIRE(same_bits(got, expected));
            REQUIRE(a.offset() == b.offset());
        }
    }
}

TEMPLATE_TEST_CASE("ops::dropout_mask is the inverted-dropout rule on the generator's next counters", "[ops][random]",
                   float, double) {
    using T = TestType;
    const Shape shape{4, 5, 61, 67};
    for (const double p : {0.0, 0.1, 0.5, 0.9}) {
        DYNAMIC_SECTION("p " << p) {
            gcl::Rng rng = used_generator();
            const std::uint64_t first = rng.offset();
            Tensor<T> mask(shape), expected(shape);
            ops::dropout_mask(mask.view(), rng, p);
            const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
            index_t dropped = 0;
            for (index_t i = 0; i < expected.numel(); ++i) {
                const double u = gcl::uniform_at<double>(rng.seed(), rng.stream(), first + static_cast<std::uint64_t>(i),
                                                         0.0, 1.0);
                expected.data()[i] = u < p ? T(0) : keep_scale;
                dropped += u < p;
            }
            REQUIRE(same_bits(mask, expected));
            REQUIRE(rng.offset() == first + static_cast<std::uint64_t>(mask.numel()));
            CHECK(static_cast<double>(dropped) / static_cast<double>(mask.numel()) == Approx(p).margin(0.01));
        }
    }
}

#if defined(_OPENMP)
TEST_CASE("ops random fills do not depend on the number of threads", "[ops][random]") {
    const Shape shape{3, 300, 300};
    Tensor<double> one(shape), many(shape);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    gcl::Rng a(5);
    ops::fill_normal(one.view(), a);
    omp_set_num_threads(std::max(threads, 2));
    gcl::Rng b(5);
    ops::fill_normal(many.view(), b);
    omp_set_num_threads(threads);
    REQUIRE(same_bits(one, many));
}
#endif

TEST_CASE("ops random fills reject bad arguments without consuming counters", "[ops][random]") {
    Tensor<float> t(Shape{4, 4});
    gcl::Rng rng(1);
    require_error([&] { ops::fill_uniform(t.view().narrow(1, 0, 2), rng); }, {"ops::fill_uniform", "[4, 2]", "contiguous"});
    require_error([&] { ops::fill_normal(t.view().narrow(1, 1, 2), rng); }, {"ops::fill_normal", "contiguous"});
    require_error([&] { ops::dropout_mask(t.view().narrow(0, 0, 3).transpose(0, 1), rng, 0.5); },
                  {"ops::dropout_mask", "contiguous"});
    require_error([&] { ops::fill_uniform(t.view(), rng, 1.0f, 0.0f); }, {"ops::fill_uniform", "ordered"});
    require_error([&] { ops::fill_normal(t.view(), rng, 0.0f, -1.0f); }, {"ops::fill_normal", "negative"});
    require_error([&] { ops::dropout_mask(t.view(), rng, 1.0); }, {"ops::dropout_mask", "[0, 1)"});
    require_error([&] { ops::dropout_mask(t.view(), rng, -0.1); }, {"ops::dropout_mask", "[0, 1)"});
    REQUIRE(rng.offset() == 0);
}
