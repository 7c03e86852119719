#pragma once
// CPU activations: element by element over contiguous memory (in place allowed), with the
// per-element rules of backend/detail/activation_items.hpp.
//
// Each rule computes both sides of its select unconditionally (slope * x is evaluated even where
// x > 0), so the compiler may turn the select into a vector blend: a multiplication that only
// runs on one side of a branch could raise a floating-point exception the source would not, and
// without -fno-trapping-math that keeps the loop scalar. benchmarks/check_vectorised.sh checks
// the generated code. The loops are plain `omp parallel for` (g++ vectorises them behind a
// run-time overlap check); `parallel for simd` measured two to three times slower with g++ 12.
#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/detail/activation_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct Activation<cpu> {
    // y = max(x, 0); NaN stays NaN and -inf becomes 0.
    template <class T>
    static void relu_forward(ConstView<T, cpu> x, TensorView<T, cpu> y) {
        const T* in = x.data();
        T* out = y.data();
        const index_t n = x.numel();
#pragma omp parallel for schedule(dynamic, cpu_detail::elementwise_chunk) if (cpu_detail::worth_parallel(n, 1))
        for (index_t i = 0; i < n; ++i) out[i] = detail::relu_item(in[i]);
    }

    // dx = x > 0 ? dy : 0.
    template <class T>
    static void relu_backward(ConstView<T, cpu> dy, ConstView<T, cpu> x, TensorView<T, cpu> dx) {
        const T* g = dy.data();
        const T* in = x.data();
        T* out = dx.data();
        const index_t n = x.numel();
#pragma omp parallel for schedule(dynamic, cpu_detail::elementwise_chunk) if (cpu_detail::worth_parallel(n, 1))
        for (index_t i = 0; i < n; ++i) out[i] = detail::relu_backward_item(g[i], in[i]);
    }

    // y = x > 0 ? x : slope x.
    template <class T>
    static void leaky_relu_forward(ConstView<T, cpu> x, TensorView<T, cpu> y, T slope) {
        const T* in = x.data();
        T* out = y.data();
        const index_t n = x.numel();
#pragma omp parallel for schedule(dynamic, cpu_detail::elementwise_chunk) if (cpu_detail::worth_parallel(n, 1))
        for (index_t i = 0; i < n; ++i) out[i] = detail::leaky_relu_item(in[i], slope);
    }

    // dx = x > 0 ? dy : slope dy.
    template <class T>
    static void leaky_relu_backward(ConstView<T, cpu> dy, ConstView<T, cpu> x, TensorView<T, cpu> dx, T slope) {
        const T* g = dy.data();
        const T* in = x.data();
        T* out = dx.data();
        const index_t n = x.numel();
#pragma omp parallel for schedule(dynamic, cpu_detail::elementwise_chunk) if (cpu_detail::worth_parallel(n, 1))
        for (index_t i = 0; i < n; ++i) out[i] = detail::leaky_relu_backward_item(g[i], in[i], slope);
    }
};

}  // namespace gcl::backend
