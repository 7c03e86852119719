#pragma once
// backend::Elementwise<cuda>: fill, strided copy and arithmetic on device memory, with the
// interface of the CPU kernels (backend/cpu/elementwise.hpp). Each kernel is a grid-stride loop
// around a GCL_HOST_DEVICE item function that writes element i from element i of its inputs
// only, so exact in-place use is safe, and the item functions also run on the host (the
// emulation test replays them against the CPU kernels).
//
// The kernels run on the current stream (core/stream.hpp), in order with gcl::Buffer's zeroing
// and with to_host / to_device; they return without waiting.
#include <cuda_runtime.h>

#include "gcl/backend/copy_layout.hpp"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/launch.cuh"
#include "gcl/backend/cuda/stream.cuh"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/config.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::cuda_detail {

// ---- item functions: element i of each kernel ----

template <class T>
GCL_HOST_DEVICE inline void fill_item(T* out, T value, index_t i) {
    out[i] = value;
}

template <class T>
GCL_HOST_DEVICE inline void copy_item(const T* in, T* out, const backend::CopyLayout& layout, index_t i) {
    index_t in_offset = 0, out_offset = 0;
    backend::copy_offsets(layout, i, in_offset, out_offset);
    out[out_offset] = in[in_offset];
}

template <backend::BinaryOp Op, class T>
GCL_HOST_DEVICE inline void binary_item(const T* a, const T* b, T* out, index_t i) {
    if constexpr (Op == backend::BinaryOp::add) out[i] = a[i] + b[i];
    if constexpr (Op == backend::BinaryOp::sub) out[i] = a[i] - b[i];
    if constexpr (Op == backend::BinaryOp::mul) out[i] = a[i] * b[i];
    if constexpr (Op == backend::BinaryOp::div) out[i] = a[i] / b[i];
}

template <class T>
GCL_HOST_DEVICE inline void affine_item(const T* x, T alpha, T shift, T* out, index_t i) {
    out[i] = alpha * x[i] + shift;
}

// y = alpha x + beta y; with beta == 0, y is not read (so NaN in y does not survive).
template <bool ReadY, class T>
GCL_HOST_DEVICE inline void axpby_item(T alpha, const T* x, T beta, T* y, index_t i) {
    if constexpr (ReadY)
        y[i] = alpha * x[i] + beta * y[i];
    else
        y[i] = alpha * x[i];
}

// ---- kernels ----

// Runs item(i) for every i in [0, n): the grid-stride loop every element-wise kernel is.
template <class Item>
__global__ void __launch_bounds__(elementwise_threads) for_each_item_kernel(index_t n, Item item) {
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) item(i);
}

template <class Item>
void for_each_item(index_t n, const Item& item) {
    if (n == 0) return;
    for_each_item_kernel<<<grid_blocks(n, elementwise_threads), elementwise_threads, 0, cuda_detail::stream()>>>(n,
                                                                                                                 item);
    GCL_CUDA_CHECK_LAUNCH();
}

// Function objects rather than lambdas, so nvcc needs no --extended-lambda.
template <class T>
struct FillItem {
    T* out;
    T value;
    GCL_DEVICE void operator()(index_t i) const { fill_item(out, value, i); }
};
template <class S, class T>
struct ConvertItem {
    const S* in;
    T* out;
    GCL_DEVICE void operator()(index_t i) const { out[i] = static_cast<T>(in[i]); }
};
template <class T>
struct CopyItem {
    const T* in;
    T* out;
    backend::CopyLayout layout;
    GCL_DEVICE void operator()(index_t i) const { copy_item(in, out, layout, i); }
};
template <backend::BinaryOp Op, class T>
struct BinaryItem {
    const T* a;
    const T* b;
    T* out;
    GCL_DEVICE void operator()(index_t i) const { binary_item<Op>(a, b, out, i); }
};
template <class T>
struct AffineItem {
    const T* x;
    T alpha, shift;
    T* out;
    GCL_DEVICE void operator()(index_t i) const { affine_item(x, alpha, shift, out, i); }
};
template <bool ReadY, class T>
struct AxpbyItem {
    T alpha;
    const T* x;
    T beta;
    T* y;
    GCL_DEVICE void operator()(index_t i) const { axpby_item<ReadY>(alpha, x, beta, y, i); }
};

}  // namespace gcl::cuda_detail

namespace gcl::backend {

template <>
struct Elementwise<cuda> {
    template <class T>
    static void fill(TensorView<T, cuda> out, T value) {
        cuda_detail::for_each_item(out.numel(), cuda_detail::FillItem<T>{out.data(), value});
    }

    // out = static_cast<T>(in) element by element, contiguous views of equal shape (the CPU's rule).
    template <class S, class T>
    static void convert(ConstView<S, cuda> in, TensorView<T, cuda> out) {
        cuda_detail::for_each_item(out.numel(), cuda_detail::ConvertItem<S, T>{in.data(), out.data()});
    }

    // out = in, for views of equal shape and any strides.
    template <class T>
    static void copy(ConstView<T, cuda> in, TensorView<T, cuda> out) {
        if (in.numel() == 0) return;
        const CopyLayout layout = copy_layout(in, out);
        if (layout.rank == 1 && layout.in_stride[0] == 1 && layout.out_stride[0] == 1) {
            GCL_CUDA_CHECK(cudaMemcpyAsync(out.data(), in.data(), static_cast<std::size_t>(in.numel()) * sizeof(T),
                                           cudaMemcpyDeviceToDevice, cuda_detail::stream()));
            return;
        }
        cuda_detail::for_each_item(in.numel(), cuda_detail::CopyItem<T>{in.data(), out.data(), layout});
    }

    // out = a (op) b.
    template <class T>
    static void binary(BinaryOp op, ConstView<T, cuda> a, ConstView<T, cuda> b, TensorView<T, cuda> out) {
        const index_t n = out.numel();
        switch (op) {
            case BinaryOp::add: return launch_binary<BinaryOp::add>(a, b, out, n);
            case BinaryOp::sub: return launch_binary<BinaryOp::sub>(a, b, out, n);
            case BinaryOp::mul: return launch_binary<BinaryOp::mul>(a, b, out, n);
            case BinaryOp::div: return launch_binary<BinaryOp::div>(a, b, out, n);
        }
    }

    // out = alpha x + shift.
    template <class T>
    static void affine(ConstView<T, cuda> x, T alpha, T shift, TensorView<T, cuda> out) {
        cuda_detail::for_each_item(x.numel(), cuda_detail::AffineItem<T>{x.data(), alpha, shift, out.data()});
    }

    // y = alpha x + beta y; with beta == 0, y is not read.
    template <class T>
    static void axpby(T alpha, ConstView<T, cuda> x, T beta, TensorView<T, cuda> y) {
        if (beta == T(0))
            cuda_detail::for_each_item(x.numel(), cuda_detail::AxpbyItem<false, T>{alpha, x.data(), beta, y.data()});
        else
            cuda_detail::for_each_item(x.numel(), cuda_detail::AxpbyItem<true, T>{alpha, x.data(), beta, y.data()});
    }

private:
    template <BinaryOp Op, class T>
    static void launch_binary(ConstView<T, cuda> a, ConstView<T, cuda> b, TensorView<T, cuda> out, index_t n) {
        cuda_detail::for_each_item(n, cuda_detail::BinaryItem<Op, T>{a.data(), b.data(), out.data()});
    }
};

}  // namespace gcl::backend
