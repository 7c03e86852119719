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
// images as threads; otherwise images run in turn and Eigen parallelises each product.
#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/ops/window2d.hpp"

namespace gcl::backend {

namespace cpu_detail {

template <class T>
using MatrixMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

struct ConvGeometry {
    index_t batch, channels, height, width;  // input
    index_t filters, kernel_h, kernel_w;     // weight [filters, channels, kernel_h, kernel_w]
    index_t out_h, out_w;                    // output
    index_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;

    index_t col_rows() const { return channels * kernel_h * kernel_w; }
    index_t col_cols() const { return out_h * out_w; }
    index_t input_size() const { return channels * height * width; }
    index_t output_size() const { return filters * out_h * out_w; }
    // col_n is the input image itself.
    bool pointwise() const {
        return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0 &&
               out_h == height && out_w == width;
    }
};

inline ConvGeometry conv_geometry(const Shape& x, const Shape& w, const Shape& y, const ops::Conv2dParams& p) {
    return ConvGeometry{x[0],        x[1],        x[2],       x[3],       w[0],       w[2],
                        w[3],        y[2],        y[3],       p.stride[0], p.stride[1], p.padding[0],
                        p.padding[1], p.dilation[0], p.dilation[1]};
}

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

// dx += the adjoint of im2col applied to col.
template <class T>
void col2im_add(const T* col, const ConvGeometry& g, T* dx) {
    const index_t cols = g.col_cols();
    for (index_t c = 0; c < g.channels; ++c)
        for (index_t r = 0; r < g.kernel_h; ++r)
            for (index_t s = 0; s < g.kernel_w; ++s) {
                const T* row = col + ((c * g.kernel_h + r) * g.kernel_w + s) * cols;
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

// Calls body(n, scratch) for every image n, with `scratch_size` elements of scratch per thread.
template <class T, class Body>
void for_each_image(index_t batch, index_t scratch_size, bool parallel, Body&& body) {
    if (parallel) {
#pragma omp parallel
        {
            std::vector<T> scratch(static_cast<std::size_t>(scratch_size));
#pragma omp for schedule(static)
            for (index_t n = 0; n < batch; ++n) body(n, scratch.data());
        }
    } else {
        std::vector<T> scratch(static_cast<std::size_t>(scratch_size));
        for (index_t n = 0; n < batch; ++n) body(n, scratch.data());
    }
}

}  // namespace cpu_detail

template <>
struct Conv2d<cpu> {
    // y [N, K, OH, OW] = conv(x [N, C, H, W], w [K, C, R, S]); y is overwritten.
    template <class T>
    static void forward(ConstView<T, cpu> x, ConstView<T, cpu> w, TensorView<T, cpu> y, const ops::Conv2dParams& p) {
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
                              const ops::Conv2dParams& p) {
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
            col2im_add(col, g, dxn);
        });
    }

    // dw [K, C, R, S] (+)= sum over images of dy_n col_n^T.
    template <class T>
    static void backward_weight(ConstView<T, cpu> dy, ConstView<T, cpu> x, TensorView<T, cpu> dw,
                                const ops::Conv2dParams& p, bool accumulate) {
        using namespace cpu_detail;
        const ConvGeometry g = conv_geometry(x.shape(), dw.shape(), dy.shape(), p);
        const index_t weight_size = g.filters * g.col_rows();
        MatrixMap<T> dW(dw.data(), g.filters, g.col_rows());
        if (!accumulate) dW.setZero();
        const bool pointwise = g.pointwise();
        const index_t col_size = pointwise ? 0 : g.col_rows() * g.col_cols();
        auto add_image = [&](index_t n, T* col, MatrixMap<T>& target) {
            const T* xn = x.data() + n * g.input_size();
            if (!pointwise) im2col(xn, g, col);
            const ConstMatrixMap<T> dY(dy.data() + n * g.output_size(), g.filters, g.col_cols());
            target.noalias() += dY * ConstMatrixMap<T>(pointwise ? xn : col, g.col_rows(), g.col_cols()).transpose();
        };
        if (!images_in_parallel(g.batch, g.output_size() * g.col_rows())) {
            std::vector<T> col(static_cast<std::size_t>(col_size));
            for (index_t n = 0; n < g.batch; ++n) add_image(n, col.data(), dW);
            return;
        }
        // One partial sum per thread over a fixed block of images, added up in thread order, so
        // the result depends only on the data and the thread count.
        const int threads = static_cast<int>(std::min<index_t>(max_threads(), g.batch));
        std::vector<T> partial(static_cast<std::size_t>(threads * weight_size), T(0));
#pragma omp parallel num_threads(threads)
        {
            const index_t t = thread_id();
            const index_t team = omp_team_size();
            std::vector<T> col(static_cast<std::size_t>(col_size));
            MatrixMap<T> mine(partial.data() + t * weight_size, g.filters, g.col_rows());
            for (index_t n = t * g.batch / team; n < (t + 1) * g.batch / team; ++n) add_image(n, col.data(), mine);
        }
        for (int t = 0; t < threads; ++t) dW += MatrixMap<T>(partial.data() + t * weight_size, g.filters, g.col_rows());
    }
};

}  // namespace gcl::backend
