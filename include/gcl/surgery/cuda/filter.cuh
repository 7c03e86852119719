#pragma once
// The CUDA passes of GradFilter (surgery/filter.hpp): the same class, options, checks, ranking
// and tie-breaking on device memory, so the selection is identical to the CPU passes':
//
//   gcl::surgery::GradFilter<float, gcl::cuda> filter({.rule = FilterRule::top_k_per_anchor, .k = 16});
//   CudaFilterResult kept = filter({.magnitudes = mags_dev.cview() /* A x M */}, stream);
//   // kept.mask (A x M) and kept.indices (n_kept x 2) are device tensors; to_host(kept) copies both.
//
// Every pair gets a key (group, flat index a * M + m, score) and one merge sort (CUB) orders the
// keys by group, then score (largest first), then flat index (lowest first): an exact total
// order, so the result does not depend on the sort's stability or on the GPU. The group is the
// anchor for top_k_per_anchor (each anchor's pairs then fill M consecutive places, best first)
// and 0 / 1 for the anchors taking part / dropped by anchor_ratio for top_ratio_global.
// The anchors taking part come from the CPU kernel's host code (detail::active_anchors).
// The call returns when the result is ready.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <cub/device/device_merge_sort.cuh>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/copy.cuh"
#include "gcl/backend/cuda/device.cuh"
#include "gcl/backend/cuda/stream.cuh"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/surgery/cuda/detail/launch.cuh"
#include "gcl/surgery/filter.hpp"
#include "gcl/surgery/filter_options.hpp"

namespace gcl::surgery {

// The filter's result in device memory, laid out like FilterResult.
using CudaFilterResult = BasicFilterResult<cuda>;

// A host copy of a device result.
inline FilterResult to_host(const CudaFilterResult& result) {
    return FilterResult{gcl::to_host(result.mask), gcl::to_host(result.indices)};
}

namespace cuda_impl {

inline constexpr int filter_threads = 256;
inline constexpr unsigned long long no_invalid_value = ~0ull;

// The sort key of one pair.
template <class T>
struct PairKey {
    index_t group;  // the anchor (top_k_per_anchor), or 0 / 1: anchor taking part / dropped (top_ratio_global)
    index_t flat;   // a * M + m
    T score;        // magnitude * anchor weight
};

// Group ascending, then score descending, then flat index ascending (the lower index wins ties).
template <class T>
struct RankedFirst {
    __host__ __device__ bool operator()(const PairKey<T>& x, const PairKey<T>& y) const {
        if (x.group != y.group) return x.group < y.group;
        if (x.score != y.score) return x.score > y.score;
        return x.flat < y.flat;
    }
};

// Whether a magnitude or weight is acceptable: finite and >= 0 (-0.0 included, as on the CPU).
template <class T>
__host__ __device__ __forceinline__ bool acceptable_value(T v) {
    return isfinite(v) && v >= T(0);
}

// Item e of a rows x cols matrix with contiguous rows `row_stride` apart.
template <class T>
__host__ __device__ __forceinline__ const T& matrix_item(const T* data, index_t cols, index_t row_stride, index_t e) {
    return data[(e / cols) * row_stride + e % cols];
}

// *first = the smallest item index e < rows * cols whose value is not acceptable (atomicMin: the
// answer does not depend on the order of the threads). Anchor weights are a rows x 1 matrix.
template <class T>
__global__ void __launch_bounds__(filter_threads)
    first_invalid_kernel(const T* data, index_t rows, index_t cols, index_t row_stride, unsigned long long* first) {
    const index_t total = rows * cols;
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride)
        if (!acceptable_value(matrix_item(data, cols, row_stride, e))) atomicMin(first, static_cast<unsigned long long>(e));
}

// The key of pair e = a * M + m. The score is the product GradFilter forms (magnitude times
// weight, or the magnitude alone), so scores are bitwise those of the CPU kernel.
template <class T>
__host__ __device__ __forceinline__ PairKey<T> pair_key(index_t e, const T* magnitudes, index_t M,
                                                        index_t magnitude_stride, const T* weights,
                                                        index_t weight_stride, const index_t* active_rank,
                                                        bool per_anchor) {
    const index_t a = e / M;
    const T magnitude = matrix_item(magnitudes, M, magnitude_stride, e);
    PairKey<T> key;
    key.group = per_anchor ? a : (active_rank[a] >= 0 ? 0 : 1);
    key.flat = e;
    key.score = weights != nullptr ? magnitude * weights[a * weight_stride] : magnitude;
    return key;
}

template <class T>
__global__ void __launch_bounds__(filter_threads)
    pair_keys_kernel(const T* magnitudes, index_t A, index_t M, index_t magnitude_stride, const T* weights,
                     index_t weight_stride, const index_t* active_rank, bool per_anchor, PairKey<T>* keys) {
    const index_t total = A * M;
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride)
        keys[e] = pair_key(e, magnitudes, M, magnitude_stride, weights, weight_stride, active_rank, per_anchor);
}

// top_k_per_anchor, item t = a * kk + r (r < kk): sorted place a * M + r holds the r-th best pair
// of anchor a (each anchor's M pairs fill M consecutive places); a kept anchor's pairs go to rows
// active_rank[a] * kk + r of indices.
template <class T>
__host__ __device__ __forceinline__ void write_per_anchor_item(index_t t, const PairKey<T>* sorted, index_t M,
                                                               index_t kk, const index_t* active_rank,
                                                               std::uint8_t* mask, index_t* indices) {
    const index_t a = t / kk, r = t % kk;
    const index_t rank = active_rank[a];
    if (rank < 0) return;
    const index_t flat = sorted[a * M + r].flat;
    const index_t row = rank * kk + r;
    mask[flat] = 1;
    indices[2 * row] = a;
    indices[2 * row + 1] = flat - a * M;
}

template <class T>
__global__ void __launch_bounds__(filter_threads)
    write_per_anchor_kernel(const PairKey<T>* sorted, index_t A, index_t M, index_t kk, const index_t* active_rank,
                            std::uint8_t* mask, index_t* indices) {
    const index_t total = A * kk;
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t t = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride)
        write_per_anchor_item(t, sorted, M, kk, active_rank, mask, indices);
}

// top_ratio_global, item t < keep: the t-th sorted key is the t-th kept pair.
template <class T>
__host__ __device__ __forceinline__ void write_global_item(index_t t, const PairKey<T>* sorted, index_t M,
                                                           std::uint8_t* mask, index_t* indices) {
    const index_t flat = sorted[t].flat;
    mask[flat] = 1;
    indices[2 * t] = flat / M;
    indices[2 * t + 1] = flat % M;
}

template <class T>
__global__ void __launch_bounds__(filter_threads)
    write_global_kernel(const PairKey<T>* sorted, index_t keep, index_t M, std::uint8_t* mask, index_t* indices) {
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t t = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < keep; t += stride)
        write_global_item(t, sorted, M, mask, indices);
}

// The sizes of one filter call: pairs kept per anchor (top_k_per_anchor), number of kept pairs.
struct FilterSizes {
    index_t per_anchor = 0;  // kk = min(k, M)
    index_t kept = 0;
};

inline FilterSizes filter_sizes(index_t A, index_t M, const FilterOptions& options) {
    const index_t active = options.anchor_ratio < 1 ? detail::kept_count(options.anchor_ratio, A) : A;
    FilterSizes sizes;
    sizes.per_anchor = std::min(options.k, M);
    sizes.kept = options.rule == FilterRule::top_k_per_anchor ? active * sizes.per_anchor
                                                              : detail::kept_count(options.ratio, active * M);
    return sizes;
}

// Per anchor: its rank among the anchors taking part (0, 1, ...), or -1 when it is dropped.
inline std::vector<index_t> active_ranks(const std::vector<std::uint8_t>& taking_part) {
    std::vector<index_t> rank(taking_part.size());
    index_t next = 0;
    for (std::size_t a = 0; a < taking_part.size(); ++a) rank[a] = taking_part[a] ? next++ : -1;
    return rank;
}

// Bytes of CUB merge-sort scratch for n keys.
template <class T>
std::size_t sort_scratch_bytes(index_t n, cudaStream_t stream) {
    std::size_t bytes = 0;
    GCL_CUDA_CHECK(cub::DeviceMergeSort::SortKeys(nullptr, bytes, static_cast<PairKey<T>*>(nullptr), n,
                                                  RankedFirst<T>{}, stream));
    return bytes;
}

}  // namespace cuda_impl

namespace detail {
template <class T>
struct FilterPasses<T, cuda> {
    // Device bytes the passes allocate: the sort keys, the sort's scratch and A ranks.
    static std::size_t workspace_bytes(index_t A, index_t M, const FilterOptions& /*options*/) {
        const index_t n = A * M;
        return static_cast<std::size_t>(n) * sizeof(cuda_impl::PairKey<T>) + cuda_impl::sort_scratch_bytes<T>(n, nullptr) +
               static_cast<std::size_t>(A) * sizeof(index_t) + 2 * sizeof(unsigned long long);
    }

    // Runs on `stream`; returns when the result is ready.
    static CudaFilterResult select(const ConstView<T, cuda>& mag, const ConstView<T, cuda>& weights,
                                   const FilterOptions& options, Stream<cuda> stream) {
        const index_t A = mag.dim(0), M = mag.dim(1), n = A * M;
        const bool weighted = weights.data() != nullptr;
        const bool per_anchor = options.rule == FilterRule::top_k_per_anchor;
        const cuda_impl::FilterSizes sizes = cuda_impl::filter_sizes(A, M, options);
        const index_t kk = sizes.per_anchor, kept = sizes.kept;

        // Everything allocated first, then ordered after the zeroing of the new buffers.
        Buffer<cuda_impl::PairKey<T>, cuda> keys(static_cast<std::size_t>(n));
        std::size_t scratch_bytes = cuda_impl::sort_scratch_bytes<T>(n, stream);
        Buffer<unsigned char, cuda> scratch(std::max<std::size_t>(scratch_bytes, 1));
        Buffer<index_t, cuda> active_rank(static_cast<std::size_t>(A));
        Buffer<unsigned long long, cuda> first_invalid(2);
        CudaFilterResult result{Tensor<std::uint8_t, cuda>(Shape{A, M}), Tensor<index_t, cuda>(Shape{kept, 2})};
        cuda_impl::wait_for_current_stream(stream);

        check_values(mag, weights, first_invalid.data(), stream);

        const std::vector<index_t> rank = cuda_impl::active_ranks(active_anchors(weights, A, options, stream));
        cuda_impl::upload(active_rank.data(), rank.data(), rank.size() * sizeof(index_t), stream);

        const int threads = cuda_impl::filter_threads;
        cuda_impl::pair_keys_kernel<T><<<cuda_impl::grid_blocks(n, threads), threads, 0, stream>>>(
            mag.data(), A, M, mag.stride(0), weighted ? weights.data() : nullptr, weighted ? weights.stride(0) : 0,
            active_rank.data(), per_anchor, keys.data());
        GCL_CUDA_CHECK_LAUNCH();
        GCL_CUDA_CHECK(cub::DeviceMergeSort::SortKeys(scratch.data(), scratch_bytes, keys.data(), n,
                                                      cuda_impl::RankedFirst<T>{}, stream));
        if (per_anchor)
            cuda_impl::write_per_anchor_kernel<T><<<cuda_impl::grid_blocks(A * kk, threads), threads, 0, stream>>>(
                keys.data(), A, M, kk, active_rank.data(), result.mask.data(), result.indices.data());
        else
            cuda_impl::write_global_kernel<T><<<cuda_impl::grid_blocks(kept, threads), threads, 0, stream>>>(
                keys.data(), kept, M, result.mask.data(), result.indices.data());
        GCL_CUDA_CHECK_LAUNCH();
        GCL_CUDA_CHECK(cudaStreamSynchronize(stream));
        return result;
    }

    // NaN, Inf or negative values raise gcl::Error naming the first one (weights first), as in GradFilter.
    static void check_values(const ConstView<T, cuda>& mag, const ConstView<T, cuda>& weights,
                             unsigned long long* first_invalid, cudaStream_t stream) {
        const index_t A = mag.dim(0), M = mag.dim(1);
        const int threads = cuda_impl::filter_threads;
        GCL_CUDA_CHECK(cudaMemsetAsync(first_invalid, 0xff, 2 * sizeof(unsigned long long), stream));
        if (weights.data() != nullptr) {
            cuda_impl::first_invalid_kernel<T><<<cuda_impl::grid_blocks(A, threads), threads, 0, stream>>>(
                weights.data(), A, 1, weights.stride(0), first_invalid);
            GCL_CUDA_CHECK_LAUNCH();
        }
        cuda_impl::first_invalid_kernel<T><<<cuda_impl::grid_blocks(A * M, threads), threads, 0, stream>>>(
            mag.data(), A, M, mag.stride(0), first_invalid + 1);
        GCL_CUDA_CHECK_LAUNCH();
        unsigned long long found[2] = {0, 0};
        cuda_impl::download(found, first_invalid, sizeof found, stream);
        if (found[0] != cuda_impl::no_invalid_value) {
            const auto a = static_cast<index_t>(found[0]);
            fail("GradFilter", "anchor weight ", a, " is ", value_at(weights.data() + a * weights.stride(0)),
                 "; weights must be finite and >= 0");
        }
        if (found[1] != cuda_impl::no_invalid_value) {
            const auto e = static_cast<index_t>(found[1]);
            const index_t a = e / M, m = e % M;
            fail("GradFilter", "magnitude [", a, ", ", m, "] is ", value_at(mag.data() + a * mag.stride(0) + m),
                 "; magnitudes must be finite and >= 0");
        }
    }

    static T value_at(const T* device) {
        T v{};
        cuda_detail::copy_to_host(&v, device, sizeof(T));
        return v;
    }

    // Per anchor, 1 when it takes part: all, or (anchor_ratio < 1) those GradFilter picks by weight.
    static std::vector<std::uint8_t> active_anchors(const ConstView<T, cuda>& weights, index_t A,
                                                    const FilterOptions& options, cudaStream_t stream) {
        if (options.anchor_ratio >= 1) return std::vector<std::uint8_t>(static_cast<std::size_t>(A), 1);
        Tensor<T> host(Shape{A});
        const std::size_t pitch = static_cast<std::size_t>(A > 1 ? weights.stride(0) : 1) * sizeof(T);
        GCL_CUDA_CHECK(cudaMemcpy2DAsync(host.data(), sizeof(T), weights.data(), pitch, sizeof(T),
                                         static_cast<std::size_t>(A), cudaMemcpyDeviceToHost, stream));
        GCL_CUDA_CHECK(cudaStreamSynchronize(stream));
        return detail::active_anchors<T>(host.cview(), A, options.anchor_ratio);
    }
};
}  // namespace detail

// The CUDA GradFilter under its former name.
template <class T>
using CudaGradFilter = GradFilter<T, cuda>;

}  // namespace gcl::surgery
