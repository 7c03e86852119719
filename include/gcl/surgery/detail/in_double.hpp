#pragma once
// What the two mitigators (K x P and batched) do with rows near the range of the element type or
// beyond it, on host memory: the Gram matrix and the combination with every product and sum in
// double, and the error that names the first non-finite value. Each row is reached through
// row_of(k), a pointer to its first element (a host copy where the data live on a device).
#include <cmath>
#include <limits>
#include <string_view>

#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::surgery::detail {

// Raises gcl::Error naming the first non-finite value among rows 0..K-1 (P values each), if
// there is one; `where` starts the message ("" or "sample n, ").
template <class RowOf>
void fail_on_non_finite_value(std::string_view op, std::string_view where, RowOf row_of, index_t K, index_t P) {
    for (index_t k = 0; k < K; ++k) {
        const auto* row = row_of(k);
        for (index_t p = 0; p < P; ++p)
            if (!std::isfinite(row[p]))
                fail(op, where, "gradient row ", k, " holds a non-finite value (", row[p], ") at column ", p);
    }
}

inline bool all_finite(const double* values, index_t n) {
    for (index_t i = 0; i < n; ++i)
        if (!std::isfinite(values[i])) return false;
    return true;
}

// gram[i K + j] = row_i . row_j (rows of P values), every product and sum in double.
template <class RowOf>
void gram_in_double(RowOf row_of, index_t K, index_t P, double* gram) {
    for (index_t i = 0; i < K; ++i)
        for (index_t j = i; j < K; ++j) {
            const auto* a = row_of(i);
            const auto* b = row_of(j);
            double q = 0;
#pragma omp simd reduction(+ : q)
            for (index_t p = 0; p < P; ++p) q += static_cast<double>(a[p]) * static_cast<double>(b[p]);
            gram[i * K + j] = gram[j * K + i] = q;
        }
}

// A column of w^T G that leaves the range of the element type: where, and its value.
struct OutOfRange {
    index_t column = -1;  // -1: every column fits
    double value = 0;
};

// out = w^T G (K rows of P values) accumulated in double, for combinations that could overflow
// T: every column is computed and checked before any is written, so a result that does not fit
// leaves out (which may be one of the rows) as it was, and the first such column is returned.
template <class T, class RowOf>
OutOfRange combine_in_double(RowOf row_of, index_t K, index_t P, const double* w, T* out) {
    const auto column = [&](index_t p) {
        double s = 0;
        for (index_t k = 0; k < K; ++k) s += w[k] * static_cast<double>(row_of(k)[p]);
        return s;
    };
    for (index_t p = 0; p < P; ++p) {
        const double s = column(p);
        if (!(std::abs(s) <= static_cast<double>(std::numeric_limits<T>::max()))) return {p, s};
    }
    for (index_t p = 0; p < P; ++p) out[p] = static_cast<T>(column(p));
    return {};
}

}  // namespace gcl::surgery::detail
