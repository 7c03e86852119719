#pragma once
// The per-item rules of the pooling kernels, shared by the CUDA kernels and their host replay in
// the tests. Each gives the CPU backend's result (backend/cpu/pooling.hpp) bit for bit.
#include "gcl/core/config.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::backend::detail {

// The maximum of the window [h0, h0 + kh) x [w0, w0 + kw) of an h x w plane, clipped to the
// plane, and its position a * w + b: candidates in row-major order, a later one taken only when
// it is larger (ties: the first) or NaN (the first NaN wins and ends the search).
template <class T>
GCL_HOST_DEVICE inline index_t max_pool_window(const T* plane, index_t h, index_t w, index_t h0, index_t w0,
                                               index_t kh, index_t kw, T& best) {
    const index_t h_lo = h0 > 0 ? h0 : 0, h_hi = h0 + kh < h ? h0 + kh : h;
    const index_t w_lo = w0 > 0 ? w0 : 0, w_hi = w0 + kw < w ? w0 + kw : w;
    index_t best_index = h_lo * w + w_lo;
    best = plane[best_index];
    for (index_t a = h_lo; a < h_hi && best == best; ++a)
        for (index_t b = w_lo; b < w_hi; ++b) {
            const T v = plane[a * w + b];
            if (v > best || v != v) {
                best = v;
                best_index = a * w + b;
                if (v != v) break;
            }
        }
    return best_index;
}

// Max pooling's backward for `lane` of one chunk of `count` consecutive outputs of a plane:
// targets[l] is output l's index in the plane (or -1 if it lies outside), values[l] its
// gradient. The lowest lane of each group of equal targets adds the group's values to
// plane[target] in lane order, so with chunks taken in order every input element receives its
// gradients in output order, as on the CPU, and no two lanes write the same element.
template <class T>
GCL_HOST_DEVICE inline void max_pool_scatter_lane(const index_t* targets, const T* values, int count, int lane,
                                                  T* plane) {
    const index_t target = targets[lane];
    if (target < 0) return;
    for (int l = 0; l < lane; ++l)
        if (targets[l] == target) return;  // an earlier lane adds this group
    T acc = plane[target];
    for (int l = lane; l < count; ++l)
        if (targets[l] == target) acc += values[l];
    plane[target] = acc;
}

// Global average pooling's backward for element e of dx: the plane's dy over the plane's size.
template <class T>
GCL_HOST_DEVICE inline T global_avg_pool_backward_item(const T* dy, index_t size, index_t e) {
    return static_cast<T>(static_cast<double>(dy[e / size]) / static_cast<double>(size));
}

}  // namespace gcl::backend::detail
