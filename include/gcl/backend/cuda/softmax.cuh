#pragma once
// CUDA softmax and log-softmax with the CPU family's interface (backend/cpu/softmax.hpp): one
// thread per line along the softmax dimension, running the CPU's per-line rule
// (backend/detail/softmax_items.hpp). The maximum, the order of the sums and every rounding to T
// are the CPU's; only CUDA's exp and log differ from the host's (by an ulp or two in double), so
// results agree with the CPU within rounding and a run repeats bit for bit. Along dimension 1
// of [N, C, H, W] (the segmentation losses) neighbouring threads read neighbouring pixels.
#include "gcl/backend/cuda/elementwise.cuh"
#include "gcl/backend/detail/reduce_items.hpp"
#include "gcl/backend/detail/softmax_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

namespace cuda_kernels {

template <class T>
struct SoftmaxLine {
    const T* x;
    T* y;
    index_t extent, inner;
    bool log;
    GCL_DEVICE void operator()(index_t line) const {
        detail::softmax_line(x, y, detail::line_first(line, extent, inner), inner, extent, log);
    }
};

template <class T>
struct SoftmaxBackwardLine {
    const T* dy;
    const T* y;
    T* dx;
    index_t extent, inner;
    bool log;
    GCL_DEVICE void operator()(index_t line) const {
        detail::softmax_backward_line(dy, y, dx, detail::line_first(line, extent, inner), inner, extent, log);
    }
};

}  // namespace cuda_kernels

template <>
struct Softmax<cuda> {
    // y = exp(x - max) / sum exp(x - max) along the middle dimension of [outer, extent, inner];
    // with `log`, y = x - max - log(sum exp(x - max)).
    template <class T>
    static void forward(ConstView<T, cuda> x, TensorView<T, cuda> y, index_t outer, index_t extent, index_t inner,
                        bool log) {
        cuda_detail::for_each_item(outer * inner, cuda_kernels::SoftmaxLine<T>{x.data(), y.data(), extent, inner, log});
    }

    // Given the forward's output y: softmax dx = y (dy - sum dy y); log-softmax
    // dx = dy - exp(y) sum dy.
    template <class T>
    static void backward(ConstView<T, cuda> dy, ConstView<T, cuda> y, TensorView<T, cuda> dx, index_t outer,
                         index_t extent, index_t inner, bool log) {
        cuda_detail::for_each_item(outer * inner, cuda_kernels::SoftmaxBackwardLine<T>{dy.data(), y.data(), dx.data(),
                                                                                        extent, inner, log});
    }
};

}  // namespace gcl::backend
