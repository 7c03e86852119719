#pragma once
// CPU convolution: im2col + Eigen GEMM, one image at a time.
//
// For image n, col_n is the [C*R*S, OH*OW] matrix whose column (oh, ow) holds the input values
// under the kernel at output position (oh, ow) (zero where the window reaches into the padding):
//   forward:          y_n  = W [K, C*R*S] * col_n
//   backward data:    dx_n = col2im(W^T * dy_n)            (col2im is the adjoint of im2col)
//   backward weight:  dW  += dy_n * col_n^T
// A 1x1 convolution with unit stride and no padding needs no im2col: col_n is x_n itself.
// Images run in parallel (each thread has its own col buffer) when there are at least as many
// images as threads; otherwise images run in turn and Eigen parallelises each product. The col
// buffers and partial sums are per-thread scratch that persists between calls (workspace.hpp).
//
// backward_stacked runs K backward passes that share one forward (x and w) at once: per image,
// im2col once for the K weight gradients, and one data-gradient product W^T [dy_1 .. dy_K] with
// K times the columns.
//
// With GCL_CPU_CONV=onednn (CMake), float convolutions run on oneDNN instead
// (onednn_conv2d.hpp); double and portable builds keep im2col.
#include <Eigen/Core>
#include <algorithm>
#include <span>
#include <type_traits>
#include <vector>

#include "gcl/backend/cpu/conv_geometry.hpp"
#include "gcl/backend/cpu/onednn_conv2d.hpp"
#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/cpu/workspace.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/core/window2d.hpp"

namespace gcl::backend {

namespace cpu_detail {

template <class T>
using MatrixMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

// Output positions o in [lo, hi) whose input coordinate o * stride + offset lies in [0, in).
inline void valid_outputs(index_t in, index_t out, index_t stride, index_t offset, index_t& lo, index_t& hi) {
    lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    hi = (in - 1 - offset) < 0 ? 0 : (in - 1 - offset) / stride + 1;
    lo = std::min(lo, out);
    hi = std::clamp(hi, lo, out);
}

template <class T>
void im2col(const T* x, const ConvGeometry& g, T* col) {
    const index_t cols = g.col_cols();
    for (index_t c = 0; c < g.channels; ++c)
        for (index_t r = 0; r < g.kernel_h; ++r)
            for (index_t s = 0; s < g.kernel_w; ++s) {
                T* row = col + ((c * g.kernel_h + r) * g.kernel_w + s) * cols;
                const index_t off_h = r * g.dilation_h - g.pad_h;
                const index_t off_w = s * g.dilation_w - g.pad_w;
                index_t oh_lo, oh_hi, ow_lo, ow_hi;
                valid_outputs(g.height, g.out_h, g.stride_h, off_h, oh_lo, oh_hi);
                valid_outputs(g.width, g.out_w, g.stride_w, off_w, ow_lo, ow_hi);
                for (index_t oh = 0; oh < g.out_h; ++oh) {
                    T* dst = row + oh * g.out_w;
                    if (oh < oh_lo || oh >= oh_hi) {
                        std::fill(dst, dst + g.out_w, T(0));
                        continue;
                    }
                    const T* src = x + (c * g.height + oh * g.stride_h + off_h) * g.width + off_w;
                    std::fill(dst, dst + ow_lo, T(0));
                    if (g.stride_w == 1)
                        std::copy(src + ow_lo, src + ow_hi, dst + ow_lo);
                    else
                        for (index_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow * g.stride_w];
                    std::fill(dst + ow_hi, dst + g.out_w, T(0));
                }
            }
}

// dx += the adjoint of im2col applied to col, whose rows start `row_stride` elements apart
// (col_cols() for a col buffer of one image).
template <class T>
void col2im_add(const T* col, const ConvGeometry& g, T* dx, index_t row_stride) {
    for (index_t c = 0; c < g.channels; ++c)
        for (index_t r = 0; r < g.kernel_h; ++r)
            for (index_t s = 0; s < g.kernel_w; ++s) {
                const T* row = col + ((c * g.kernel_h + r) * g.kernel_w + s) * row_stride;
                const index_t off_h = r * g.dilation_h - g.pad_h;
                const index_t off_w = s * g.dilation_w - g.pad_w;
                index_t oh_lo, oh_hi, ow_lo, ow_hi;
                valid_outputs(g.height, g.out_h, g.stride_h, off_h, oh_lo, oh_hi);
                valid_outputs(g.width, g.out_w, g.stride_w, off_w, ow_lo, ow_hi);
                for (index_t oh = oh_lo; oh < oh_hi; ++oh) {
                    const T* src = row + oh * g.out_w;
                    T* dst = dx + (c * g.height + oh * g.stride_h + off_h) * g.width + off_w;
                    for (index_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow * g.stride_w] += src[ow];
                }
            }
}

// Whether to run the images of a batch on separate threads (see the header comment).
inline bool images_in_parallel(index_t batch, index_t work_per_image) {
    return batch >= max_threads() && worth_parallel(batch, work_per_image);
}

// Calls body(n, scratch) for every image n, with `scratch_size` elements of the thread's col
// scratch (not zeroed).
template <class T, class Body>
void for_each_image(index_t batch, index_t scratch_size, bool parallel, Body&& body) {
    if (parallel) {
#pragma omp parallel
        {
            T* scratch = thread_scratch<T>(scratch_size, ScratchSlot::columns);
#pragma omp for schedule(dynamic, 1)
            for (index_t n = 0; n < batch; ++n) body(n, scratch);
        }
    } else {
        T* scratch = thread_scratch<T>(scratch_size, ScratchSlot::columns);
        for (index_t n = 0; n < batch; ++n) body(n, scratch);
    }
}

// Calls body(n, col, targets) for every image n, where `targets` are K weight-gradient
// accumulators of `weight_size` elements: the K views `dw` themselves when images run in turn;
// when they run in parallel, one partial sum per block of images (up to four blocks per thread,
// fixed by the batch and the thread count, handed to whichever thread is free), added into dw
// afterwards in block order, so the result depends only on the data and the thread count.
template <class T, class Body>
void for_each_image_into(index_t batch, index_t col_size, bool parallel, std::span<T* const> dw, index_t weight_size,
                         Body&& body) {
    const auto K = static_cast<index_t>(dw.size());
    if (!parallel) {
        T* col = thread_scratch<T>(col_size, ScratchSlot::columns);
        for (index_t n = 0; n < batch; ++n) body(n, col, dw.data());
        return;
    }
    const int threads = static_cast<int>(std::min<index_t>(max_threads(), batch));
    const index_t blocks = std::min<index_t>(batch, 4 * threads);
    T* partial = thread_scratch<T>(blocks * K * weight_size, ScratchSlot::partial_sums);
    std::fill(partial, partial + blocks * K * weight_size, T(0));
#pragma omp parallel num_threads(threads)
    {
        T* col = thread_scratch<T>(col_size, ScratchSlot::columns);
        std::vector<T*> mine(static_cast<std::size_t>(K));
#pragma omp for schedule(dynamic, 1)
        for (index_t block = 0; block < blocks; ++block) {
            for (index_t k = 0; k < K; ++k) mine[k] = partial + (block * K + k) * weight_size;
            for (index_t n = block * batch / blocks; n < (block + 1) * batch / blocks; ++n) body(n, col, mine.data());
        }
    }
    for (index_t b = 0; b < blocks; ++b)
        for (index_t k = 0; k < K; ++k) {
            const T* from = partial + (b * K + k) * weight_size;
            T* to = dw[k];
#pragma omp simd
            for (index_t i = 0; i < weight_size; ++i) to[i] += from[i];
        }
}

}  // namespace cpu_detail

// The im2col path for every element type; Conv2d<cpu> below runs it unless oneDNN takes float.
struct Im2colConv2d {
    // y [N, K, OH, OW] = conv(x [N, C, H, W], w [K, C, R, S]); y is overwritten.
    template <class T>
    static void forward(ConstView<T, cpu> x, ConstView<T, cpu> w, TensorView<T, cpu> y, const Conv2dParams& p) {
        using namespace cpu_detail;
        const ConvGeometry g = conv_geometry(x.shape(), w.shape(), y.shape(), p);
        const ConstMatrixMap<T> W(w.data(), g.filters, g.col_rows());
        const bool pointwise = g.pointwise();
        const bool parallel = images_in_parallel(g.batch, g.output_size() * g.col_rows());
        for_each_image<T>(g.batch, pointwise ? 0 : g.col_rows() * g.col_cols(), parallel, [&](index_t n, T* col) {
            const T* xn = x.data() + n * g.input_size();
            MatrixMap<T> Y(y.data() + n * g.output_size(), g.filters, g.col_cols());
            if (!pointwise) im2col(xn, g, col);
            Y.noalias() = W * ConstMatrixMap<T>(pointwise ? xn : col, g.col_rows(), g.col_cols());
        });
    }

    // dx [N, C, H, W] = the adjoint of forward applied to dy [N, K, OH, OW]; dx is overwritten.
    template <class T>
    static void backward_data(ConstView<T, cpu> dy, ConstView<T, cpu> w, TensorView<T, cpu> dx,
                              const Conv2dParams& p) {
        using namespace cpu_detail;
        const ConvGeometry g = conv_geometry(dx.shape(), w.shape(), dy.shape(), p);
        const ConstMatrixMap<T> W(w.data(), g.filters, g.col_rows());
        const bool pointwise = g.pointwise();
        const bool parallel = images_in_parallel(g.batch, g.output_size() * g.col_rows());
        for_each_image<T>(g.batch, pointwise ? 0 : g.col_rows() * g.col_cols(), parallel, [&](index_t n, T* col) {
            const ConstMatrixMap<T> dY(dy.data() + n * g.output_size(), g.filters, g.col_cols());
            T* dxn = dx.data() + n * g.input_size();
            if (pointwise) {
                MatrixMap<T>(dxn, g.col_rows(), g.col_cols()).noalias() = W.transpose() * dY;
                return;
            }
            MatrixMap<T>(col, g.col_rows(), g.col_cols()).noalias() = W.transpose() * dY;
            std::fill(dxn, dxn + g.input_size(), T(0));
            col2im_add(col, g, dxn, g.col_cols());
        });
    }

    // dw [K, C, R, S] (+)= sum over images of dy_n col_n^T.
    template <class T>
    static void backward_weight(ConstView<T, cpu> dy, ConstView<T, cpu> x, TensorView<T, cpu> dw,
                                const Conv2dParams& p, bool accumulate) {
        using namespace cpu_detail;
        const ConvGeometry g = conv_geometry(x.shape(), dw.shape(), dy.shape(), p);
        if (!accumulate) MatrixMap<T>(dw.data(), g.filters, g.col_rows()).setZero();
        const bool pointwise = g.pointwise();
        T* const targets[1] = {dw.data()};
        for_each_image_into<T>(g.batch, pointwise ? 0 : g.col_rows() * g.col_cols(),
                               images_in_parallel(g.batch, g.output_size() * g.col_rows()), std::span<T* const>(targets),
                               g.filters * g.col_rows(), [&](index_t n, T* col, T* const* into) {
                                   const T* xn = x.data() + n * g.input_size();
                                   if (!pointwise) im2col(xn, g, col);
                                   add_weight_gradient(g, dy.data() + n * g.output_size(), pointwise ? xn : col, into[0]);
                               });
    }

    // K backward passes after one forward, at once. dy [K N, F, OH, OW] holds pass k's gradient in
    // images k N .. k N + N - 1 (x is [N, C, H, W]); dx [K N, C, H, W] receives the K data
    // gradients (overwritten; a view without data skips them) and dw[k] [F, C, R, S] (+)= pass k's
    // weight gradient. The weight
    // gradients equal K calls of backward_weight bit for bit; the data gradients equal K calls of
    // backward_data up to the summation order inside the product (one product with K times the
    // columns).
    template <class T>
    static void backward_stacked(ConstView<T, cpu> dy, ConstView<T, cpu> x, ConstView<T, cpu> w, TensorView<T, cpu> dx,
                                 std::span<const TensorView<T, cpu>> dw, const Conv2dParams& p, bool accumulate) {
        using namespace cpu_detail;
        const index_t K = static_cast<index_t>(dw.size());
        Shape one_pass = dy.shape();
        one_pass[0] = x.dim(0);
        const ConvGeometry g = conv_geometry(x.shape(), w.shape(), one_pass, p);
        const index_t cols = g.col_cols(), rows = g.col_rows(), N = g.batch;
        std::vector<T*> targets(static_cast<std::size_t>(K));
        for (index_t k = 0; k < K; ++k) {
            targets[k] = dw[k].data();
            if (!accumulate) MatrixMap<T>(targets[k], g.filters, rows).setZero();
        }
        const ConstMatrixMap<T> W(w.data(), g.filters, rows);
        const bool pointwise = g.pointwise();
        for_each_image_into<T>(
            N, pointwise ? 0 : rows * cols, images_in_parallel(N, K * g.output_size() * rows),
            std::span<T* const>(targets), g.filters * rows, [&](index_t n, T* col, T* const* into) {
                const T* xn = x.data() + n * g.input_size();
                if (!pointwise) im2col(xn, g, col);
                for (index_t k = 0; k < K; ++k)
                    add_weight_gradient(g, dy.data() + (k * N + n) * g.output_size(), pointwise ? xn : col, into[k]);
                if (!dx.data()) return;  // no data gradients wanted
                // [dy_1n .. dy_Kn] as one [F, K cols] matrix, then W^T times it.
                T* stacked = thread_scratch<T>(g.filters * K * cols, ScratchSlot::gradient_columns);
                for (index_t f = 0; f < g.filters; ++f)
                    for (index_t k = 0; k < K; ++k) {
                        const T* from = dy.data() + (k * N + n) * g.output_size() + f * cols;
                        std::copy(from, from + cols, stacked + (f * K + k) * cols);
                    }
                T* dcol = thread_scratch<T>(rows * K * cols, ScratchSlot::data_columns);
                MatrixMap<T>(dcol, rows, K * cols).noalias() =
                    W.transpose() * ConstMatrixMap<T>(stacked, g.filters, K * cols);
                for (index_t k = 0; k < K; ++k) {
                    T* dxn = dx.data() + (k * N + n) * g.input_size();
                    if (pointwise) {
                        for (index_t r = 0; r < rows; ++r)
                            std::copy(dcol + r * K * cols + k * cols, dcol + r * K * cols + (k + 1) * cols, dxn + r * cols);
                    } else {
                        std::fill(dxn, dxn + g.input_size(), T(0));
                        col2im_add(dcol + k * cols, g, dxn, K * cols);
                    }
                }
            });
    }

private:
    // target [F, C R S] += dy_n [F, OH OW] col_n^T.
    template <class T>
    static void add_weight_gradient(const cpu_detail::ConvGeometry& g, const T* dyn, const T* col, T* target) {
        using namespace cpu_detail;
        MatrixMap<T>(target, g.filters, g.col_rows()).noalias() +=
            ConstMatrixMap<T>(dyn, g.filters, g.col_cols()) * ConstMatrixMap<T>(col, g.col_rows(), g.col_cols()).transpose();
    }
};

// The CPU kernel family: oneDNN for float where it is configured, im2col otherwise.
template <>
struct Conv2d<cpu> {
    // A layer's forward operands kept for its backward passes (onednn::OperandCache; the
    // im2col path keeps nothing in it).
    using OperandCache = onednn::OperandCache;

    template <class T>
    static void forward(ConstView<T, cpu> x, ConstView<T, cpu> w, TensorView<T, cpu> y, const Conv2dParams& p,
                        OperandCache* keep = nullptr) {
        if constexpr (std::is_same_v<T, float>)
            if (onednn::forward(cpu_detail::conv_geometry(x.shape(), w.shape(), y.shape(), p), x.data(), w.data(),
                                y.data(), keep))
                return;
        Im2colConv2d::forward(x, w, y, p);
    }

    template <class T>
    static void backward_data(ConstView<T, cpu> dy, ConstView<T, cpu> w, TensorView<T, cpu> dx,
                              const Conv2dParams& p) {
        if constexpr (std::is_same_v<T, float>)
            if (onednn::backward_data(cpu_detail::conv_geometry(dx.shape(), w.shape(), dy.shape(), p), dy.data(),
                                      w.data(), dx.data()))
                return;
        Im2colConv2d::backward_data(dy, w, dx, p);
    }

    template <class T>
    static void backward_weight(ConstView<T, cpu> dy, ConstView<T, cpu> x, TensorView<T, cpu> dw,
                                const Conv2dParams& p, bool accumulate) {
        if constexpr (std::is_same_v<T, float>)
            if (onednn::backward_weight(cpu_detail::conv_geometry(x.shape(), dw.shape(), dy.shape(), p), dy.data(),
                                        x.data(), dw.data(), accumulate))
                return;
        Im2colConv2d::backward_weight(dy, x, dw, p, accumulate);
    }

    // One backward pass: the weight gradient (dw = or +=), then the data gradient (dx =); equal
    // bit for bit to backward_weight followed by backward_data, with or without `keep`. A dx
    // without data skips the data gradient.
    template <class T>
    static void backward(ConstView<T, cpu> dy, ConstView<T, cpu> x, ConstView<T, cpu> w, TensorView<T, cpu> dx,
                         TensorView<T, cpu> dw, const Conv2dParams& p, bool accumulate,
                         OperandCache* keep = nullptr) {
        if constexpr (std::is_same_v<T, float>)
            if (onednn::backward(cpu_detail::conv_geometry(x.shape(), w.shape(), dy.shape(), p), dy.data(), x.data(),
                                 w.data(), dx.data(), dw.data(), accumulate, keep))
                return;
        Im2colConv2d::backward_weight(dy, x, dw, p, accumulate);
        if (dx.data()) Im2colConv2d::backward_data(dy, w, dx, p);
    }

    // K backward passes after one forward (see Im2colConv2d::backward_stacked). With oneDNN they
    // are K passes of its primitives, equal bit for bit to K calls of backward_data and
    // backward_weight.
    template <class T>
    static void backward_stacked(ConstView<T, cpu> dy, ConstView<T, cpu> x, ConstView<T, cpu> w, TensorView<T, cpu> dx,
                                 std::span<const TensorView<T, cpu>> dw, const Conv2dParams& p, bool accumulate,
                                 OperandCache* keep = nullptr) {
        if constexpr (std::is_same_v<T, float>) {
            Shape one_pass = dy.shape();
            one_pass[0] = x.dim(0);
            const cpu_detail::ConvGeometry g = cpu_detail::conv_geometry(x.shape(), w.shape(), one_pass, p);
            const index_t dy_size = one_pass.numel(), dx_size = x.shape().numel();
            bool ran = true;
            for (std::size_t k = 0; k < dw.size() && ran; ++k) {
                const auto kk = static_cast<index_t>(k);
                ran = onednn::backward(g, dy.data() + kk * dy_size, x.data(), w.data(),
                                       dx.data() ? dx.data() + kk * dx_size : nullptr, dw[k].data(), accumulate, keep);
            }
            if (ran) return;  // the first call tells: oneDNN takes all K passes or none
        }
        Im2colConv2d::backward_stacked(dy, x, w, dx, dw, p, accumulate);
    }
};

}  // namespace gcl::backend
