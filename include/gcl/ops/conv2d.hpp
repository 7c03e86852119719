#pragma once
// 2-d convolution (cross-correlation, as in PyTorch) with stride, padding and dilation.
//
//   x  [N, C, H, W]    input            w  [K, C, R, S]   weight       bias [K]
//   y  [N, K, OH, OW]  output, OH = (H + 2 padding - dilation (R - 1) - 1) / stride + 1
//
//   Shape ys = ops::conv2d_output_shape(x.shape(), w.shape(), params);
//   ops::conv2d_forward(x, w, bias, y.view(), params);
//   ops::conv2d_backward_data(dy, w, dx.view(), params);
//   ops::conv2d_backward_weight(dy, x, dw.view(), params, WriteMode::accumulate);
//   ops::conv2d_backward_bias(dy, db.view());
//   ops::conv2d_backward_stacked(dy_k, x, w, dx_k.view(), dws, params, WriteMode::accumulate);  // K passes at once
//
// A layer that runs backward passes after its forward pass can keep the forward operands in
// the backend's layout between them (oneDNN's blocked copies of x and w; nothing on the im2col
// path): one Conv2dOperandCache per layer, given to its forward and to its backward passes,
// which must see the same x and w (same buffers, unchanged). Results are the same bits as
// without it.
//   ops::Conv2dOperandCache<cpu> keep;
//   ops::conv2d_forward(x, w, bias, y.view(), params, keep);
//   ops::conv2d_backward(dy, x, w, dx.view(), dw.view(), params, WriteMode::accumulate, &keep);  // weight + data
//
// All views are contiguous; outputs must not overlap inputs.
#include <span>
#include <type_traits>

#include "gcl/backend/cpu/conv2d.hpp"
#include "gcl/ops/bias.hpp"
#include "gcl/ops/common.hpp"
#include "gcl/ops/window2d.hpp"

namespace gcl::ops {

template <class Device>
using Conv2dOperandCache = typename backend::Conv2d<Device>::OperandCache;

namespace detail {
// Throws unless `out` has the shape that input `in` and weight `w` give.
inline void check_conv2d_shapes(std::string_view op, const Shape& in, const Shape& w, const Shape& out,
                                const Conv2dParams& p, std::string_view in_name, std::string_view out_name) {
    const Shape expected = conv2d_output_shape(op, in, w, p);
    if (!(out == expected))
        fail(op, out_name, " is ", out, " but ", in_name, " ", in, " and weight ", w, " give ", expected);
}

template <class A, class B, class C, class Device>
void check_conv2d_views(std::string_view op, const TensorView<A, Device>& in, const TensorView<B, Device>& w,
                        const TensorView<C, Device>& out, std::string_view in_name, std::string_view w_name,
                        std::string_view out_name) {
    require_contiguous(op, in, in_name);
    require_contiguous(op, w, w_name);
    require_contiguous(op, out, out_name);
    require_disjoint(op, out, in, out_name, in_name);
    require_disjoint(op, out, w, out_name, w_name);
}
// A default-constructed output view (rank 0, no data) asks a backward op to skip that gradient.
template <class T, class Device>
bool skipped_gradient(const TensorView<T, Device>& v) {
    return v.rank() == 0 && v.data() == nullptr;
}
}  // namespace detail

// y = conv(x, w); y is overwritten.
template <class T, class Device>
void conv2d_forward(Input<T, Device> x, Input<T, Device> w, TensorView<T, Device> y, const Conv2dParams& params = {}) {
    constexpr std::string_view op = "ops::conv2d_forward";
    detail::check_conv2d_shapes(op, x.shape(), w.shape(), y.shape(), params, "x", "y");
    detail::check_conv2d_views(op, x, w, y, "x", "w", "y");
    backend::Conv2d<Device>::forward(x, w, y, params);
}

// The same, keeping x and w in `keep` for the backward passes (see the top of this file).
template <class T, class Device>
void conv2d_forward(Input<T, Device> x, Input<T, Device> w, TensorView<T, Device> y, const Conv2dParams& params,
                    Conv2dOperandCache<Device>& keep) {
    constexpr std::string_view op = "ops::conv2d_forward";
    detail::check_conv2d_shapes(op, x.shape(), w.shape(), y.shape(), params, "x", "y");
    detail::check_conv2d_views(op, x, w, y, "x", "w", "y");
    backend::Conv2d<Device>::forward(x, w, y, params, &keep);
}

// y = conv(x, w) + bias (bias [K] added to every output channel).
template <class T, class Device>
void conv2d_forward(Input<T, Device> x, Input<T, Device> w, Input<T, Device> bias, TensorView<T, Device> y,
                    const Conv2dParams& params = {}) {
    detail::check_conv2d_shapes("ops::conv2d_forward", x.shape(), w.shape(), y.shape(), params, "x", "y");
    detail::check_bias("ops::conv2d_forward", bias, y, 1, "bias", "y");
    conv2d_forward(x, w, y, params);
    backend::Bias<Device>::add(bias, y, y.dim(0), y.dim(1), y.dim(2) * y.dim(3));
}

template <class T, class Device>
void conv2d_forward(Input<T, Device> x, Input<T, Device> w, Input<T, Device> bias, TensorView<T, Device> y,
                    const Conv2dParams& params, Conv2dOperandCache<Device>& keep) {
    detail::check_conv2d_shapes("ops::conv2d_forward", x.shape(), w.shape(), y.shape(), params, "x", "y");
    detail::check_bias("ops::conv2d_forward", bias, y, 1, "bias", "y");
    conv2d_forward(x, w, y, params, keep);
    backend::Bias<Device>::add(bias, y, y.dim(0), y.dim(1), y.dim(2) * y.dim(3));
}

// dx = d(sum dy * y)/dx: the gradient with respect to the input; dx is overwritten. dx's shape
// says which input shape is meant (with stride > 1 several give the same output shape).
template <class T, class Device>
void conv2d_backward_data(Input<T, Device> dy, Input<T, Device> w, TensorView<T, Device> dx,
                          const Conv2dParams& params = {}) {
    constexpr std::string_view op = "ops::conv2d_backward_data";
    detail::check_conv2d_shapes(op, dx.shape(), w.shape(), dy.shape(), params, "dx", "dy");
    detail::check_conv2d_views(op, dy, w, dx, "dy", "w", "dx");
    backend::Conv2d<Device>::backward_data(dy, w, dx, params);
}

// dw = (or +=) d(sum dy * y)/dw, summed over the batch.
template <class T, class Device>
void conv2d_backward_weight(Input<T, Device> dy, Input<T, Device> x, TensorView<T, Device> dw,
                            const Conv2dParams& params = {}, WriteMode mode = WriteMode::overwrite) {
    constexpr std::string_view op = "ops::conv2d_backward_weight";
    detail::check_conv2d_shapes(op, x.shape(), dw.shape(), dy.shape(), params, "x", "dy");
    detail::check_conv2d_views(op, x, dy, dw, "x", "dy", "dw");
    backend::Conv2d<Device>::backward_weight(dy, x, dw, params, mode == WriteMode::accumulate);
}

// One backward pass: dw = (or +=) the weight gradient, then dx = the data gradient (equal bit
// for bit to conv2d_backward_weight then conv2d_backward_data). x and w are the forward's; with
// `keep` (the cache given to that forward) their kept copies are read. dx may be a default
// (empty) view: the data gradient is then skipped, as for the images entering a network.
template <class T, class Device>
void conv2d_backward(Input<T, Device> dy, Input<T, Device> x, Input<T, Device> w, TensorView<T, Device> dx,
                     TensorView<T, Device> dw, const Conv2dParams& params, WriteMode mode,
                     Conv2dOperandCache<Device>* keep = nullptr) {
    constexpr std::string_view op = "ops::conv2d_backward";
    detail::check_conv2d_shapes(op, x.shape(), w.shape(), dy.shape(), params, "x", "dy");
    check(dw.shape() == w.shape(), op, "dw is ", dw.shape(), " but the weight is ", w.shape());
    detail::check_conv2d_views(op, x, dy, dw, "x", "dy", "dw");
    if (!detail::skipped_gradient(dx)) {
        check(dx.shape() == x.shape(), op, "dx is ", dx.shape(), " but x is ", x.shape());
        detail::check_conv2d_views(op, dy, w, dx, "dy", "w", "dx");
        require_disjoint(op, dx, x, "dx", "x");
        require_disjoint(op, dw, dx, "dw", "dx");
    }
    backend::Conv2d<Device>::backward(dy, x, w, dx, dw, params, mode == WriteMode::accumulate, keep);
}

// K backward passes after one forward, at once: dy [K N, F, OH, OW] holds pass k's output gradient
// in images k N .. k N + N - 1 of the stack (x [N, C, H, W]); dx [K N, C, H, W] receives the K
// input gradients (overwritten; a default view skips them) and dw[k] [F, C, R, S] pass k's weight
// gradient (= or +=).
template <class T, class Device>
void conv2d_backward_stacked(Input<T, Device> dy, Input<T, Device> x, Input<T, Device> w, TensorView<T, Device> dx,
                             std::type_identity_t<std::span<const TensorView<T, Device>>> dw,
                             const Conv2dParams& params = {},
                             WriteMode mode = WriteMode::overwrite, Conv2dOperandCache<Device>* keep = nullptr) {
    constexpr std::string_view op = "ops::conv2d_backward_stacked";
    const auto K = static_cast<index_t>(dw.size());
    check(K >= 1, op, "needs at least one weight-gradient target");
    check_rank(op, x.shape(), 4, "x");
    check_rank(op, dy.shape(), 4, "dy");
    Shape one_pass = dy.shape();
    check(dy.dim(0) == K * x.dim(0), op, "dy ", dy.shape(), " must stack K = ", K, " gradients of x's batch ", x.dim(0));
    one_pass[0] = x.dim(0);
    detail::check_conv2d_shapes(op, x.shape(), w.shape(), one_pass, params, "x", "one pass of dy");
    if (!detail::skipped_gradient(dx)) {
        Shape dx_expected = x.shape();
        dx_expected[0] = K * x.dim(0);
        check(dx.shape() == dx_expected, op, "dx is ", dx.shape(), " but K = ", K, " passes over x ", x.shape(),
              " need ", dx_expected);
        detail::check_conv2d_views(op, dy, w, dx, "dy", "w", "dx");
        require_disjoint(op, dx, x, "dx", "x");
    }
    for (index_t k = 0; k < K; ++k) {
        check(dw[k].shape() == w.shape(), op, "dw[", k, "] is ", dw[k].shape(), " but the weight is ", w.shape());
        detail::check_conv2d_views(op, x, dy, dw[k], "x", "dy", "dw");
    }
    backend::Conv2d<Device>::backward_stacked(dy, x, w, dx, dw, params, mode == WriteMode::accumulate, keep);
}

// db = (or +=) the sum of dy [N, K, OH, OW] over N, OH and OW.
template <class T, class Device>
void conv2d_backward_bias(Input<T, Device> dy, TensorView<T, Device> db, WriteMode mode = WriteMode::overwrite) {
    check_rank("ops::conv2d_backward_bias", dy.shape(), 4, "dy");
    detail::bias_backward("ops::conv2d_backward_bias", dy, db, 1, mode);
}

}  // namespace gcl::ops
