#pragma once
// The Box-Muller transform behind gcl's normal draws, z = sqrt(-2 log u1) cos(2 pi u2), as the
// host computes it and as device code computes it.
//
// The host uses the C library's log and cos. A GPU has its own, one or two units in the last
// place from those, and the C library's own results are not correctly rounded either (glibc 2.36:
// about 0.1% of Box-Muller's logarithms and 0.15% of its cosines are one unit off), so no device
// function can promise the host's bits. Device code therefore computes log and cos here, in
// double-double arithmetic (about 100 bits) rounded once: the correctly rounded value, which
// agrees with the C library wherever the C library is right, and whose bits do not depend on the
// device, the compiler or its flags. Every other step (the product 2 pi u2, the square root, the
// last product) is one IEEE operation, and device code pins each with an intrinsic, so nvcc
// cannot fuse a product and a sum into an FMA the host does not compute.
//
// The functions compile for the host too, where tests replay them against the C library.
#include <cmath>
#include <type_traits>

#include "gcl/core/config.hpp"

namespace gcl::detail {

// ---- single operations, rounded to nearest and never contracted on a device ----

template <class T>
GCL_HOST_DEVICE inline T add_rn(T a, T b) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>) return __fadd_rn(a, b);
    else return __dadd_rn(a, b);
#else
    return a + b;
#endif
}
template <class T>
GCL_HOST_DEVICE inline T sub_rn(T a, T b) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>) return __fsub_rn(a, b);
    else return __dsub_rn(a, b);
#else
    return a - b;
#endif
}
template <class T>
GCL_HOST_DEVICE inline T mul_rn(T a, T b) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>) return __fmul_rn(a, b);
    else return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
GCL_HOST_DEVICE inline double div_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}
GCL_HOST_DEVICE inline double fma_rn(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
    return __fma_rn(a, b, c);
#else
    return std::fma(a, b, c);
#endif
}
GCL_HOST_DEVICE inline double sqrt_rn(double a) {
#if defined(__CUDA_ARCH__)
    return __dsqrt_rn(a);
#else
    return std::sqrt(a);
#endif
}

// ---- double-double numbers: hi + lo with |lo| <= ulp(hi) / 2 ----

struct DoubleDouble {
    double hi = 0;
    double lo = 0;
};

// a + b exactly, for |a| >= |b| (or a == 0).
GCL_HOST_DEVICE inline DoubleDouble fast_two_sum(double a, double b) {
    const double s = add_rn(a, b);
    return {s, sub_rn(b, sub_rn(s, a))};
}

// a + b exactly (Knuth).
GCL_HOST_DEVICE inline DoubleDouble two_sum(double a, double b) {
    const double s = add_rn(a, b);
    const double bb = sub_rn(s, a);
    return {s, add_rn(sub_rn(a, sub_rn(s, bb)), sub_rn(b, bb))};
}

// a b exactly.
GCL_HOST_DEVICE inline DoubleDouble two_prod(double a, double b) {
    const double p = mul_rn(a, b);
    return {p, fma_rn(a, b, -p)};
}

GCL_HOST_DEVICE inline DoubleDouble dd_add(DoubleDouble a, DoubleDouble b) {
    DoubleDouble s = two_sum(a.hi, b.hi);
    const DoubleDouble t = two_sum(a.lo, b.lo);
    s = fast_two_sum(s.hi, add_rn(s.lo, t.hi));
    return fast_two_sum(s.hi, add_rn(s.lo, t.lo));
}

GCL_HOST_DEVICE inline DoubleDouble dd_neg(DoubleDouble a) { return {-a.hi, -a.lo}; }

GCL_HOST_DEVICE inline DoubleDouble dd_mul(DoubleDouble a, DoubleDouble b) {
    const DoubleDouble p = two_prod(a.hi, b.hi);
    return fast_two_sum(p.hi, fma_rn(a.hi, b.lo, fma_rn(a.lo, b.hi, p.lo)));
}

// a / b: three quotient digits, each the remainder's leading part over b.hi.
GCL_HOST_DEVICE inline DoubleDouble dd_div(DoubleDouble a, DoubleDouble b) {
    const double q1 = div_rn(a.hi, b.hi);
    DoubleDouble r = dd_add(a, dd_neg(dd_mul({q1, 0}, b)));
    const double q2 = div_rn(r.hi, b.hi);
    r = dd_add(r, dd_neg(dd_mul({q2, 0}, b)));
    const double q3 = div_rn(r.hi, b.hi);
    return dd_add(fast_two_sum(q1, q2), {q3, 0});
}

// ---- log and cos, correctly rounded (to about 2^-100 before the one rounding) ----

// log(x) for x in (0, 1], the range of Box-Muller's u1. x = 2^e m with m in [sqrt(1/2), sqrt(2)),
// log m = 2 atanh(s) with s = (m - 1) / (m + 1), |s| <= 0.1716: the series' 22 terms reach 2^-106.
GCL_HOST_DEVICE inline double log_correctly_rounded(double x) {
    if (x == 1.0) return 0.0;
    double m = x;
    int e = 0;
    while (m < 0.70710678118654752) {  // exact scalings by 2
        m = mul_rn(m, 2.0);
        --e;
    }
    const double f = sub_rn(m, 1.0);  // exact (Sterbenz)
    const DoubleDouble s = dd_div({f, 0}, two_sum(2.0, f));
    const DoubleDouble s2 = dd_mul(s, s);
    constexpr int terms = 22;
    DoubleDouble series = dd_div({1, 0}, {2.0 * terms + 1, 0});
    for (int k = terms - 1; k >= 0; --k) series = dd_add(dd_mul(series, s2), dd_div({1, 0}, {2.0 * k + 1, 0}));
    const DoubleDouble log_m = dd_mul(dd_mul(s, series), {2, 0});
    constexpr DoubleDouble ln2{0x1.62e42fefa39efp-1, 0x1.abc9e3b39803fp-56};
    const DoubleDouble result = dd_add(dd_mul({static_cast<double>(e), 0}, ln2), log_m);
    return add_rn(result.hi, result.lo);
}

// cos(a) for a in [0, 2 pi], the range of Box-Muller's angle: a = n pi/2 + r with pi/2 in three
// parts (159 bits: a double this small comes no closer than about 2^-60 to a multiple of pi/2,
// so r keeps 100 bits), then the Taylor series of cos r or sin r.
GCL_HOST_DEVICE inline double cos_correctly_rounded(double a) {
    constexpr double pio2_1 = 0x1.921fb54442d18p+0, pio2_2 = 0x1.1a62633145c07p-54, pio2_3 = -0x1.f1976b7ed8fbcp-110;
    const int n = static_cast<int>(add_rn(mul_rn(a, 0x1.45f306dc9c883p-1), 0.5));  // round(a / (pi/2)), a >= 0
    const double dn = static_cast<double>(n);
    DoubleDouble r = dd_add({a, 0}, dd_neg(two_prod(dn, pio2_1)));
    r = dd_add(r, dd_neg(two_prod(dn, pio2_2)));
    r = dd_add(r, dd_neg(two_prod(dn, pio2_3)));
    const DoubleDouble r2 = dd_mul(r, r);
    // cos r = sum (-1)^k r^2k / (2k)!, sin r = sum (-1)^k r^(2k+1) / (2k+1)!, |r| <= pi/4 + tiny:
    // 15 terms reach 2^-108.
    const bool odd = (n & 1) != 0;
    DoubleDouble term = odd ? r : DoubleDouble{1, 0};
    DoubleDouble sum = term;
    for (int k = 1; k <= 15; ++k) {
        const double j = odd ? 2.0 * k : 2.0 * k - 1.0;  // the factorial's two new factors: j and j + 1
        term = dd_div(dd_mul(term, dd_neg(r2)), {j * (j + 1.0), 0});
        sum = dd_add(sum, term);
    }
    // cos(n pi/2 + r) = cos r, -sin r, -cos r, sin r for n mod 4 = 0, 1, 2, 3.
    if ((n & 3) == 1 || (n & 3) == 2) sum = dd_neg(sum);
    return add_rn(sum.hi, sum.lo);
}

// ---- the transform ----

inline constexpr double two_pi = 6.283185307179586476925;  // rounds to the double nearest 2 pi

// z for u1 in (0, 1] and u2 in [0, 1), with the C library's log and cos: the host's numbers.
inline double box_muller_libm(double u1, double u2) {
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
}

// The same z with gcl's correctly rounded log and cos and every operation pinned: what device
// code computes (and the host can replay).
GCL_HOST_DEVICE inline double box_muller_pinned(double u1, double u2) {
    const double radius = sqrt_rn(mul_rn(-2.0, log_correctly_rounded(u1)));
    return mul_rn(radius, cos_correctly_rounded(mul_rn(two_pi, u2)));
}

}  // namespace gcl::detail
