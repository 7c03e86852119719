#pragma once
// CUDA convolution through cuDNN: forward, backward data and backward weight with the CPU
// family's interface (backend/cpu/conv2d.hpp), so ops::conv2d_* and ops::conv_transpose2d_* run
// on device views. Tensors are NCHW and filters FCRS, as on the CPU.
//
// For each shape (input, filter, output, window, element type, device) a plan is made once and
// cached per host thread: the cuDNN descriptors and, for each of the three passes, the first
// algorithm that cuDNN's heuristics rank (cudnnGet*Algorithm_v7) among those that are
// deterministic and use no tensor cores (math type CUDNN_FMA_MATH: float stays full FP32, no
// TF32). The heuristics, unlike cudnnFind*, do not time anything, so the same shape gets the same
// algorithm in every run and a run repeats bit for bit on one device; results agree with the CPU
// within rounding. The workspace is the thread's device scratch area (scratch.cuh), grown when a
// plan needs more (no allocation once every shape has been seen).
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <compare>
#include <cstddef>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <type_traits>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/handles.cuh"
#include "gcl/backend/cuda/scratch.cuh"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/core/window2d.hpp"

namespace gcl::cuda_detail {

template <class T>
constexpr cudnnDataType_t cudnn_data_type() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cuDNN convolution takes float or double");
    return std::is_same_v<T, float> ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

inline int cudnn_int(index_t v, const char* what) {
    check(v >= 0 && v <= std::numeric_limits<int>::max(), "Conv2d<cuda>", what, " ", v, " exceeds cuDNN's int");
    return static_cast<int>(v);
}

// The descriptors and algorithms of one convolution shape.
class ConvPlan {
public:
    ConvPlan(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p, cudnnDataType_t type) {
        GCL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_));
        GCL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y_));
        GCL_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w_));
        GCL_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv_));
        GCL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NCHW, type, cudnn_int(x[0], "batch"),
                                                   cudnn_int(x[1], "channels"), cudnn_int(x[2], "height"),
                                                   cudnn_int(x[3], "width")));
        GCL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NCHW, type, cudnn_int(y[0], "batch"),
                                                   cudnn_int(y[1], "channels"), cudnn_int(y[2], "height"),
                                                   cudnn_int(y[3], "width")));
        GCL_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w_, type, CUDNN_TENSOR_NCHW, cudnn_int(w[0], "filters"),
                                                   cudnn_int(w[1], "channels"), cudnn_int(w[2], "kernel height"),
                                                   cudnn_int(w[3], "kernel width")));
        GCL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
            conv_, cudnn_int(p.padding[0], "padding"), cudnn_int(p.padding[1], "padding"),
            cudnn_int(p.stride[0], "stride"), cudnn_int(p.stride[1], "stride"), cudnn_int(p.dilation[0], "dilation"),
            cudnn_int(p.dilation[1], "dilation"), CUDNN_CROSS_CORRELATION, type));
        GCL_CUDNN_CHECK(cudnnSetConvolutionMathType(conv_, CUDNN_FMA_MATH));
        choose_algorithms();
    }
    ConvPlan(const ConvPlan&) = delete;
    ConvPlan& operator=(const ConvPlan&) = delete;
    ~ConvPlan() {  // no throw from a destructor
        cudnnDestroyConvolutionDescriptor(conv_);
        cudnnDestroyFilterDescriptor(w_);
        cudnnDestroyTensorDescriptor(y_);
        cudnnDestroyTensorDescriptor(x_);
    }

    template <class T>
    void forward(const T* x, const T* w, T* y, void* workspace) const {
        const T one = 1, zero = 0;
        GCL_CUDNN_CHECK(cudnnConvolutionForward(cudnn_handle(), &one, x_, x, w_, w, conv_, fwd_, workspace, fwd_bytes_,
                                                &zero, y_, y));
    }
    template <class T>
    void backward_data(const T* dy, const T* w, T* dx, void* workspace) const {
        const T one = 1, zero = 0;
        GCL_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn_handle(), &one, w_, w, y_, dy, conv_, bwd_data_, workspace,
                                                     bwd_data_bytes_, &zero, x_, dx));
    }
    template <class T>
    void backward_weight(const T* dy, const T* x, T* dw, bool accumulate, void* workspace) const {
        const T one = 1, beta = accumulate ? T(1) : T(0);
        GCL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn_handle(), &one, x_, x, y_, dy, conv_, bwd_filter_, workspace,
                                                       bwd_filter_bytes_, &beta, w_, dw));
    }

    std::size_t workspace_bytes() const { return std::max({fwd_bytes_, bwd_data_bytes_, bwd_filter_bytes_}); }

private:
    static bool plain_math(cudnnMathType_t m) { return m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH; }

    void choose_algorithms() {
        cudnnHandle_t h = cudnn_handle();
        int count = 0;
        {
            std::array<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT> perf{};
            GCL_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, x_, w_, conv_, y_, static_cast<int>(perf.size()),
                                                                   &count, perf.data()));
            const auto* chosen = first_usable(perf.data(), count, "forward");
            fwd_ = chosen->algo;
            GCL_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, x_, w_, conv_, y_, fwd_, &fwd_bytes_));
        }
        {
            std::array<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT> perf{};
            GCL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w_, y_, conv_, x_, static_cast<int>(perf.size()),
                                                                        &count, perf.data()));
            const auto* chosen = first_usable(perf.data(), count, "backward data");
            bwd_data_ = chosen->algo;
            GCL_CUDNN_CHECK(
                cudnnGetConvolutionBackwardDataWorkspaceSize(h, w_, y_, conv_, x_, bwd_data_, &bwd_data_bytes_));
        }
        {
            std::array<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT> perf{};
            GCL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x_, y_, conv_, w_, static_cast<int>(perf.size()),
                                                                          &count, perf.data()));
            const auto* chosen = first_usable(perf.data(), count, "backward weight");
            bwd_filter_ = chosen->algo;
            GCL_CUDNN_CHECK(
                cudnnGetConvolutionBackwardFilterWorkspaceSize(h, x_, y_, conv_, w_, bwd_filter_, &bwd_filter_bytes_));
        }
    }

    // The first algorithm in cuDNN's ranking that works, is deterministic and uses no tensor cores.
    template <class Perf>
    static const Perf* first_usable(const Perf* ranked, int count, const char* pass) {
        for (const Perf& p : std::span(ranked, static_cast<std::size_t>(count)))
            if (p.status == CUDNN_STATUS_SUCCESS && p.determinism == CUDNN_DETERMINISTIC && plain_math(p.mathType))
                return &p;
        fail("Conv2d<cuda>", "cuDNN offers no deterministic FMA algorithm for the ", pass, " pass of this shape");
    }

    cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr;
    cudnnFilterDescriptor_t w_ = nullptr;
    cudnnConvolutionDescriptor_t conv_ = nullptr;
    cudnnConvolutionFwdAlgo_t fwd_{};
    cudnnConvolutionBwdDataAlgo_t bwd_data_{};
    cudnnConvolutionBwdFilterAlgo_t bwd_filter_{};
    std::size_t fwd_bytes_ = 0, bwd_data_bytes_ = 0, bwd_filter_bytes_ = 0;
};

// The plan of a shape, made on first use and cached per host thread and device; and the
// thread's workspace, grown to the largest plan seen.
class ConvPlans {
public:
    template <class T>
    static const ConvPlan& get(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p) {
        Key key{current_device(), cudnn_data_type<T>(), {}, p.stride, p.padding, p.dilation};
        for (int d = 0; d < 4; ++d) {
            key.dims[static_cast<std::size_t>(d)] = x[d];
            key.dims[static_cast<std::size_t>(4 + d)] = w[d];
            key.dims[static_cast<std::size_t>(8 + d)] = y[d];
        }
        auto& slot = plans()[key];
        if (!slot) slot = std::make_unique<ConvPlan>(x, w, y, p, cudnn_data_type<T>());
        return *slot;
    }

    // The thread's device scratch area (scratch.cuh), grown to the largest plan seen.
    static void* workspace(std::size_t bytes) { return scratch<double>(bytes / sizeof(double) + 1); }

private:
    struct Key {
        int device;
        cudnnDataType_t type;
        std::array<index_t, 12> dims;
        Extent2 stride, padding, dilation;
        auto operator<=>(const Key&) const = default;
    };
    static std::map<Key, std::unique_ptr<ConvPlan>>& plans() {
        thread_local std::map<Key, std::unique_ptr<ConvPlan>> cache;
        return cache;
    }
};

}  // namespace gcl::cuda_detail

namespace gcl::backend {

template <>
struct Conv2d<cuda> {
    // Forward operands kept for backward passes: cuDNN reads the caller's memory directly, so
    // there is nothing to keep (the layers' interface: clear, bytes).
    struct OperandCache {
        void clear() {}
        std::size_t bytes() const { return 0; }
    };

    // An output whose sum has no terms (no input channels, no filters, no images) is zero, as on
    // the CPU; the ops checked that it is contiguous.
    template <class T>
    static void zero(TensorView<T, cuda> out) {
        if (out.numel() > 0)
            GCL_CUDA_CHECK(cudaMemsetAsync(out.data(), 0, static_cast<std::size_t>(out.numel()) * sizeof(T),
                                           cuda_detail::stream()));
    }

    template <class T>
    static void forward(ConstView<T, cuda> x, ConstView<T, cuda> w, TensorView<T, cuda> y, const Conv2dParams& p,
                        OperandCache* = nullptr) {
        if (x.numel() == 0 || y.numel() == 0) return zero(y);
        const auto& plan = cuda_detail::ConvPlans::get<T>(x.shape(), w.shape(), y.shape(), p);
        plan.forward(x.data(), w.data(), y.data(), cuda_detail::ConvPlans::workspace(plan.workspace_bytes()));
    }

    template <class T>
    static void backward_data(ConstView<T, cuda> dy, ConstView<T, cuda> w, TensorView<T, cuda> dx,
                              const Conv2dParams& p) {
        if (dx.numel() == 0 || dy.numel() == 0) return zero(dx);
        const auto& plan = cuda_detail::ConvPlans::get<T>(dx.shape(), w.shape(), dy.shape(), p);
        plan.backward_data(dy.data(), w.data(), dx.data(), cuda_detail::ConvPlans::workspace(plan.workspace_bytes()));
    }

    template <class T>
    static void backward_weight(ConstView<T, cuda> dy, ConstView<T, cuda> x, TensorView<T, cuda> dw,
                                const Conv2dParams& p, bool accumulate) {
        if (dw.numel() == 0 || dy.numel() == 0) {
            if (!accumulate) zero(dw);
            return;
        }
        const auto& plan = cuda_detail::ConvPlans::get<T>(x.shape(), dw.shape(), dy.shape(), p);
        plan.backward_weight(dy.data(), x.data(), dw.data(), accumulate,
                             cuda_detail::ConvPlans::workspace(plan.workspace_bytes()));
    }

    // One backward pass: the weight gradient (dw = or +=), then the data gradient (dx =; a dx
    // without data skips it).
    template <class T>
    static void backward(ConstView<T, cuda> dy, ConstView<T, cuda> x, ConstView<T, cuda> w, TensorView<T, cuda> dx,
                         TensorView<T, cuda> dw, const Conv2dParams& p, bool accumulate, OperandCache* = nullptr) {
        backward_weight(dy, x, dw, p, accumulate);
        if (dx.data()) backward_data(dy, w, dx, p);
    }

    // K backward passes after one forward: pass k reads images k N .. k N + N - 1 of dy and writes
    // the same images of dx and dw[k].
    template <class T>
    static void backward_stacked(ConstView<T, cuda> dy, ConstView<T, cuda> x, ConstView<T, cuda> w, TensorView<T, cuda> dx,
                                 std::span<const TensorView<T, cuda>> dw, const Conv2dParams& p, bool accumulate,
                                 OperandCache* = nullptr) {
        const index_t N = x.dim(0);
        for (std::size_t k = 0; k < dw.size(); ++k) {
            const auto kk = static_cast<index_t>(k);
            const ConstView<T, cuda> dy_k = dy.narrow(0, kk * N, N);
            const TensorView<T, cuda> dx_k = dx.data() ? dx.narrow(0, kk * N, N) : TensorView<T, cuda>();
            backward(dy_k, x, w, dx_k, dw[k], p, accumulate);
        }
    }
};

}  // namespace gcl::backend
