#pragma once
// The per-element rules of the activations, shared by every backend: the CPU loops and the CUDA
// kernels call the same functions, so the two cannot drift apart. Both sides of each select are
// computed unconditionally (see backend/cpu/activation.hpp for why that matters on the CPU).
#include "gcl/core/config.hpp"

namespace gcl::backend::detail {

// max(x, 0); NaN stays NaN and -inf becomes 0.
template <class T>
GCL_HOST_DEVICE inline T relu_item(T v) {
    return (v > T(0) || v != v) ? v : T(0);
}

// dy where x > 0, else 0.
template <class T>
GCL_HOST_DEVICE inline T relu_backward_item(T g, T x) {
    return x > T(0) ? g : T(0);
}

// x where x > 0, else slope x.
template <class T>
GCL_HOST_DEVICE inline T leaky_relu_item(T v, T slope) {
    const T scaled = slope * v;
    return v > T(0) ? v : scaled;
}

// dy where x > 0, else slope dy.
template <class T>
GCL_HOST_DEVICE inline T leaky_relu_backward_item(T g, T x, T slope) {
    const T scaled = slope * g;
    return x > T(0) ? g : scaled;
}

}  // namespace gcl::backend::detail
