#pragma once
// CPU softmax and log-softmax, one line along the softmax dimension per task. The maximum is
// subtracted before exponentiating (no overflow) and sums are accumulated in double.
#include <algorithm>
#include <cmath>

#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct Softmax<cpu> {
    // y = exp(x - max) / sum exp(x - max) along the middle dimension of [outer, extent, inner];
    // with `log`, y = x - max - log(sum exp(x - max)).
    template <class T>
    static void forward(ConstView<T, cpu> x, TensorView<T, cpu> y, index_t outer, index_t extent, index_t inner,
                        bool log) {
        const T* in = x.data();
        T* out = y.data();
        cpu_detail::for_each_line(outer, extent, inner, [&](index_t first, index_t stride) {
            double top = -INFINITY;
            for (index_t k = 0; k < extent; ++k) {
                const double v = static_cast<double>(in[first + k * stride]);
                top = (v > top || std::isnan(v)) ? v : top;
            }
            double sum = 0;
            if (log) {
                for (index_t k = 0; k < extent; ++k) sum += std::exp(static_cast<double>(in[first + k * stride]) - top);
                const double shift = top + std::log(sum);
                for (index_t k = 0; k < extent; ++k) {
                    const index_t at = first + k * stride;
                    out[at] = static_cast<T>(static_cast<double>(in[at]) - shift);
                }
                return;
            }
            for (index_t k = 0; k < extent; ++k) {
                const index_t at = first + k * stride;
                const double e = std::exp(static_cast<double>(in[at]) - top);
                sum += e;
                out[at] = static_cast<T>(e);
            }
            for (index_t k = 0; k < extent; ++k) {
                const index_t at = first + k * stride;
                out[at] = static_cast<T>(static_cast<double>(out[at]) / sum);
            }
        });
    }

    // Given the forward's output y: softmax dx = y (dy - sum dy y); log-softmax
    // dx = dy - exp(y) sum dy.
    template <class T>
    static void backward(ConstView<T, cpu> dy, ConstView<T, cpu> y, TensorView<T, cpu> dx, index_t outer,
                         index_t extent, index_t inner, bool log) {
        const T* g = dy.data();
        const T* out = y.data();
        T* res = dx.data();
        cpu_detail::for_each_line(outer, extent, inner, [&](index_t first, index_t stride) {
            double sum = 0;
            for (index_t k = 0; k < extent; ++k) {
                const index_t at = first + k * stride;
                sum += log ? static_cast<double>(g[at]) : static_cast<double>(g[at]) * static_cast<double>(out[at]);
            }
            for (index_t k = 0; k < extent; ++k) {
                const index_t at = first + k * stride;
                const double gy = static_cast<double>(g[at]), yy = static_cast<double>(out[at]);
                res[at] = static_cast<T>(log ? gy - std::exp(yy) * sum : yy * (gy - sum));
            }
        });
    }
};

}  // namespace gcl::backend
