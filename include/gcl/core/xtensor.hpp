#pragma once
// xtensor interop: zero-copy xt::adapt views over host tensor memory, and back.
#include <cstddef>
#include <type_traits>
#include <vector>

#include <xtensor/xadapt.hpp>

#include "gcl/core/tensor.hpp"

namespace gcl {

// A host view (any strides) as an xtensor expression over the same memory.
template <class T>
auto as_xtensor(TensorView<T, cpu> v) {
    std::vector<std::size_t> shape(v.shape().begin(), v.shape().end());
    std::vector<std::ptrdiff_t> strides(v.strides().begin(), v.strides().begin() + v.rank());
    // Size of the adapted memory: one past the furthest element the view can reach.
    std::size_t extent = v.numel() == 0 ? 0 : 1;
    for (int d = 0; d < v.rank() && extent; ++d) extent += static_cast<std::size_t>((v.dim(d) - 1) * v.stride(d));
    return xt::adapt(v.data(), extent, xt::no_ownership(), shape, strides);
}

// A host view over the memory of a row-major xtensor container (xt::xarray, xt::xtensor).
template <class E>
auto view_of(E& container) {
    using T = std::remove_reference_t<decltype(*container.data())>;
    check(container.layout() == xt::layout_type::row_major, "view_of", "the xtensor container must be row-major");
    Shape s(container.shape().begin(), container.shape().end());
    return TensorView<T, cpu>(container.data(), s);
}

}  // namespace gcl
