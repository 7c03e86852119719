#pragma once
// Portable short vectors (GCC/Clang vector extensions) for the bandwidth-bound surgery passes.
// The width follows the instruction set the translation unit is compiled for (SSE2, AVX,
// AVX-512), so the same code is a few registers wide everywhere and needs no intrinsics.
#include <cstring>

// Full unrolling of the short loops over rows and lanes (nvcc's host front end does not know the
// pragma and gets nothing).
#define GCL_SIMD_PRAGMA(text) _Pragma(#text)
#if defined(__CUDACC__)
#define GCL_SIMD_UNROLL(n)
#else
#define GCL_SIMD_UNROLL(n) GCL_SIMD_PRAGMA(GCC unroll n)
#endif

namespace gcl::surgery::detail {

#if defined(__AVX512F__)
inline constexpr int simd_bytes = 64;
#elif defined(__AVX__)
inline constexpr int simd_bytes = 32;
#else
inline constexpr int simd_bytes = 16;
#endif

template <class T>
struct simd;

template <>
struct simd<float> {
    typedef float type __attribute__((vector_size(simd_bytes)));
    static constexpr int width = simd_bytes / static_cast<int>(sizeof(float));
};

template <>
struct simd<double> {
    typedef double type __attribute__((vector_size(simd_bytes)));
    static constexpr int width = simd_bytes / static_cast<int>(sizeof(double));
};

template <class T>
using simd_t = typename simd<T>::type;

// Unaligned load and store (compile to one move instruction).
template <class T>
inline simd_t<T> load(const T* p) {
    simd_t<T> v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
template <class T>
inline void store(T* p, simd_t<T> v) {
    std::memcpy(p, &v, sizeof v);
}
template <class T>
inline simd_t<T> broadcast(T x) {
    simd_t<T> v;
    for (int l = 0; l < simd<T>::width; ++l) v[l] = x;
    return v;
}
// Sum of the lanes, in double.
template <class T>
inline double lane_sum(simd_t<T> v) {
    double s = 0;
    for (int l = 0; l < simd<T>::width; ++l) s += static_cast<double>(v[l]);
    return s;
}

}  // namespace gcl::surgery::detail
