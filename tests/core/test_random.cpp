#include <catch2/catch.hpp>

#include <cstdio>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <set>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"

using gcl::Philox4x32;

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors", "[core][random]") {
    auto check_kat = [](Philox4x32 ctr, std::uint32_t k0, std::uint32_t k1, Philox4x32 expected) {
        const Philox4x32 r = gcl::philox4x32_10(ctr, k0, k1);
        for (int i = 0; i < 4; ++i) CHECK(r.v[i] == expected.v[i]);
    };
    check_kat({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
    check_kat({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
              {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
    check_kat({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
              {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEMPLATE_TEST_CASE("fill_uniform and fill_normal are seeded and counter-based", "[core][random]", float, double) {
    gcl::Tensor<TestType> a(gcl::Shape{1000}), b(gcl::Shape{1000}), c(gcl::Shape{1000});
    gcl::Rng r1(42), r2(42), r3(43);
    gcl::fill_uniform<TestType>(a.view(), r1, TestType(-1), TestType(2));
    gcl::fill_uniform<TestType>(b.view(), r2, TestType(-1), TestType(2));
    gcl::fill_uniform<TestType>(c.view(), r3, TestType(-1), TestType(2));
    CHECK(r1.offset() == 1000);
    int differ = 0;
    double mean = 0;
    for (int i = 0; i < 1000; ++i) {
        CHECK(a(i) == b(i));
        CHECK(a(i) >= TestType(-1));
        CHECK(a(i) < TestType(2));
        differ += a(i) != c(i);
        mean += a(i) / 1000.0;
    }
    CHECK(differ > 990);
    CHECK(mean == Approx(0.5).margin(0.1));

    // Element i depends only on (seed, stream, first counter + i): filling in two halves from
    // the same generator gives the same numbers as one fill.
    gcl::Tensor<TestType> whole(gcl::Shape{10}), half(gcl::Shape{5});
    gcl::Rng w(7), h(7);
    gcl::fill_normal<TestType>(whole.view(), w);
    gcl::fill_normal<TestType>(half.view(), h);
    for (int i = 0; i < 5; ++i) CHECK(half(i) == whole(i));
    gcl::fill_normal<TestType>(half.view(), h);
    for (int i = 0; i < 5; ++i) CHECK(half(i) == whole(i + 5));

    gcl::Tensor<TestType> big(gcl::Shape{200000});
    gcl::Rng g(1);
    gcl::fill_normal<TestType>(big.view(), g, TestType(1), TestType(2));
    double m = 0, v = 0;
    for (gcl::index_t i = 0; i < big.numel(); ++i) m += big(i);
    m /= big.numel();
    for (gcl::index_t i = 0; i < big.numel(); ++i) v += (big(i) - m) * (big(i) - m);
    v /= big.numel();
    CHECK(m == Approx(1.0).margin(0.02));
    CHECK(std::sqrt(v) == Approx(2.0).margin(0.02));
}

TEST_CASE("Rng: split streams, unbiased integers, permutations", "[core][random]") {
    gcl::Rng base(5);
    gcl::Rng s1 = base.split(1), s1b = base.split(1), s2 = base.split(2);
    CHECK(base.offset() == 0);
    CHECK(s1.stream() == s1b.stream());
    CHECK(s1.stream() != s2.stream());
    CHECK(s1.uniform() == s1b.uniform());
    CHECK(s1.uniform() != s2.uniform());

    gcl::Rng r(9);
    int counts[3] = {0, 0, 0};
    for (int i = 0; i < 30000; ++i) counts[r.below(3)]++;
    for (int c : counts) CHECK(c == Approx(10000).margin(400));
    CHECK_THROWS_AS(r.below(0), gcl::Error);

    gcl::Rng p1(3), p2(3);
    auto a = gcl::random_permutation(50, p1);
    auto b = gcl::random_permutation(50, p2);
    CHECK(a == b);
    CHECK(std::set<gcl::index_t>(a.begin(), a.end()).size() == 50);
    std::vector<gcl::index_t> identity(50);
    std::iota(identity.begin(), identity.end(), 0);
    CHECK(a != identity);
}

TEST_CASE("fill rejects non-contiguous views without consuming counters", "[core][random]") {
    gcl::Tensor<float> t(gcl::Shape{4, 4});
    gcl::Rng r(1);
    CHECK_THROWS_AS(gcl::fill_uniform<float>(t.view().narrow(1, 0, 2), r), gcl::Error);
    CHECK(r.offset() == 0);
}

// The device's Box-Muller arithmetic (core/box_muller.hpp, normal_at_pinned) against the host's
// (the C library's log and cos). The pinned log and cos are correctly rounded; the C library's
// are off by one unit in the last place for a few inputs in a thousand. So: never more than one
// unit apart, rarely apart at all, and float normals (z rounded to float) identical.
namespace {

// How many doubles lie between a and b (0: the same bits), for finite values of equal sign.
std::uint64_t ulps_between(double a, double b) {
    std::int64_t ia = 0, ib = 0;
    std::memcpy(&ia, &a, sizeof a);
    std::memcpy(&ib, &b, sizeof b);
    if (a == b) return 0;
    if ((ia < 0) != (ib < 0)) return ~std::uint64_t{0};
    return ia > ib ? static_cast<std::uint64_t>(ia - ib) : static_cast<std::uint64_t>(ib - ia);
}

}  // namespace

TEST_CASE("the device's pinned Box-Muller arithmetic agrees with the host's to the last place", "[core][random]") {
    namespace gd = gcl::detail;
    std::uint64_t compared = 0, log_differ = 0, cos_differ = 0, z_differ = 0, worst_z = 0;
    const auto compare = [&](double u1, double u2) {
        const double a = gd::two_pi * u2;
        const std::uint64_t dl = ulps_between(gd::log_correctly_rounded(u1), std::log(u1));
        const std::uint64_t dc = ulps_between(gd::cos_correctly_rounded(a), std::cos(a));
        const std::uint64_t dz = ulps_between(gd::box_muller_pinned(u1, u2), gd::box_muller_libm(u1, u2));
        REQUIRE(dl <= 1);
        REQUIRE(dc <= 1);
        log_differ += dl;
        cos_differ += dc;
        z_differ += dz != 0;
        worst_z = std::max(worst_z, dz);
        ++compared;
    };
    constexpr std::uint64_t draws = 1 << 16;
    for (std::uint64_t c = 0; c < draws; ++c) {
        const Philox4x32 r = gcl::random_block(2024, 3, c);
        compare(1.0 - gcl::uniform_from_bits<double>(r.v[0], r.v[1]), gcl::uniform_from_bits<double>(r.v[2], r.v[3]));
    }
    // u1 at both ends of (0, 1] and next to 1 (tiny logarithms); u2 at and next to the quarters,
    // where cos is near 0 or +-1 and the reduction by pi/2 cancels most.
    const double ulp = 0x1p-53;
    for (const double u1 : {ulp, 3 * ulp, 0.25, 0.5, 0.5 - ulp, 0.70710678118654752, 1 - 1024 * ulp, 1 - ulp, 1.0})
        for (const double u2 : {0.0, ulp, 0.125, 0.25 - ulp, 0.25, 0.25 + ulp, 0.5, 0.75 - ulp, 0.75, 0.75 + ulp, 1 - ulp})
            compare(u1, u2);
    // The counts docs/cuda.md quotes (test_core "[random]" -s prints them).
    INFO("of " << compared << ": log " << log_differ << ", cos " << cos_differ << ", z " << z_differ
               << " apart; z at most " << worst_z << " units");
    std::printf("pinned Box-Muller against libm: of %llu draws, log %llu, cos %llu, z %llu apart; z at most %llu units\n",
                static_cast<unsigned long long>(compared), static_cast<unsigned long long>(log_differ),
                static_cast<unsigned long long>(cos_differ), static_cast<unsigned long long>(z_differ),
                static_cast<unsigned long long>(worst_z));
    CHECK(worst_z <= 2);
    CHECK(z_differ * 200 < compared);  // under 0.5%
    CHECK(gd::log_correctly_rounded(1.0) == 0.0);
    CHECK(gd::cos_correctly_rounded(0.0) == 1.0);
    CHECK(gd::log_correctly_rounded(0.5) == -0x1.62e42fefa39efp-1);  // -ln 2, correctly rounded

    // Float normals are the host's, bit for bit; double normals at most two units apart.
    std::uint64_t float_differ = 0;
    for (std::uint64_t c = 0; c < draws; ++c) {
        float_differ += gcl::normal_at_pinned<float>(11, 4, c, 0.0f, 1.0f) != gcl::normal_at<float>(11, 4, c, 0.0f, 1.0f);
        REQUIRE(ulps_between(gcl::normal_at_pinned<double>(11, 4, c, 0.0, 1.0), gcl::normal_at<double>(11, 4, c, 0.0, 1.0)) <= 2);
    }
    CHECK(float_differ == 0);
}
