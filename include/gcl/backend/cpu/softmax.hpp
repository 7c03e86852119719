#pragma once
// CPU softmax and log-softmax, one line along the softmax dimension per task, with the per-line
// rules of backend/detail/softmax_items.hpp (the CUDA kernels run the same rules): the maximum
// is subtracted before exponentiating (no overflow) and sums are accumulated in double.
#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/detail/softmax_items.hpp"
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
            detail::softmax_line(in, out, first, stride, extent, log);
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
            detail::softmax_backward_line(g, out, res, first, stride, extent, log);
        });
    }
};

}  // namespace gcl::backend
