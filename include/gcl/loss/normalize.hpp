#pragma once
// Row-wise L2 normalisation of embeddings, u_i = z_i / ||z_i||, and its backward pass
// dL/dz_i = (dL/du_i - u_i (u_i . dL/du_i)) / ||z_i||. Used by the contrastive losses when they
// normalise for the caller.
#include <cmath>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::loss {

// u = z / ||z|| row by row (z: A x D); norms receives ||z_i|| (A). A zero or non-finite row is an error.
template <class T>
void l2_normalize_rows(ConstView<T> z, TensorView<T> u, TensorView<T> norms, std::string_view op = "l2_normalize_rows") {
    check_rank(op, z.shape(), 2, "embeddings");
    const index_t A = z.dim(0), D = z.dim(1);
    for (index_t i = 0; i < A; ++i) {
        double s = 0;
        for (index_t d = 0; d < D; ++d) {
            const T v = z(i, d);
            check(std::isfinite(v), op, "embedding ", i, " holds a non-finite value (", v, ") at ", d);
            s += static_cast<double>(v) * static_cast<double>(v);
        }
        check(s > 0, op, "embedding ", i, " is zero and cannot be L2-normalised");
        const double n = std::sqrt(s);
        norms(i) = static_cast<T>(n);
        for (index_t d = 0; d < D; ++d) u(i, d) = static_cast<T>(static_cast<double>(z(i, d)) / n);
    }
}

// In place: grad holds dL/du on entry and dL/dz on return (u: A x D, norms: A).
template <class T>
void l2_normalize_rows_backward(ConstView<T> u, ConstView<T> norms, TensorView<T> grad) {
    const index_t A = u.dim(0), D = u.dim(1);
    for (index_t i = 0; i < A; ++i) {
        double dot = 0;
        for (index_t d = 0; d < D; ++d) dot += static_cast<double>(u(i, d)) * static_cast<double>(grad(i, d));
        const double inv = 1.0 / static_cast<double>(norms(i));
        for (index_t d = 0; d < D; ++d)
            grad(i, d) = static_cast<T>((static_cast<double>(grad(i, d)) - static_cast<double>(u(i, d)) * dot) * inv);
    }
}

}  // namespace gcl::loss
