#include <catch2/catch.hpp>

#include <cmath>

#include "gcl/core/random.hpp"
#include "gcl/testing/gradcheck.hpp"

TEST_CASE("check_gradient accepts a correct gradient and reports a wrong one", "[core][gradcheck]") {
    gcl::Tensor<double> x(gcl::Shape{3, 4});
    gcl::Rng rng(11);
    gcl::fill_uniform<double>(x.view(), rng, -1.0, 1.0);
    // f(x) = sum sin(x_i) * x_i^2
    auto f = [&] {
        double s = 0;
        for (gcl::index_t i = 0; i < x.numel(); ++i) s += std::sin(x.data()[i]) * x.data()[i] * x.data()[i];
        return s;
    };
    gcl::Tensor<double> grad(x.shape());
    for (gcl::index_t i = 0; i < x.numel(); ++i) {
        const double v = x.data()[i];
        grad.data()[i] = std::cos(v) * v * v + 2 * v * std::sin(v);
    }
    const gcl::Tensor<double> before = x;
    auto ok = gcl::testing::check_gradient(f, x.view(), grad.cview());
    CHECK(ok.passed);
    CHECK(ok.checked == 12);
    for (gcl::index_t i = 0; i < x.numel(); ++i) CHECK(x.data()[i] == before.data()[i]);  // restored

    grad.data()[7] += 1e-3;
    auto bad = gcl::testing::check_gradient(f, x.view(), grad.cview());
    CHECK_FALSE(bad.passed);
    CHECK(bad.worst_index == 7);
    CHECK(bad.message.find("FAILED") != std::string::npos);
    CHECK(bad.message.find("worst element 7") != std::string::npos);

    gcl::testing::GradCheckOptions sampled;
    sampled.max_elements = 4;
    auto some = gcl::testing::check_gradient(f, x.view(), grad.cview(), sampled);
    CHECK(some.checked == 4);

    gcl::Tensor<double> wrong_shape(gcl::Shape{4, 3});
    CHECK_THROWS_AS(gcl::testing::check_gradient(f, x.view(), wrong_shape.cview()), gcl::Error);
}
