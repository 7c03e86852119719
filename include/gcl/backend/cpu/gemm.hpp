#pragma once
// CPU GEMM: Eigen products over maps of the caller's memory (no copies). Eigen runs the product
// on OpenMP threads itself when called outside a parallel region.
#include <Eigen/Core>

#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/eigen.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct Gemm<cpu> {
    // c = alpha op(a) op(b) + beta c, where op transposes when asked. Rows of every matrix are
    // contiguous (rows may be padded). With beta == 0, c is not read (NaN in c does not leak).
    template <class T>
    static void run(ConstView<T, cpu> a, bool transpose_a, ConstView<T, cpu> b, bool transpose_b,
                    TensorView<T, cpu> c, T alpha, T beta) {
        auto C = as_eigen(c);
        if (beta == T(0))
            C.setZero();
        else if (beta != T(1))
            C *= beta;
        const auto A = as_eigen(a);
        const auto B = as_eigen(b);
        if (A.size() == 0 || B.size() == 0 || alpha == T(0)) return;
        if (!transpose_a && !transpose_b)
            C.noalias() += alpha * A * B;
        else if (transpose_a && !transpose_b)
            C.noalias() += alpha * A.transpose() * B;
        else if (!transpose_a && transpose_b)
            C.noalias() += alpha * A * B.transpose();
        else
            C.noalias() += alpha * A.transpose() * B.transpose();
    }
};

}  // namespace gcl::backend
