#pragma once
// L2 normalisation, gcl's one implementation, in two modes:
//
// eps mode, as PyTorch's F.normalize(x, p=2, dim, eps): y = x / max(||x||_2, eps) along `dim`;
// eps guards all-zero (or tiny) vectors, which are divided by eps instead of their norm.
//
//   ops::l2_normalize_forward(z, e.view(), 1);          // rows of z [N, D] to unit length
//   ops::l2_normalize_backward(de, z, dz.view(), 1);    // z: the forward's input
//
// strict mode, for embeddings that must have a direction: u_i = z_i / ||z_i|| for the rows of a
// host matrix, and a zero row, a non-finite value or a norm beyond T's range is a gcl::Error
// naming the row (the contrastive losses use it).
//
//   ops::l2_normalize_rows_strict(z, u.view(), norms.view(), "SupCon");
//   ops::l2_normalize_rows_strict_backward(u, norms, grad.view());   // dL/du in, dL/dz out
//
// Norms are computed after scaling by the largest magnitude, so vectors with norms near 1e200 or
// 1e-160 (double) normalise as accurately as unit ones. y may be x itself; dx may be dy or x.
#include "gcl/backend/cpu/normalize.hpp"
#include "gcl/ops/common.hpp"

#include <cmath>
#include <limits>
#include <string_view>

namespace gcl::ops {

inline constexpr double default_normalize_eps = 1e-12;  // PyTorch's default

template <class T, class Device>
void l2_normalize_forward(Input<T, Device> x, TensorView<T, Device> y, int dim, double eps = default_normalize_eps) {
    constexpr std::string_view op = "ops::l2_normalize_forward";
    const int d = resolve_dim(op, x.shape(), dim);
    if (!(eps > 0)) fail(op, "eps must be positive, got ", eps);
    check_same_shape(op, x.shape(), y.shape(), "x", "y");
    require_contiguous(op, x, "x");
    require_contiguous(op, y, "y");
    require_disjoint_or_same(op, y, x, "y", "x");
    const DimSplit s = split_at(x.shape(), d);
    backend::Normalize<Device>::l2_forward(x, y, s.outer, s.extent, s.inner, eps);
}

template <class T, class Device>
void l2_normalize_backward(Input<T, Device> dy, Input<T, Device> x, TensorView<T, Device> dx, int dim,
                           double eps = default_normalize_eps) {
    constexpr std::string_view op = "ops::l2_normalize_backward";
    const int d = resolve_dim(op, x.shape(), dim);
    if (!(eps > 0)) fail(op, "eps must be positive, got ", eps);
    check_same_shape(op, dy.shape(), x.shape(), "dy", "x");
    check_same_shape(op, dx.shape(), x.shape(), "dx", "x");
    require_contiguous(op, dy, "dy");
    require_contiguous(op, x, "x");
    require_contiguous(op, dx, "dx");
    require_disjoint_or_same(op, dx, dy, "dx", "dy");
    require_disjoint_or_same(op, dx, x, "dx", "x");
    const DimSplit s = split_at(x.shape(), d);
    backend::Normalize<Device>::l2_backward(dy, x, dx, s.outer, s.extent, s.inner, eps);
}

// Strict mode: u = z / ||z|| row by row (z, u: A x D host views), norms receives ||z_i|| (A).
template <class T>
void l2_normalize_rows_strict(ConstView<T> z, TensorView<T> u, TensorView<T> norms,
                              std::string_view op = "ops::l2_normalize_rows_strict") {
    check_rank(op, z.shape(), 2, "embeddings");
    check_same_shape(op, z.shape(), u.shape(), "embeddings", "normalised embeddings");
    check(norms.rank() == 1 && norms.dim(0) == z.dim(0), op, "norms must have shape [", z.dim(0), "], got ",
          norms.shape());
    const index_t A = z.dim(0), D = z.dim(1);
    for (index_t i = 0; i < A; ++i)
        for (index_t d = 0; d < D; ++d)
            check(std::isfinite(z(i, d)), op, "embedding ", i, " holds a non-finite value (", z(i, d), ") at ", d);
    const Tensor<T> row_major = Tensor<T>::copy_of(z);
    for (index_t i = 0; i < A; ++i) {
        const double n = backend::Normalize<cpu>::line_norm(row_major.data(), i * D, 1, D);
        check(n > 0, op, "embedding ", i, " is zero and cannot be L2-normalised");
        check(n <= static_cast<double>(std::numeric_limits<T>::max()), op, "the norm of embedding ", i, " (", n,
              ") overflows the element type; scale the embeddings down");
        norms(i) = static_cast<T>(n);
        for (index_t d = 0; d < D; ++d) u(i, d) = static_cast<T>(static_cast<double>(row_major(i, d)) / n);
    }
}

// In place: grad holds dL/du on entry and dL/dz = (dL/du - u (u . dL/du)) / ||z|| on return.
template <class T>
void l2_normalize_rows_strict_backward(ConstView<T> u, ConstView<T> norms, TensorView<T> grad) {
    constexpr std::string_view op = "ops::l2_normalize_rows_strict_backward";
    check_rank(op, u.shape(), 2, "normalised embeddings");
    check_same_shape(op, u.shape(), grad.shape(), "normalised embeddings", "grad");
    check(norms.rank() == 1 && norms.dim(0) == u.dim(0), op, "norms must have shape [", u.dim(0), "], got ",
          norms.shape());
    const index_t A = u.dim(0), D = u.dim(1);
    for (index_t i = 0; i < A; ++i) {
        double dot = 0;
        for (index_t d = 0; d < D; ++d) dot += static_cast<double>(u(i, d)) * static_cast<double>(grad(i, d));
        const double n = static_cast<double>(norms(i));
        for (index_t d = 0; d < D; ++d)
            grad(i, d) = static_cast<T>((static_cast<double>(grad(i, d)) - static_cast<double>(u(i, d)) * dot) / n);
    }
}

}  // namespace gcl::ops
