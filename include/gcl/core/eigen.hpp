#pragma once
// Eigen interop: zero-copy Eigen::Map views over host tensor memory.
#include <Eigen/Core>
#include <type_traits>

#include "gcl/core/tensor_view.hpp"

namespace gcl {

template <class T>
using EigenRowMajor = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A rank-2 host view as a row-major Eigen matrix; rows may be padded (outer stride) but the
// elements of a row must be contiguous.
template <class T>
auto as_eigen(TensorView<T, cpu> v) {
    using Matrix = std::conditional_t<std::is_const_v<T>, const EigenRowMajor<T>, EigenRowMajor<T>>;
    using Map = Eigen::Map<Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
    check_rank("as_eigen", v.shape(), 2, "view");
    check(v.dim(1) <= 1 || v.stride(1) == 1, "as_eigen", "rows of the view of shape ", v.shape(),
          " are not contiguous (column stride ", v.stride(1), ")");
    return Map(v.data(), v.dim(0), v.dim(1), Eigen::OuterStride<>(v.stride(0)));
}

// Any contiguous host view as an Eigen column vector of all its elements.
template <class T>
auto as_eigen_vector(TensorView<T, cpu> v) {
    using Vector = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, 1>;
    using Map = Eigen::Map<std::conditional_t<std::is_const_v<T>, const Vector, Vector>>;
    check(v.is_contiguous(), "as_eigen_vector", "view of shape ", v.shape(), " must be contiguous");
    return Map(v.data(), v.numel());
}

}  // namespace gcl
