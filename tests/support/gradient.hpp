#pragma once
// Gradient check of an op's backward against sum(w * forward(x)) in double, with seeded draws.
#include <catch2/catch.hpp>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/testing/gradcheck.hpp"
#include "gcl/testing/projection.hpp"

namespace gcl_test {

template <class Forward, class Backward>
void require_gradient(gcl::Tensor<double>& x, const gcl::Shape& output_shape, Forward&& forward, Backward&& backward,
                      gcl::Rng& rng, gcl::index_t max_elements = 0) {
    gcl::testing::GradCheckOptions options;
    options.max_elements = max_elements;
    options.atol = 1e-7;
    const auto result = gcl::testing::check_projected_gradient(x.view(), output_shape, forward, backward, rng, options);
    INFO(result.message);
    REQUIRE(result.passed);
}

}  // namespace gcl_test
