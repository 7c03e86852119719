#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
// A value is a pure function of (seed, stream, counter), so the same seed gives the same numbers
// on the CPU and on the GPU, with any number of threads. Rng owns a seed, a stream and the next
// unused counter; every draw or fill takes fresh counters from it.
#include <cmath>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <vector>

#include "gcl/core/box_muller.hpp"
#include "gcl/core/config.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl {

struct Philox4x32 {
    std::uint32_t v[4];
};

namespace detail {
GCL_HOST_DEVICE inline void mulhilo32(std::uint32_t a, std::uint32_t b, std::uint32_t& lo, std::uint32_t& hi) {
    const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
    lo = static_cast<std::uint32_t>(p);
    hi = static_cast<std::uint32_t>(p >> 32);
}
}  // namespace detail

// Philox4x32 with 10 rounds on a 128-bit counter and a 64-bit key.
GCL_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 ctr, std::uint32_t k0, std::uint32_t k1) {
    constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
    constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
        std::uint32_t lo0, hi0, lo1, hi1;
        detail::mulhilo32(m0, ctr.v[0], lo0, hi0);
        detail::mulhilo32(m1, ctr.v[2], lo1, hi1);
        ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
        k0 += w0;
        k1 += w1;
    }
    return ctr;
}

// The four 32-bit words at `counter` of stream `stream` under `seed`.
GCL_HOST_DEVICE inline Philox4x32 random_block(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
    Philox4x32 ctr{{static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
                    static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}};
    return philox4x32_10(ctr, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// Uniform in [0, 1) with 24 (float) or 53 (double) random bits.
template <class T>
GCL_HOST_DEVICE inline T uniform_from_bits(std::uint32_t a, std::uint32_t b) {
    if constexpr (std::is_same_v<T, float>) {
        return static_cast<float>(a >> 8) * (1.0f / 16777216.0f);
    } else {
        const std::uint64_t x = (static_cast<std::uint64_t>(a) << 21) ^ (b >> 11);
        return static_cast<double>(x & ((std::uint64_t{1} << 53) - 1)) * (1.0 / 9007199254740992.0);
    }
}

// What device code computes for uniform_at and normal_at, callable on the host too (tests replay
// it there): every operation pinned to one rounding (no fused multiply-add), and the normals' log
// and cos correctly rounded (core/box_muller.hpp). The host's own uniform_at equals it wherever
// the host compiler does not fuse `lo + (hi - lo) u` into an FMA (-ffp-contract=off, or a target
// without FMA); its normal_at uses the C library's log and cos, which are not correctly rounded
// for a few inputs in a thousand, so the two normals' z can differ there by one unit in the last
// place of a double, which a float result shows only where z lies that close to a float rounding
// boundary (about 2^-29 of those draws).
template <class T>
GCL_HOST_DEVICE inline T uniform_at_pinned(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter, T lo,
                                           T hi) {
    const Philox4x32 r = random_block(seed, stream, counter);
    return detail::add_rn(lo, detail::mul_rn(detail::sub_rn(hi, lo), uniform_from_bits<T>(r.v[0], r.v[1])));
}

template <class T>
GCL_HOST_DEVICE inline T normal_at_pinned(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter, T mean,
                                          T std) {
    const Philox4x32 r = random_block(seed, stream, counter);
    const double u1 = 1.0 - uniform_from_bits<double>(r.v[0], r.v[1]);  // in (0, 1]: a finite logarithm
    const double u2 = uniform_from_bits<double>(r.v[2], r.v[3]);
    return detail::add_rn(mean, detail::mul_rn(std, static_cast<T>(detail::box_muller_pinned(u1, u2))));
}

// Uniform in [lo, hi) for element `counter` of a stream: one Philox block per element.
template <class T>
GCL_HOST_DEVICE inline T uniform_at(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter, T lo, T hi) {
#if defined(__CUDA_ARCH__)
    return uniform_at_pinned<T>(seed, stream, counter, lo, hi);
#else
    const Philox4x32 r = random_block(seed, stream, counter);
    return lo + (hi - lo) * uniform_from_bits<T>(r.v[0], r.v[1]);
#endif
}

// Normal (Box-Muller) for element `counter` of a stream: one Philox block per element, z computed
// in double on every device.
template <class T>
GCL_HOST_DEVICE inline T normal_at(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter, T mean, T std) {
#if defined(__CUDA_ARCH__)
    return normal_at_pinned<T>(seed, stream, counter, mean, std);
#else
    const Philox4x32 r = random_block(seed, stream, counter);
    // u1 in (0, 1] keeps the logarithm finite.
    const double u1 = 1.0 - uniform_from_bits<double>(r.v[0], r.v[1]);
    const double u2 = uniform_from_bits<double>(r.v[2], r.v[3]);
    const double z = detail::box_muller_libm(u1, u2);
    return mean + std * static_cast<T>(z);
#endif
}

// SplitMix64 finaliser: derives well-separated stream ids.
GCL_HOST_DEVICE inline std::uint64_t mix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

class Rng {
public:
    explicit Rng(std::uint64_t seed, std::uint64_t stream = 0) : seed_(seed), stream_(stream) {}

    std::uint64_t seed() const { return seed_; }
    std::uint64_t stream() const { return stream_; }
    // The next unused counter.
    std::uint64_t offset() const { return offset_; }

    // Reserves `n` consecutive counters and returns the first; kernels then use counter first + i
    // for element i, which is what makes results independent of the thread count.
    std::uint64_t reserve(std::uint64_t n) {
        const std::uint64_t first = offset_;
        offset_ += n;
        return first;
    }

    // An independent generator for a sub-task (a layer, a worker, an epoch), derived from this
    // one's seed and stream; it does not consume counters of this generator.
    Rng split(std::uint64_t sub_stream) const { return Rng(seed_, mix64(stream_ ^ mix64(sub_stream + 1))); }

    std::uint64_t next_u64() {
        const Philox4x32 r = random_block(seed_, stream_, reserve(1));
        return (static_cast<std::uint64_t>(r.v[0]) << 32) | r.v[1];
    }
    double uniform() { return uniform_at<double>(seed_, stream_, reserve(1), 0.0, 1.0); }
    double uniform(double lo, double hi) { return uniform_at<double>(seed_, stream_, reserve(1), lo, hi); }
    double normal(double mean = 0.0, double std = 1.0) {
        return normal_at<double>(seed_, stream_, reserve(1), mean, std);
    }
    bool bernoulli(double p) { return uniform() < p; }
    // Uniform integer in [0, n), without modulo bias.
    std::uint64_t below(std::uint64_t n) {
        check(n > 0, "Rng::below", "the range must not be empty");
        const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
        for (;;) {
            const std::uint64_t x = next_u64();
            if (x >= threshold) return x % n;
        }
    }

private:
    std::uint64_t seed_;
    std::uint64_t stream_;
    std::uint64_t offset_ = 0;
};

// Fills a host view with uniform values in [lo, hi): element i (row-major) uses counter first + i.
template <class T>
void fill_uniform(TensorView<T, cpu> out, Rng& rng, T lo = T(0), T hi = T(1)) {
    check(out.is_contiguous(), "fill_uniform", "view of shape ", out.shape(), " must be contiguous");
    const std::uint64_t first = rng.reserve(static_cast<std::uint64_t>(out.numel()));
    T* p = out.data();
    const index_t n = out.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (index_t i = 0; i < n; ++i) p[i] = uniform_at<T>(rng.seed(), rng.stream(), first + i, lo, hi);
}

// Fills a host view with normal values: element i (row-major) uses counter first + i.
template <class T>
void fill_normal(TensorView<T, cpu> out, Rng& rng, T mean = T(0), T std = T(1)) {
    check(out.is_contiguous(), "fill_normal", "view of shape ", out.shape(), " must be contiguous");
    const std::uint64_t first = rng.reserve(static_cast<std::uint64_t>(out.numel()));
    T* p = out.data();
    const index_t n = out.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (index_t i = 0; i < n; ++i) p[i] = normal_at<T>(rng.seed(), rng.stream(), first + i, mean, std);
}

// A uniformly random permutation of 0..n-1 (Fisher-Yates).
inline std::vector<index_t> random_permutation(index_t n, Rng& rng) {
    std::vector<index_t> p(static_cast<std::size_t>(n));
    std::iota(p.begin(), p.end(), index_t{0});
    for (index_t i = n - 1; i > 0; --i) {
        const auto j = static_cast<index_t>(rng.below(static_cast<std::uint64_t>(i + 1)));
        std::swap(p[i], p[j]);
    }
    return p;
}

}  // namespace gcl
