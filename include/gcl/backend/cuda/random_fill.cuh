#pragma once
// backend::RandomFill<cuda>: the CPU's random fills (backend/cpu/random_fill.hpp) on device
// memory. Each is a grid-stride kernel around the same per-element rule
// (backend/detail/random_items.hpp), and the rule's arithmetic is pinned on the device (no fused
// multiply-adds; log and cos correctly rounded, core/box_muller.hpp), so a fill gives the CPU's
// numbers bit for bit. The kernels run on the current stream and return without waiting.
#include "gcl/backend/cuda/elementwise.cuh"
#include "gcl/backend/detail/random_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::cuda_detail {

template <class T>
struct UniformFillItem {
    T* out;
    backend::RandomDraws draws;
    T lo, hi;
    GCL_DEVICE void operator()(index_t i) const { out[i] = backend::detail::uniform_item(draws, i, lo, hi); }
};
template <class T>
struct NormalFillItem {
    T* out;
    backend::RandomDraws draws;
    T mean, std;
    GCL_DEVICE void operator()(index_t i) const { out[i] = backend::detail::normal_item(draws, i, mean, std); }
};
template <class T>
struct DropoutMaskItem {
    T* out;
    backend::RandomDraws draws;
    double p;
    T keep_scale;
    GCL_DEVICE void operator()(index_t i) const {
        out[i] = backend::detail::dropout_mask_item(draws, i, p, keep_scale);
    }
};

}  // namespace gcl::cuda_detail

namespace gcl::backend {

template <>
struct RandomFill<cuda> {
    template <class T>
    static void uniform(TensorView<T, cuda> out, const RandomDraws& draws, T lo, T hi) {
        cuda_detail::for_each_item(out.numel(), cuda_detail::UniformFillItem<T>{out.data(), draws, lo, hi});
    }

    template <class T>
    static void normal(TensorView<T, cuda> out, const RandomDraws& draws, T mean, T std) {
        cuda_detail::for_each_item(out.numel(), cuda_detail::NormalFillItem<T>{out.data(), draws, mean, std});
    }

    template <class T>
    static void dropout_mask(TensorView<T, cuda> out, const RandomDraws& draws, double p, T keep_scale) {
        cuda_detail::for_each_item(out.numel(), cuda_detail::DropoutMaskItem<T>{out.data(), draws, p, keep_scale});
    }
};

}  // namespace gcl::backend
