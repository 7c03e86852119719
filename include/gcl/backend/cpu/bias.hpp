#pragma once
// CPU per-channel bias on a tensor seen as [outer, channels, inner].

#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct Bias<cpu> {
    // y[o, c, i] += bias[c].
    template <class T>
    static void add(ConstView<T, cpu> bias, TensorView<T, cpu> y, index_t outer, index_t channels, index_t inner) {
        const T* b = bias.data();
        T* out = y.data();
        cpu_detail::parallel_for(outer * channels, cpu_detail::worth_parallel(outer * channels, inner), [&](index_t oc) {
            const T v = b[oc % channels];
            T* row = out + oc * inner;
#pragma omp simd
            for (index_t i = 0; i < inner; ++i) row[i] += v;
        });
    }

    // db[c] (+)= sum over o, i of dy[o, c, i], accumulated in double.
    template <class T>
    static void backward(ConstView<T, cpu> dy, TensorView<T, cpu> db, index_t outer, index_t channels, index_t inner,
                         bool accumulate) {
        const T* g = dy.data();
        T* out = db.data();
        cpu_detail::parallel_for(channels, cpu_detail::worth_parallel(channels, outer * inner), [&](index_t c) {
            double sum = 0;
            for (index_t o = 0; o < outer; ++o) {
                const T* row = g + (o * channels + c) * inner;
#pragma omp simd reduction(+ : sum)
                for (index_t i = 0; i < inner; ++i) sum += static_cast<double>(row[i]);
            }
            out[c] = static_cast<T>(accumulate ? static_cast<double>(out[c]) + sum : sum);
        });
    }
};

}  // namespace gcl::backend
