#pragma once
// CPU random fills: element i of the contiguous output from counter first + i, by the rules of
// backend/detail/random_items.hpp. Which thread draws an element never changes its value.
#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/detail/random_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct RandomFill<cpu> {
    template <class T>
    static void uniform(TensorView<T, cpu> out, const RandomDraws& draws, T lo, T hi) {
        for_each(out, [&](index_t i) { return detail::uniform_item(draws, i, lo, hi); });
    }

    template <class T>
    static void normal(TensorView<T, cpu> out, const RandomDraws& draws, T mean, T std) {
        for_each(out, [&](index_t i) { return detail::normal_item(draws, i, mean, std); });
    }

    template <class T>
    static void dropout_mask(TensorView<T, cpu> out, const RandomDraws& draws, double p, T keep_scale) {
        for_each(out, [&](index_t i) { return detail::dropout_mask_item(draws, i, p, keep_scale); });
    }

private:
    // A Philox block (ten rounds of two 32-bit products) is worth about 64 element operations.
    static constexpr index_t draw_cost = 64;

    template <class T, class Item>
    static void for_each(TensorView<T, cpu> out, const Item& item) {
        T* o = out.data();
        const index_t n = out.numel();
#pragma omp parallel for schedule(dynamic, cpu_detail::elementwise_chunk) if (cpu_detail::worth_parallel(n, draw_cost))
        for (index_t i = 0; i < n; ++i) o[i] = item(i);
    }
};

}  // namespace gcl::backend
