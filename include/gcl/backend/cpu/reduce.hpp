#pragma once
// CPU reductions. Totals are summed in double over fixed blocks whose partial sums are added in
// order, so results do not depend on the thread count. Reductions along a dimension work on
// [outer, extent, inner] and sum each output element in index order.
#include <algorithm>
#include <cmath>
#include <vector>

#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/detail/reduce_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct Reduce<cpu> {
    static constexpr index_t block = 8192;

    // Sum of all elements of a contiguous view.
    template <class T>
    static double sum(ConstView<T, cpu> x) {
        const T* p = x.data();
        return blocked_sum(x.numel(), [p](index_t i) { return static_cast<double>(p[i]); });
    }

    // Sum of a[i] b[i].
    template <class T>
    static double dot(ConstView<T, cpu> a, ConstView<T, cpu> b) {
        const T* pa = a.data();
        const T* pb = b.data();
        return blocked_sum(a.numel(), [pa, pb](index_t i) { return static_cast<double>(pa[i]) * static_cast<double>(pb[i]); });
    }

    // Largest element of a non-empty view; NaN if there is one.
    template <class T>
    static T max(ConstView<T, cpu> x) {
        const T* p = x.data();
        const index_t n = x.numel();
        const index_t blocks = (n + block - 1) / block;
        std::vector<T> partial(static_cast<std::size_t>(blocks));
        cpu_detail::parallel_for(blocks, cpu_detail::worth_parallel(blocks, block), [&](index_t b) {
            T best = p[b * block];
            for (index_t i = b * block; i < std::min(n, (b + 1) * block); ++i)
                if (p[i] > best || std::isnan(p[i])) {
                    best = p[i];
                    if (std::isnan(best)) break;
                }
            partial[static_cast<std::size_t>(b)] = best;
        });
        T best = partial[0];
        for (T v : partial) {
            if (std::isnan(best)) break;
            if (v > best || std::isnan(v)) best = v;
        }
        return best;
    }

    // Element i of a contiguous view, read on the host.
    template <class T>
    static T element(ConstView<T, cpu> x, index_t i) {
        return x.data()[i];
    }

    // Index of the first NaN or infinite element, or -1.
    template <class T>
    static index_t first_nonfinite(ConstView<T, cpu> x) {
        const T* p = x.data();
        const index_t n = x.numel();
        const index_t blocks = (n + block - 1) / block;
        std::vector<index_t> first(static_cast<std::size_t>(blocks), -1);
        cpu_detail::parallel_for(blocks, cpu_detail::worth_parallel(blocks, block), [&](index_t b) {
            for (index_t i = b * block; i < std::min(n, (b + 1) * block); ++i)
                if (!std::isfinite(p[i])) {
                    first[static_cast<std::size_t>(b)] = i;
                    return;
                }
        });
        for (index_t i : first)
            if (i >= 0) return i;
        return -1;
    }

    // out[o, i] = scale * sum over k of x[o, k, i].
    template <class T>
    static void sum_dim(ConstView<T, cpu> x, TensorView<T, cpu> out, index_t outer, index_t extent, index_t inner,
                        double scale) {
        if (inner == 1) {  // contiguous lines: one accumulator each
            cpu_detail::parallel_for(outer, cpu_detail::worth_parallel(outer, extent), [&](index_t o) {
                const T* in = x.data() + o * extent;
                double acc = 0;
                for (index_t k = 0; k < extent; ++k) acc += static_cast<double>(in[k]);
                out.data()[o] = static_cast<T>(scale * acc);
            });
            return;
        }
        cpu_detail::parallel_for(outer, cpu_detail::worth_parallel(outer, extent * inner), [&](index_t o) {
            std::vector<double> acc(static_cast<std::size_t>(inner), 0.0);
            const T* in = x.data() + o * extent * inner;
            for (index_t k = 0; k < extent; ++k)
                for (index_t i = 0; i < inner; ++i) acc[static_cast<std::size_t>(i)] += static_cast<double>(in[k * inner + i]);
            T* res = out.data() + o * inner;
            for (index_t i = 0; i < inner; ++i) res[i] = static_cast<T>(scale * acc[static_cast<std::size_t>(i)]);
        });
    }

    // out[o, i] = max over k of x[o, k, i] (first maximum; NaN wins); indices[o, i] = its k,
    // unless indices is empty (null data).
    template <class T>
    static void max_dim(ConstView<T, cpu> x, TensorView<T, cpu> out, TensorView<index_t, cpu> indices, index_t outer,
                        index_t extent, index_t inner) {
        cpu_detail::parallel_for(outer, cpu_detail::worth_parallel(outer, extent * inner), [&](index_t o) {
            const T* in = x.data() + o * extent * inner;
            T* res = out.data() + o * inner;
            index_t* idx = indices.data() ? indices.data() + o * inner : nullptr;
            for (index_t i = 0; i < inner; ++i) {
                index_t arg = 0;
                res[i] = detail::max_dim_item(in, extent, inner, i, arg);
                if (idx) idx[i] = arg;
            }
        });
    }

    // dx[o, k, i] = scale * dy[o, i]: the gradient of sum_dim.
    template <class T>
    static void broadcast_dim(ConstView<T, cpu> dy, TensorView<T, cpu> dx, index_t outer, index_t extent,
                              index_t inner, double scale) {
        cpu_detail::parallel_for(outer, cpu_detail::worth_parallel(outer, extent * inner), [&](index_t o) {
            const T* g = dy.data() + o * inner;
            T* res = dx.data() + o * extent * inner;
            for (index_t k = 0; k < extent; ++k)
                for (index_t i = 0; i < inner; ++i) res[k * inner + i] = static_cast<T>(scale * static_cast<double>(g[i]));
        });
    }

    // dx = 0, then dx[o, indices[o, i], i] = dy[o, i]: the gradient of max_dim. Throws when an
    // index lies outside [0, extent).
    template <class T>
    static void scatter_dim(ConstView<T, cpu> dy, ConstView<index_t, cpu> indices, TensorView<T, cpu> dx,
                               index_t outer, index_t extent, index_t inner) {
        index_t bad = 0;
        cpu_detail::parallel_for(outer, cpu_detail::worth_parallel(outer, extent * inner), [&](index_t o) {
            const T* g = dy.data() + o * inner;
            const index_t* idx = indices.data() + o * inner;
            T* res = dx.data() + o * extent * inner;
            std::fill(res, res + extent * inner, T(0));
            for (index_t i = 0; i < inner; ++i) {
                if (idx[i] < 0 || idx[i] >= extent) {
#pragma omp atomic
                    ++bad;
                    continue;
                }
                res[idx[i] * inner + i] = g[i];
            }
        });
        if (bad > 0)
            fail("ops::max_backward", bad, " indices lie outside [0, ", extent, ") (indices of shape ", indices.shape(),
                 ")");
    }

private:
    template <class Term>
    static double blocked_sum(index_t n, Term term) {
        const index_t blocks = (n + block - 1) / block;
        std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
        cpu_detail::parallel_for(blocks, cpu_detail::worth_parallel(blocks, block), [&](index_t b) {
            double s = 0;
            for (index_t i = b * block; i < std::min(n, (b + 1) * block); ++i) s += term(i);
            partial[static_cast<std::size_t>(b)] = s;
        });
        double total = 0;
        for (double s : partial) total += s;
        return total;
    }
};

}  // namespace gcl::backend
