#pragma once
// Per-type tolerances for comparing results computed in different orders (blocked vs naive
// sums, CPU vs GPU, gcl vs PyTorch). Used by gcl's own tests; available to users' tests.
#include <algorithm>
#include <cmath>

namespace gcl::testing {

template <class T>
struct tolerance;

template <>
struct tolerance<float> {
    static constexpr double rtol = 1e-4;
    static constexpr double atol = 1e-5;
};

template <>
struct tolerance<double> {
    static constexpr double rtol = 1e-10;
    static constexpr double atol = 1e-12;
};

// True when |a - b| <= atol + rtol * max(|a|, |b|).
inline bool close(double a, double b, double rtol, double atol) {
    return std::abs(a - b) <= atol + rtol * std::max(std::abs(a), std::abs(b));
}

template <class T>
bool close(double a, double b) {
    return close(a, b, tolerance<T>::rtol, tolerance<T>::atol);
}

}  // namespace gcl::testing
