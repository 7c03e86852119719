#pragma once
// Softmax and log-softmax along one dimension (negative dims count from the back), computed
// stably (the maximum is subtracted first).
//
//   ops::softmax_forward(x, y.view(), -1);
//   ops::softmax_backward(dy, y, dx.view(), -1);       // y: the forward's output
//   ops::log_softmax_forward(x, y.view(), 1);
//   ops::log_softmax_backward(dy, y, dx.view(), 1);
//
// Element-wise in layout: y may be x itself, and dx may be dy or y itself.
#include "gcl/backend/cpu/softmax.hpp"
#include "gcl/ops/common.hpp"

namespace gcl::ops {

namespace detail {
template <class T, class Device>
DimSplit check_softmax_forward(std::string_view op, const ConstView<T, Device>& x, const TensorView<T, Device>& y,
                               int dim) {
    const int d = resolve_dim(op, x.shape(), dim);
    check_same_shape(op, x.shape(), y.shape(), "x", "y");
    require_contiguous(op, x, "x");
    require_contiguous(op, y, "y");
    require_disjoint_or_same(op, y, x, "y", "x");
    return split_at(x.shape(), d);
}

template <class T, class Device>
DimSplit check_softmax_backward(std::string_view op, const ConstView<T, Device>& dy, const ConstView<T, Device>& y,
                                const TensorView<T, Device>& dx, int dim) {
    const int d = resolve_dim(op, y.shape(), dim);
    check_same_shape(op, dy.shape(), y.shape(), "dy", "y");
    check_same_shape(op, dx.shape(), y.shape(), "dx", "y");
    require_contiguous(op, dy, "dy");
    require_contiguous(op, y, "y");
    require_contiguous(op, dx, "dx");
    require_disjoint_or_same(op, dx, dy, "dx", "dy");
    require_disjoint_or_same(op, dx, y, "dx", "y");
    return split_at(y.shape(), d);
}
}  // namespace detail

template <class T, class Device>
void softmax_forward(Input<T, Device> x, TensorView<T, Device> y, int dim) {
    const DimSplit s = detail::check_softmax_forward("ops::softmax_forward", x, y, dim);
    backend::Softmax<Device>::forward(x, y, s.outer, s.extent, s.inner, false);
}

template <class T, class Device>
void softmax_backward(Input<T, Device> dy, Input<T, Device> y, TensorView<T, Device> dx, int dim) {
    const DimSplit s = detail::check_softmax_backward("ops::softmax_backward", dy, y, dx, dim);
    backend::Softmax<Device>::backward(dy, y, dx, s.outer, s.extent, s.inner, false);
}

template <class T, class Device>
void log_softmax_forward(Input<T, Device> x, TensorView<T, Device> y, int dim) {
    const DimSplit s = detail::check_softmax_forward("ops::log_softmax_forward", x, y, dim);
    backend::Softmax<Device>::forward(x, y, s.outer, s.extent, s.inner, true);
}

template <class T, class Device>
void log_softmax_backward(Input<T, Device> dy, Input<T, Device> y, TensorView<T, Device> dx, int dim) {
    const DimSplit s = detail::check_softmax_backward("ops::log_softmax_backward", dy, y, dx, dim);
    backend::Softmax<Device>::backward(dy, y, dx, s.outer, s.extent, s.inner, true);
}

}  // namespace gcl::ops
