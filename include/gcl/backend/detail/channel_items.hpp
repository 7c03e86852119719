#pragma once
// Per-item rules over a tensor seen as [outer, channels, inner] (bias, batch norm), shared by
// the CUDA kernels and their host replay in the tests. A channel's reduction is split over
// `threads` threads: thread t takes elements t, t + threads, ... of the channel's outer x inner
// block, in that order, summing in double.
#include <cmath>

#include "gcl/core/config.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::backend::detail {

// The channel of flat element e.
GCL_HOST_DEVICE inline index_t channel_of(index_t e, index_t channels, index_t inner) {
    return (e / inner) % channels;
}

// Flat index of element e (of outer * inner) of channel c.
GCL_HOST_DEVICE inline index_t channel_element(index_t e, index_t channels, index_t inner, index_t c) {
    const index_t o = e / inner, i = e % inner;
    return (o * channels + c) * inner + i;
}

// Thread `thread`'s share of sum x over channel c.
template <class T>
GCL_HOST_DEVICE inline double channel_thread_sum(const T* x, index_t outer, index_t channels, index_t inner, index_t c,
                                                 index_t thread, index_t threads) {
    double sum = 0;
    for (index_t e = thread; e < outer * inner; e += threads)
        sum += static_cast<double>(x[channel_element(e, channels, inner, c)]);
    return sum;
}

// Thread `thread`'s share of sum (x - mean)^2 over channel c.
template <class T>
GCL_HOST_DEVICE inline double channel_thread_square_sum(const T* x, double mean, index_t outer, index_t channels,
                                                        index_t inner, index_t c, index_t thread, index_t threads) {
    double sum = 0;
    for (index_t e = thread; e < outer * inner; e += threads) {
        const double d = static_cast<double>(x[channel_element(e, channels, inner, c)]) - mean;
        sum += d * d;
    }
    return sum;
}

// Thread `thread`'s share of [sum dy, sum dy (x - mean)] over channel c.
template <class T>
GCL_HOST_DEVICE inline void channel_thread_gradient_sums(const T* dy, const T* x, double mean, index_t outer,
                                                         index_t channels, index_t inner, index_t c, index_t thread,
                                                         index_t threads, double (&out)[2]) {
    out[0] = 0;
    out[1] = 0;
    for (index_t e = thread; e < outer * inner; e += threads) {
        const index_t at = channel_element(e, channels, inner, c);
        const double g = static_cast<double>(dy[at]);
        out[0] += g;
        out[1] += g * (static_cast<double>(x[at]) - mean);
    }
}

// Batch norm's per-channel statistics from a channel's sum x and sum (x - mean)^2 over count
// elements: the normalisation y = x scale + shift, and the unbiased variance for the running
// estimate.
struct BatchNormStatistics {
    double mean, invstd, scale, shift, unbiased;
};
GCL_HOST_DEVICE inline BatchNormStatistics batch_norm_statistics(double sum, double square, double count, double gamma,
                                                                 double beta, double eps) {
    BatchNormStatistics s;
    s.mean = sum / count;
    s.invstd = 1.0 / sqrt(square / count + eps);
    s.scale = gamma * s.invstd;
    s.shift = beta - s.mean * s.scale;
    s.unbiased = square / (count - 1);
    return s;
}

// Batch norm's per-element maps: y = x scale + shift; the training gradient
// dx = scale (dy - mean_dy - xhat mean_dy_xhat) with xhat = (x - mean) invstd.
template <class T>
GCL_HOST_DEVICE inline T batch_norm_affine_item(T x, double scale, double shift) {
    return static_cast<T>(static_cast<double>(x) * scale + shift);
}
template <class T>
GCL_HOST_DEVICE inline T batch_norm_backward_item(T g, T x, double mean, double invstd, double scale, double mean_dy,
                                                  double mean_dy_xhat) {
    const double xhat = (static_cast<double>(x) - mean) * invstd;
    return static_cast<T>(scale * (static_cast<double>(g) - mean_dy - xhat * mean_dy_xhat));
}

}  // namespace gcl::backend::detail
