#pragma once
// The per-line rules of softmax and log-softmax, shared by the CPU loops and the CUDA kernels
// (one thread per line) and replayed on the host by the tests. A line is the `extent` values
// first, first + stride, ... of a tensor seen as [outer, extent, inner] (stride = inner). The
// maximum is subtracted before exponentiating and the sums run in double in index order, so the
// devices differ only where their exp and log do (CUDA's double exp and log are within an ulp or
// two of the host's).
#include <cmath>

#include "gcl/core/config.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::backend::detail {

// out = softmax of the line at `first` of in, or log-softmax with `log_softmax`:
// exp(x - max) / sum exp(x - max), or x - max - log(sum exp(x - max)). out may be in. A NaN in
// the line makes the maximum, and so the whole line, NaN.
template <class T>
GCL_HOST_DEVICE inline void softmax_line(const T* in, T* out, index_t first, index_t stride, index_t extent,
                                         bool log_softmax) {
    double top = -INFINITY;
    for (index_t k = 0; k < extent; ++k) {
        const double v = static_cast<double>(in[first + k * stride]);
        top = (v > top || v != v) ? v : top;
    }
    double sum = 0;
    if (log_softmax) {
        for (index_t k = 0; k < extent; ++k) sum += exp(static_cast<double>(in[first + k * stride]) - top);
        const double shift = top + log(sum);
        for (index_t k = 0; k < extent; ++k) {
            const index_t at = first + k * stride;
            out[at] = static_cast<T>(static_cast<double>(in[at]) - shift);
        }
        return;
    }
    for (index_t k = 0; k < extent; ++k) {
        const index_t at = first + k * stride;
        const double e = exp(static_cast<double>(in[at]) - top);
        sum += e;
        out[at] = static_cast<T>(e);
    }
    for (index_t k = 0; k < extent; ++k) {
        const index_t at = first + k * stride;
        out[at] = static_cast<T>(static_cast<double>(out[at]) / sum);
    }
}

// The gradient on the line at `first`, given the forward's output y: softmax
// dx = y (dy - sum dy y); log-softmax dx = dy - exp(y) sum dy. dx may be dy or y.
template <class T>
GCL_HOST_DEVICE inline void softmax_backward_line(const T* dy, const T* y, T* dx, index_t first, index_t stride,
                                                  index_t extent, bool log_softmax) {
    double sum = 0;
    for (index_t k = 0; k < extent; ++k) {
        const index_t at = first + k * stride;
        sum += log_softmax ? static_cast<double>(dy[at]) : static_cast<double>(dy[at]) * static_cast<double>(y[at]);
    }
    for (index_t k = 0; k < extent; ++k) {
        const index_t at = first + k * stride;
        const double g = static_cast<double>(dy[at]), out = static_cast<double>(y[at]);
        dx[at] = static_cast<T>(log_softmax ? g - exp(out) * sum : out * (g - sum));
    }
}

}  // namespace gcl::backend::detail
