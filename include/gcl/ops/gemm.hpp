#pragma once
// General matrix product: c = alpha op(a) op(b) + beta c, op(m) = m or its transpose.
//
//   ops::gemm(a, b, c.view());                                  // c = a b
//   ops::gemm(a, b, c.view(), {.transpose_b = true, .beta = 1}); // c += a b^T
//
// Matrices are rank-2 views whose rows are contiguous (a narrowed column block is fine); to
// use a transposed matrix, pass the untransposed view and set the flag instead of passing
// view.transpose(0, 1). c must not overlap a or b.
#include "gcl/backend/cpu/gemm.hpp"
#include "gcl/ops/common.hpp"

namespace gcl::ops {

struct GemmOptions {
    bool transpose_a = false;
    bool transpose_b = false;
    double alpha = 1;
    double beta = 0;  // 0: c is overwritten and never read
};

namespace detail {
template <class T, class Device>
void check_gemm_matrix(const TensorView<T, Device>& m, std::string_view name) {
    if (m.rank() != 2) fail("ops::gemm", name, " must be a matrix, got shape ", m.shape());
    if (m.dim(1) > 1 && m.stride(1) != 1)
        fail("ops::gemm", "rows of ", name, " (shape ", m.shape(), ", strides ", m.stride(0), ", ", m.stride(1),
             ") are not contiguous; pass the untransposed matrix and set the transpose flag");
    if (m.dim(0) > 1 && m.stride(0) < m.dim(1))
        fail("ops::gemm", name, " of shape ", m.shape(), " has overlapping rows (row stride ", m.stride(0), ")");
}
}  // namespace detail

template <class T, class Device>
void gemm(Input<T, Device> a, Input<T, Device> b, TensorView<T, Device> c, const GemmOptions& options = {}) {
    constexpr std::string_view op = "ops::gemm";
    detail::check_gemm_matrix(a, "a");
    detail::check_gemm_matrix(b, "b");
    detail::check_gemm_matrix(c, "c");
    const index_t m = options.transpose_a ? a.dim(1) : a.dim(0);
    const index_t k = options.transpose_a ? a.dim(0) : a.dim(1);
    const index_t kb = options.transpose_b ? b.dim(1) : b.dim(0);
    const index_t n = options.transpose_b ? b.dim(0) : b.dim(1);
    const char* ta = options.transpose_a ? "^T" : "";
    const char* tb = options.transpose_b ? "^T" : "";
    if (k != kb)
        fail(op, "inner dimensions differ: a", ta, " is ", m, "x", k, " (a is ", a.shape(), ") but b", tb, " is ", kb,
             "x", n, " (b is ", b.shape(), ")");
    if (c.dim(0) != m || c.dim(1) != n)
        fail(op, "c is ", c.shape(), " but a", ta, " b", tb, " is [", m, ", ", n, "] (a is ", a.shape(), ", b is ",
             b.shape(), ")");
    require_disjoint(op, c, a, "c", "a");
    require_disjoint(op, c, b, "c", "b");
    backend::Gemm<Device>::run(a, options.transpose_a, b, options.transpose_b, c, static_cast<T>(options.alpha),
                               static_cast<T>(options.beta));
}

}  // namespace gcl::ops
