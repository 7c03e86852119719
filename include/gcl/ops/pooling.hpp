#pragma once
// Pooling over the spatial dimensions of x [N, C, H, W].
//
//   Max pooling (default window 2x2, stride 2) with the position of every maximum:
//     Shape ys = ops::max_pool2d_output_shape(x.shape(), params);
//     Tensor<index_t> indices(ys);
//     ops::max_pool2d_forward(x, y.view(), indices.view(), params);
//     ops::max_pool2d_backward(dy, indices, dx.view(), params);
//   Global average pooling to y [N, C] (or [N, C, 1, 1]):
//     ops::global_avg_pool2d_forward(x, y.view());
//     ops::global_avg_pool2d_backward(dy, dx.view());
//
// Outputs are overwritten and must not overlap inputs.
#include "gcl/backend/cpu/pooling.hpp"
#include "gcl/ops/common.hpp"
#include "gcl/ops/window2d.hpp"

namespace gcl::ops {

template <class T, class Device>
void max_pool2d_forward(Input<T, Device> x, TensorView<T, Device> y, TensorView<index_t, Device> indices,
                        const Pool2dParams& params = {}) {
    constexpr std::string_view op = "ops::max_pool2d_forward";
    const Shape expected = detail::max_pool2d_output_shape(op, x.shape(), params);
    if (!(y.shape() == expected)) fail(op, "y is ", y.shape(), " but x ", x.shape(), " gives ", expected);
    check_same_shape(op, indices.shape(), y.shape(), "indices", "y");
    require_contiguous(op, x, "x");
    require_contiguous(op, y, "y");
    require_contiguous(op, indices, "indices");
    require_disjoint(op, y, x, "y", "x");
    require_disjoint(op, indices, x, "indices", "x");
    require_disjoint(op, indices, y, "indices", "y");
    backend::Pooling<Device>::max_pool2d_forward(x, y, indices, params);
}

// dx = 0 except at the maxima, which receive dy (summed where windows overlap). Throws when an
// index lies outside its plane.
template <class T, class Device>
void max_pool2d_backward(Input<T, Device> dy, Input<index_t, Device> indices, TensorView<T, Device> dx,
                         const Pool2dParams& params = {}) {
    constexpr std::string_view op = "ops::max_pool2d_backward";
    const Shape expected = detail::max_pool2d_output_shape(op, dx.shape(), params);
    if (!(dy.shape() == expected)) fail(op, "dy is ", dy.shape(), " but dx ", dx.shape(), " gives ", expected);
    check_same_shape(op, indices.shape(), dy.shape(), "indices", "dy");
    require_contiguous(op, dy, "dy");
    require_contiguous(op, indices, "indices");
    require_contiguous(op, dx, "dx");
    require_disjoint(op, dx, dy, "dx", "dy");
    require_disjoint(op, dx, indices, "dx", "indices");
    backend::Pooling<Device>::max_pool2d_backward(dy, indices, dx);
}

namespace detail {
template <class A, class B, class Device>
void check_global_pool(std::string_view op, const TensorView<A, Device>& x, const TensorView<B, Device>& y,
                       std::string_view x_name, std::string_view y_name) {
    if (x.rank() != 4) fail(op, x_name, " must have shape [N, C, H, W], got ", x.shape());
    const bool flat = y.rank() == 2 && y.dim(0) == x.dim(0) && y.dim(1) == x.dim(1);
    const bool kept = y.rank() == 4 && y.dim(0) == x.dim(0) && y.dim(1) == x.dim(1) && y.dim(2) == 1 && y.dim(3) == 1;
    if (!flat && !kept)
        fail(op, y_name, " must have shape [", x.dim(0), ", ", x.dim(1), "] or [", x.dim(0), ", ", x.dim(1),
             ", 1, 1] for ", x_name, " of shape ", x.shape(), ", got ", y.shape());
    if (x.dim(2) * x.dim(3) == 0) fail(op, x_name, " of shape ", x.shape(), " has no spatial elements to average");
    require_contiguous(op, x, x_name);
    require_contiguous(op, y, y_name);
}
}  // namespace detail

// y[n, c] = mean over h, w of x[n, c, h, w].
template <class T, class Device>
void global_avg_pool2d_forward(Input<T, Device> x, TensorView<T, Device> y) {
    constexpr std::string_view op = "ops::global_avg_pool2d_forward";
    detail::check_global_pool(op, x, y, "x", "y");
    require_disjoint(op, y, x, "y", "x");
    backend::Pooling<Device>::global_avg_pool_forward(x, y, x.dim(0) * x.dim(1), x.dim(2) * x.dim(3));
}

// dx[n, c, h, w] = dy[n, c] / (H W).
template <class T, class Device>
void global_avg_pool2d_backward(Input<T, Device> dy, TensorView<T, Device> dx) {
    constexpr std::string_view op = "ops::global_avg_pool2d_backward";
    detail::check_global_pool(op, dx, dy, "dx", "dy");
    require_disjoint(op, dx, dy, "dx", "dy");
    backend::Pooling<Device>::global_avg_pool_backward(dy, dx, dx.dim(0) * dx.dim(1), dx.dim(2) * dx.dim(3));
}

}  // namespace gcl::ops
