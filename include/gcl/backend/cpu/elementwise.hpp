#pragma once
// CPU element-wise kernels over contiguous memory (except copy, which takes any strides).
// Every loop writes element i from element i of its inputs only, so exact in-place use is safe.
#include <algorithm>

#include "gcl/backend/copy_layout.hpp"
#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct Elementwise<cpu> {
    template <class T>
    static void fill(TensorView<T, cpu> out, T value) {
        T* o = out.data();
        const index_t n = out.numel();
#pragma omp parallel for schedule(dynamic, cpu_detail::elementwise_chunk) if (cpu_detail::worth_parallel(n, 1))
        for (index_t i = 0; i < n; ++i) o[i] = value;
    }

    // out = static_cast<T>(in) element by element, contiguous views of equal shape.
    template <class S, class T>
    static void convert(ConstView<S, cpu> in, TensorView<T, cpu> out) {
        const S* src = in.data();
        T* dst = out.data();
        const index_t n = out.numel();
#pragma omp parallel for schedule(dynamic, cpu_detail::elementwise_chunk) if (cpu_detail::worth_parallel(n, 1))
        for (index_t i = 0; i < n; ++i) dst[i] = static_cast<T>(src[i]);
    }

    // out = in, for views of equal shape and any strides.
    template <class T>
    static void copy(ConstView<T, cpu> in, TensorView<T, cpu> out) {
        const CopyLayout layout = copy_layout(in, out);
        const int rank = layout.rank;
        const index_t* extent = layout.extent;
        const index_t* si = layout.in_stride;
        const index_t* so = layout.out_stride;
        if (in.numel() == 0) return;
        if (rank == 0) {
            *out.data() = *in.data();
            return;
        }
        const index_t run = extent[rank - 1], run_in = si[rank - 1], run_out = so[rank - 1];
        index_t runs = 1;
        for (int d = 0; d < rank - 1; ++d) runs *= extent[d];
        const T* src = in.data();
        T* dst = out.data();
        cpu_detail::parallel_for(runs, cpu_detail::worth_parallel(runs, run), [&](index_t r) {
            index_t oi = 0, oo = 0, rest = r;
            for (int d = rank - 2; d >= 0; --d) {
                const index_t k = rest % extent[d];
                rest /= extent[d];
                oi += k * si[d];
                oo += k * so[d];
            }
            if (run_in == 1 && run_out == 1)
                std::copy(src + oi, src + oi + run, dst + oo);
            else
                for (index_t k = 0; k < run; ++k) dst[oo + k * run_out] = src[oi + k * run_in];
        });
    }

    // out = a (op) b.
    template <class T>
    static void binary(BinaryOp op, ConstView<T, cpu> a, ConstView<T, cpu> b, TensorView<T, cpu> out) {
        switch (op) {
            case BinaryOp::add: return zip(a, b, out, [](T x, T y) { return x + y; });
            case BinaryOp::sub: return zip(a, b, out, [](T x, T y) { return x - y; });
            case BinaryOp::mul: return zip(a, b, out, [](T x, T y) { return x * y; });
            case BinaryOp::div: return zip(a, b, out, [](T x, T y) { return x / y; });
        }
    }

    // out = alpha x + shift.
    template <class T>
    static void affine(ConstView<T, cpu> x, T alpha, T shift, TensorView<T, cpu> out) {
        const T* in = x.data();
        T* o = out.data();
        const index_t n = x.numel();
#pragma omp parallel for schedule(dynamic, cpu_detail::elementwise_chunk) if (cpu_detail::worth_parallel(n, 1))
        for (index_t i = 0; i < n; ++i) o[i] = alpha * in[i] + shift;
    }

    // y = alpha x + beta y; with beta == 0, y is not read.
    template <class T>
    static void axpby(T alpha, ConstView<T, cpu> x, T beta, TensorView<T, cpu> y) {
        const T* in = x.data();
        T* o = y.data();
        const index_t n = x.numel();
        if (beta == T(0)) {
#pragma omp parallel for schedule(dynamic, cpu_detail::elementwise_chunk) if (cpu_detail::worth_parallel(n, 1))
            for (index_t i = 0; i < n; ++i) o[i] = alpha * in[i];
        } else {
#pragma omp parallel for schedule(dynamic, cpu_detail::elementwise_chunk) if (cpu_detail::worth_parallel(n, 1))
            for (index_t i = 0; i < n; ++i) o[i] = alpha * in[i] + beta * o[i];
        }
    }

private:
    template <class T, class F>
    static void zip(ConstView<T, cpu> a, ConstView<T, cpu> b, TensorView<T, cpu> out, F f) {
        const T* pa = a.data();
        const T* pb = b.data();
        T* o = out.data();
        const index_t n = out.numel();
#pragma omp parallel for schedule(dynamic, cpu_detail::elementwise_chunk) if (cpu_detail::worth_parallel(n, 1))
        for (index_t i = 0; i < n; ++i) o[i] = f(pa[i], pb[i]);
    }
};

}  // namespace gcl::backend
