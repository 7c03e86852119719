#pragma once
// Test inputs for the surgery kernels: gradients that conflict, with seeded noise.
#include <cstdint>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::testing {

// K x P gradients: noise plus a shared direction whose coefficient per row is drawn from
// [-2, 2], so a good share of the pairs conflict and PCGrad has work to do.
template <class T>
Tensor<T> conflicting_gradients(index_t K, index_t P, std::uint64_t seed) {
    Tensor<T> g(Shape{K, P});
    Rng rng(seed);
    fill_normal<T>(g.view(), rng);
    Tensor<T> base(Shape{P});
    fill_normal<T>(base.view(), rng);
    for (index_t k = 0; k < K; ++k) {
        const T a = static_cast<T>(rng.uniform(-2.0, 2.0));
        for (index_t p = 0; p < P; ++p) g(k, p) += a * base(p);
    }
    return g;
}

}  // namespace gcl::testing
