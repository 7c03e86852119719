#pragma once
// The per-item rules of the reduction kernels, shared by the CUDA kernels and their host replay
// in the tests. Reductions along a dimension see x as [outer, extent, inner]; output element
// e = o * inner + i is reduced over k in index order, as the CPU backend does, so those results
// equal the CPU's bit for bit.
#include <cmath>

#include "gcl/core/config.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::backend::detail {

// Whether x is neither NaN nor infinite, on the host and the device.
template <class T>
GCL_HOST_DEVICE inline bool finite_value(T x) {
#if defined(__CUDA_ARCH__)
    return isfinite(x);
#else
    return std::isfinite(x);
#endif
}

// The flat index of element 0 of line `line` of [outer, extent, inner] (lines numbered
// outer-major, as the outputs of a reduction along the middle dimension): its elements are
// line_first + k * inner, k < extent.
GCL_HOST_DEVICE inline index_t line_first(index_t line, index_t extent, index_t inner) {
    return (line / inner) * extent * inner + line % inner;
}

// Sum in double of x[first], x[first + step], ... below n: one thread's share of a total.
template <class T>
GCL_HOST_DEVICE inline double strided_sum(const T* x, index_t n, index_t first, index_t step) {
    double sum = 0;
    for (index_t i = first; i < n; i += step) sum += static_cast<double>(x[i]);
    return sum;
}

// The same for a[i] b[i].
template <class T>
GCL_HOST_DEVICE inline double strided_dot(const T* a, const T* b, index_t n, index_t first, index_t step) {
    double sum = 0;
    for (index_t i = first; i < n; i += step) sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
    return sum;
}

// Whether (a at ia) comes before (b at ib) as the maximum of a view: the first NaN, else the
// first largest element. Taking the preferred of any two in any order gives the CPU's maximum.
template <class T>
GCL_HOST_DEVICE inline bool max_beats(T a, index_t ia, T b, index_t ib) {
    const bool a_nan = a != a, b_nan = b != b;
    if (a_nan || b_nan) return a_nan && (!b_nan || ia < ib);
    return a > b || (a == b && ia < ib);
}

// out[o, i] = scale * sum over k of x[o, k, i], for e = o * inner + i.
template <class T>
GCL_HOST_DEVICE inline T sum_dim_item(const T* x, index_t extent, index_t inner, index_t e, double scale) {
    const T* in = x + line_first(e, extent, inner);
    double acc = 0;
    for (index_t k = 0; k < extent; ++k) acc += static_cast<double>(in[k * inner]);
    return static_cast<T>(scale * acc);
}

// out[o, i] = max over k of x[o, k, i] (first maximum; NaN wins), its k in arg.
template <class T>
GCL_HOST_DEVICE inline T max_dim_item(const T* x, index_t extent, index_t inner, index_t e, index_t& arg) {
    const T* in = x + line_first(e, extent, inner);
    T best = in[0];
    arg = 0;
    for (index_t k = 1; k < extent && best == best; ++k) {
        const T v = in[k * inner];
        if (v > best || v != v) {
            best = v;
            arg = k;
        }
    }
    return best;
}

// dx[o, k, i] = scale * dy[o, i], for flat dx element e.
template <class T>
GCL_HOST_DEVICE inline T broadcast_dim_item(const T* dy, index_t extent, index_t inner, index_t e, double scale) {
    const index_t o = e / (extent * inner), i = e % inner;
    return static_cast<T>(scale * static_cast<double>(dy[o * inner + i]));
}

// dx[o, k, i] = dy[o, i] where indices[o, i] == k, else 0: the gradient of max along a dimension,
// gathered per dx element e so no two threads write one element.
template <class T>
GCL_HOST_DEVICE inline T scatter_dim_item(const T* dy, const index_t* indices, index_t extent, index_t inner,
                                          index_t e) {
    const index_t o = e / (extent * inner), k = (e / inner) % extent, i = e % inner;
    return indices[o * inner + i] == k ? dy[o * inner + i] : T(0);
}

}  // namespace gcl::backend::detail
