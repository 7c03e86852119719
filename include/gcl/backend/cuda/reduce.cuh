#pragma once
// CUDA reductions with the CPU family's interface (backend/cpu/reduce.hpp), around the per-item
// rules of backend/detail/reduce_items.hpp.
//
// Along a dimension, one thread per output element reduces over k in index order, as the CPU
// does: sum_dim, max_dim (values and indices), broadcast_dim and scatter_dim give the CPU's bits.
// Totals (sum, dot) are two passes of fixed geometry: each block sums its grid-stride share in
// double in block_sum's order, then one block sums the partials the same way; a run repeats bit
// for bit and agrees with the CPU within rounding. max and first_nonfinite pick the CPU's element
// (the first NaN or first largest; the smallest index), so they equal it bit for bit. The
// results over all elements are returned to the host, which waits for the device.
#include <cuda_runtime.h>

#include <array>

#include "gcl/backend/cuda/block_sum.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/copy.cuh"
#include "gcl/backend/cuda/flat_update.cuh"
#include "gcl/backend/cuda/index_check.cuh"
#include "gcl/backend/cuda/launch.cuh"
#include "gcl/backend/cuda/scratch.cuh"
#include "gcl/backend/detail/reduce_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

namespace cuda_kernels {

inline constexpr int reduce_threads = 256;
inline constexpr index_t reduce_max_blocks = 1024;  // partials the second pass sums: 4 per thread

// A thread's share of a total: items first, first + step, ... below n.
template <class T>
struct SumTerms {
    const T* x;
    GCL_HOST_DEVICE double operator()(index_t n, index_t first, index_t step) const {
        return detail::strided_sum(x, n, first, step);
    }
};
template <class T>
struct DotTerms {
    const T* a;
    const T* b;
    GCL_HOST_DEVICE double operator()(index_t n, index_t first, index_t step) const {
        return detail::strided_dot(a, b, n, first, step);
    }
};

// partial[block] = the block's grid-stride share of the n terms.
template <class Terms>
__global__ void __launch_bounds__(reduce_threads) sum_partials(Terms terms, index_t n, double* partial) {
    __shared__ double shared[reduce_threads / cuda_detail::warp_size];
    const index_t first = index_t{blockIdx.x} * reduce_threads + threadIdx.x;
    const double mine[1] = {terms(n, first, index_t{gridDim.x} * reduce_threads)};
    const double total = cuda_detail::block_sum<reduce_threads, 1>(mine, shared);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// The maximum's position: the first NaN, else the first largest element (-1: none yet).
template <class T>
struct MaxRule {
    const T* x;
    GCL_HOST_DEVICE bool beats(index_t i, index_t j) const {
        return i >= 0 && (j < 0 || detail::max_beats(x[i], i, x[j], j));
    }
};

// best[block] = the block's preferred candidate; candidate q is candidates[q], or q itself when
// candidates is null. Any order of pairwise choices gives the same answer (the rule is a total
// order), so the tree below is only for speed.
template <class Rule>
__global__ void __launch_bounds__(reduce_threads)
    best_partials(Rule rule, const index_t* candidates, index_t n, index_t* best) {
    __shared__ index_t shared[reduce_threads];
    index_t mine = -1;
    for (index_t q = index_t{blockIdx.x} * reduce_threads + threadIdx.x; q < n;
         q += index_t{gridDim.x} * reduce_threads) {
        const index_t c = candidates ? candidates[q] : q;
        if (rule.beats(c, mine)) mine = c;
    }
    shared[threadIdx.x] = mine;
    for (int offset = reduce_threads / 2; offset > 0; offset /= 2) {
        __syncthreads();
        if (static_cast<int>(threadIdx.x) < offset && rule.beats(shared[threadIdx.x + offset], shared[threadIdx.x]))
            shared[threadIdx.x] = shared[threadIdx.x + offset];
    }
    if (threadIdx.x == 0) best[blockIdx.x] = shared[0];
}

template <class T>
__global__ void sum_dim(const T* x, T* out, index_t n, index_t extent, index_t inner, double scale) {
    for (index_t e = blockIdx.x * index_t{blockDim.x} + threadIdx.x; e < n; e += index_t{gridDim.x} * blockDim.x)
        out[e] = detail::sum_dim_item(x, extent, inner, e, scale);
}

template <class T>
__global__ void max_dim(const T* x, T* out, index_t* indices, index_t n, index_t extent, index_t inner) {
    for (index_t e = blockIdx.x * index_t{blockDim.x} + threadIdx.x; e < n; e += index_t{gridDim.x} * blockDim.x) {
        index_t arg = 0;
        out[e] = detail::max_dim_item(x, extent, inner, e, arg);
        if (indices) indices[e] = arg;
    }
}

template <class T>
__global__ void broadcast_dim(const T* dy, T* dx, index_t n, index_t extent, index_t inner, double scale) {
    for (index_t e = blockIdx.x * index_t{blockDim.x} + threadIdx.x; e < n; e += index_t{gridDim.x} * blockDim.x)
        dx[e] = detail::broadcast_dim_item(dy, extent, inner, e, scale);
}

template <class T>
__global__ void scatter_dim(const T* dy, const index_t* indices, T* dx, index_t n, index_t extent, index_t inner) {
    for (index_t e = blockIdx.x * index_t{blockDim.x} + threadIdx.x; e < n; e += index_t{gridDim.x} * blockDim.x)
        dx[e] = detail::scatter_dim_item(dy, indices, extent, inner, e);
}

}  // namespace cuda_kernels

template <>
struct Reduce<cuda> {
    // Sum of all elements of a contiguous view.
    template <class T>
    static double sum(ConstView<T, cuda> x) {
        return total(x.numel(), cuda_kernels::SumTerms<T>{x.data()});
    }

    // The sums of the R rows of a contiguous [R, n] view, each as sum() gives it (the same passes,
    // so the same bits), brought back with one copy: one wait for the device instead of R.
    template <std::size_t R, class T>
    static std::array<double, R> row_sums(ConstView<T, cuda> rows) {
        check(rows.rank() == 2 && rows.dim(0) == static_cast<index_t>(R), "Reduce<cuda>::row_sums", "expects [", R,
              ", n] rows, got shape ", rows.shape());
        std::array<double, R> result{};
        const index_t n = rows.dim(1);
        if (n == 0) return result;
        const unsigned partials = partial_blocks(n);
        double* scratch = cuda_detail::scratch<double>(R * (partials + 1));
        double* totals = scratch + R * partials;
        for (std::size_t r = 0; r < R; ++r)
            queue_total(n, cuda_kernels::SumTerms<T>{rows.data() + static_cast<index_t>(r) * n}, scratch + r * partials,
                        totals + r);
        cuda_detail::copy_to_host(result.data(), totals, sizeof result);
        return result;
    }

    // Sum of a[i] b[i].
    template <class T>
    static double dot(ConstView<T, cuda> a, ConstView<T, cuda> b) {
        return total(a.numel(), cuda_kernels::DotTerms<T>{a.data(), b.data()});
    }

    // Largest element of a non-empty view; NaN if there is one (the first, as on the CPU).
    template <class T>
    static T max(ConstView<T, cuda> x) {
        const index_t n = x.numel();
        const unsigned partials = partial_blocks(n);
        index_t* best = cuda_detail::scratch<index_t>(partials + 1);
        const cuda_kernels::MaxRule<T> rule{x.data()};
        cuda_kernels::best_partials<<<partials, cuda_kernels::reduce_threads, 0, cuda_detail::stream()>>>(rule, nullptr,
                                                                                                          n, best);
        GCL_CUDA_CHECK_LAUNCH();
        cuda_kernels::best_partials<<<1, cuda_kernels::reduce_threads, 0, cuda_detail::stream()>>>(
            rule, best, index_t{partials}, best + partials);
        GCL_CUDA_CHECK_LAUNCH();
        index_t at = 0;
        cuda_detail::copy_to_host(&at, best + partials, sizeof at);
        return element(x, at);
    }

    // Element i of a contiguous view, copied to the host.
    template <class T>
    static T element(ConstView<T, cuda> x, index_t i) {
        return FlatUpdate<cuda>::element(x.data(), i);
    }

    // Index of the first NaN or infinite element, or -1: the optimizers' check (an atomicMin of
    // the indices, so the answer does not depend on the order of the threads).
    template <class T>
    static index_t first_nonfinite(ConstView<T, cuda> x) {
        return FlatUpdate<cuda>::first_nonfinite(x.data(), x.numel());
    }

    // out[o, i] = scale * sum over k of x[o, k, i].
    template <class T>
    static void sum_dim(ConstView<T, cuda> x, TensorView<T, cuda> out, index_t outer, index_t extent, index_t inner,
                        double scale) {
        const index_t n = outer * inner;
        if (n == 0) return;
        cuda_kernels::sum_dim<<<blocks(n), threads, 0, cuda_detail::stream()>>>(x.data(), out.data(), n, extent, inner,
                                                                                scale);
        GCL_CUDA_CHECK_LAUNCH();
    }

    // out[o, i] = max over k of x[o, k, i] (first maximum; NaN wins); indices[o, i] = its k,
    // unless indices is empty (null data).
    template <class T>
    static void max_dim(ConstView<T, cuda> x, TensorView<T, cuda> out, TensorView<index_t, cuda> indices,
                        index_t outer, index_t extent, index_t inner) {
        const index_t n = outer * inner;
        if (n == 0) return;
        cuda_kernels::max_dim<<<blocks(n), threads, 0, cuda_detail::stream()>>>(x.data(), out.data(), indices.data(), n,
                                                                                extent, inner);
        GCL_CUDA_CHECK_LAUNCH();
    }

    // dx[o, k, i] = scale * dy[o, i]: the gradient of sum_dim.
    template <class T>
    static void broadcast_dim(ConstView<T, cuda> dy, TensorView<T, cuda> dx, index_t outer, index_t extent,
                              index_t inner, double scale) {
        const index_t n = outer * extent * inner;
        if (n == 0) return;
        cuda_kernels::broadcast_dim<<<blocks(n), threads, 0, cuda_detail::stream()>>>(dy.data(), dx.data(), n, extent,
                                                                                      inner, scale);
        GCL_CUDA_CHECK_LAUNCH();
    }

    // dx = 0, then dx[o, indices[o, i], i] = dy[o, i]: the gradient of max_dim. Throws when an
    // index lies outside [0, extent) (waits for the device to count them).
    template <class T>
    static void scatter_dim(ConstView<T, cuda> dy, ConstView<index_t, cuda> indices, TensorView<T, cuda> dx,
                            index_t outer, index_t extent, index_t inner) {
        const index_t n = outer * extent * inner;
        if (n == 0) return;
        cuda_kernels::scatter_dim<<<blocks(n), threads, 0, cuda_detail::stream()>>>(dy.data(), indices.data(),
                                                                                    dx.data(), n, extent, inner);
        GCL_CUDA_CHECK_LAUNCH();
        const index_t bad = cuda_detail::count_outside(indices.data(), indices.numel(), extent);
        if (bad > 0)
            fail("ops::max_backward", bad, " indices lie outside [0, ", extent, ") (indices of shape ", indices.shape(),
                 ")");
    }

    // Blocks of the first pass over n items: fixed by n alone, so the summation order is too.
    static unsigned partial_blocks(index_t n) {
        return cuda_detail::grid_blocks(n, cuda_kernels::reduce_threads, cuda_kernels::reduce_max_blocks);
    }

private:
    static constexpr int threads = cuda_detail::elementwise_threads;
    static unsigned blocks(index_t n) { return cuda_detail::grid_blocks(n, threads); }

    // Queues the two passes over n (> 0) terms: the blocks' partials into partial[partial_blocks(n)],
    // then their sum into *result, on the device.
    template <class Terms>
    static void queue_total(index_t n, Terms terms, double* partial, double* result) {
        const unsigned partials = partial_blocks(n);
        cuda_kernels::sum_partials<<<partials, cuda_kernels::reduce_threads, 0, cuda_detail::stream()>>>(terms, n,
                                                                                                         partial);
        GCL_CUDA_CHECK_LAUNCH();
        cuda_kernels::sum_partials<<<1, cuda_kernels::reduce_threads, 0, cuda_detail::stream()>>>(
            cuda_kernels::SumTerms<double>{partial}, index_t{partials}, result);
        GCL_CUDA_CHECK_LAUNCH();
    }

    template <class Terms>
    static double total(index_t n, Terms terms) {
        if (n == 0) return 0;
        const unsigned partials = partial_blocks(n);
        double* partial = cuda_detail::scratch<double>(partials + 1);
        queue_total(n, terms, partial, partial + partials);
        double result = 0;
        cuda_detail::copy_to_host(&result, partial + partials, sizeof result);
        return result;
    }
};

}  // namespace gcl::backend
