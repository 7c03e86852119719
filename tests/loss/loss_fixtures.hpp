#pragma once
// Loading the PyTorch reference values (scripts/fixtures/make_loss_fixtures.py) and comparing.
#include <cmath>
#include <string>

#include "gcl/core/npy.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::testing {

template <class T>
Tensor<T> loss_fixture(const std::string& name) {
    return load_npy<T>(std::string(GCL_TEST_FIXTURES) + "/loss/" + name + ".npy");
}

// Casts a double tensor to T.
template <class T>
Tensor<T> cast(const Tensor<double>& x) {
    Tensor<T> out(x.shape());
    for (index_t i = 0; i < x.numel(); ++i) out.data()[i] = static_cast<T>(x.data()[i]);
    return out;
}

// Largest |a - b| / (atol + rtol |b|) over all elements (<= 1 means within tolerance).
template <class A, class B>
double worst_ratio(const A* a, const B* b, index_t n, double rtol, double atol) {
    double worst = 0;
    for (index_t i = 0; i < n; ++i) {
        const double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
        worst = std::max(worst, std::abs(x - y) / (atol + rtol * std::abs(y)));
        if (!std::isfinite(x)) return INFINITY;
    }
    return worst;
}

}  // namespace gcl::testing
