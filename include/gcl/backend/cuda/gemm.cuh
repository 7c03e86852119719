#pragma once
// CUDA GEMM through cuBLAS. gcl's matrices are row-major with contiguous rows (rows may be
// padded); cuBLAS is column-major, where a row-major X reads as X^T. So c = op(a) op(b) is
// computed as c^T = op(b)^T op(a)^T: the same transpose flags, the operands swapped, m and n
// swapped, and each matrix's row stride as its leading dimension. With beta == 0 cuBLAS does not
// read c. Float products run in full FP32 (the handle keeps cuBLAS's default math mode, which
// uses no TF32), so they agree with the CPU within float rounding; cuBLAS picks its algorithm by
// shape and device, and repeats bit for bit on one device.
#include <algorithm>
#include <limits>
#include <type_traits>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/handles.cuh"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct Gemm<cuda> {
    template <class T>
    static void run(ConstView<T, cuda> a, bool transpose_a, ConstView<T, cuda> b, bool transpose_b,
                    TensorView<T, cuda> c, T alpha, T beta) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cuBLAS GEMM takes float or double");
        const index_t m = c.dim(0), n = c.dim(1);
        if (m == 0 || n == 0) return;
        const index_t k = transpose_a ? a.dim(0) : a.dim(1);
        constexpr index_t most = std::numeric_limits<int>::max();
        check(m <= most && n <= most && k <= most, "Gemm<cuda>", "a product of ", m, " x ", k, " by ", k, " x ", n,
              " exceeds cuBLAS's int");
        const cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
        const cublasOperation_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
        cublasHandle_t handle = cuda_detail::cublas_handle();
        const int lda = leading(a), ldb = leading(b), ldc = leading(c);
        if constexpr (std::is_same_v<T, float>)
            GCL_CUBLAS_CHECK(cublasSgemm(handle, op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k),
                                         &alpha, b.data(), ldb, a.data(), lda, &beta, c.data(), ldc));
        else
            GCL_CUBLAS_CHECK(cublasDgemm(handle, op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k),
                                         &alpha, b.data(), ldb, a.data(), lda, &beta, c.data(), ldc));
    }

private:
    // The leading dimension of a row-major matrix read column-major: its row stride, at least
    // its row length and 1 (a one-row view may carry any stride).
    template <class V>
    static int leading(const V& x) {
        const index_t row = std::max<index_t>(x.dim(1), 1);
        const index_t ld = x.dim(0) > 1 ? x.stride(0) : row;
        check(ld <= index_t{std::numeric_limits<int>::max()}, "Gemm<cuda>", "row stride ", ld, " exceeds cuBLAS's int");
        return static_cast<int>(std::max(ld, row));
    }
};

}  // namespace gcl::backend
