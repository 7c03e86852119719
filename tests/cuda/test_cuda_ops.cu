// ops:: on the GPU against the same ops on the CPU: GEMM (cuBLAS), activations and bias.
// Skipped (exit 77) without a GPU.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "gcl/cuda.cuh"
#include "gcl/ops/activation.hpp"
#include "gcl/ops/bias.hpp"
#include "gcl/ops/gemm.hpp"
#include "gcl/testing/projection.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;

namespace {
template <class T>
double tolerance() {
    return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}
template <class T>
void check_close(const Tensor<T>& expected, const Tensor<T>& got, double rtol) {
    REQUIRE(expected.shape() == got.shape());
    for (index_t i = 0; i < got.numel(); ++i)
        CHECK(static_cast<double>(got.data()[i]) ==
              Approx(static_cast<double>(expected.data()[i])).epsilon(rtol).margin(rtol));
}
}  // namespace

TEMPLATE_TEST_CASE("ops::gemm on cuda equals the CPU for every transpose, alpha, beta and padded rows", "[cuda][ops]",
                   float, double) {
    using T = TestType;
    gcl::Rng rng(21);
    const index_t m = 37, n = 19, k = 45;
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (double beta : {0.0, 1.0, -0.5}) {
                INFO("transpose_a " << ta << " transpose_b " << tb << " beta " << beta);
                const Tensor<T> a = gcl::testing::random_tensor<T>(ta ? Shape{k, m} : Shape{m, k}, rng);
                // b is a column block of a wider matrix: its rows are padded.
                const Tensor<T> wide = gcl::testing::random_tensor<T>(tb ? Shape{n, k + 7} : Shape{k, n + 7}, rng);
                Tensor<T> c = gcl::testing::random_tensor<T>(Shape{m, n}, rng);
                if (beta == 0) c(0, 0) = std::numeric_limits<T>::quiet_NaN();  // beta 0 must not read c
                const gcl::ops::GemmOptions o{.transpose_a = ta, .transpose_b = tb, .alpha = 2.0, .beta = beta};
                const auto b_host = wide.cview().narrow(1, 0, tb ? k : n);

                Tensor<T> expected = c;
                gcl::ops::gemm<T>(a.cview(), b_host, expected.view(), o);

                const Tensor<T, gcl::cuda> a_dev = gcl::to_device(a);
                const Tensor<T, gcl::cuda> wide_dev = gcl::to_device(wide);
                Tensor<T, gcl::cuda> c_dev = gcl::to_device(c);
                gcl::ops::gemm<T>(a_dev.cview(), wide_dev.cview().narrow(1, 0, tb ? k : n), c_dev.view(), o);
                check_close(expected, gcl::to_host(c_dev), tolerance<T>() * 10);
            }
    // k = 0: c = beta c.
    const Tensor<T> empty_a(Shape{3, 0}), empty_b(Shape{0, 4});
    Tensor<T> c = gcl::testing::random_tensor<T>(Shape{3, 4}, rng);
    Tensor<T> expected = c;
    gcl::ops::gemm<T>(empty_a.cview(), empty_b.cview(), expected.view(), {.beta = 0.5});
    Tensor<T, gcl::cuda> c_dev = gcl::to_device(c);
    gcl::ops::gemm<T>(gcl::to_device(empty_a).cview(), gcl::to_device(empty_b).cview(), c_dev.view(), {.beta = 0.5});
    check_close(expected, gcl::to_host(c_dev), tolerance<T>());
}

TEMPLATE_TEST_CASE("ops activations on cuda equal the CPU bit for bit", "[cuda][ops]", float, double) {
    using T = TestType;
    gcl::Rng rng(22);
    const Tensor<T> x = gcl::testing::random_tensor<T>(Shape{4, 3, 33, 17}, rng);
    const Tensor<T> dy = gcl::testing::random_tensor<T>(x.shape(), rng);
    const auto x_dev = gcl::to_device(x);
    const auto dy_dev = gcl::to_device(dy);
    Tensor<T> y(x.shape()), dx(x.shape());
    Tensor<T, gcl::cuda> y_dev(x.shape()), dx_dev(x.shape());
    const auto equal = [](const Tensor<T>& a, const Tensor<T>& b) {
        for (index_t i = 0; i < a.numel(); ++i) CHECK(a.data()[i] == b.data()[i]);
    };
    gcl::ops::leaky_relu_forward<T>(x.cview(), y.view(), T(0.01));
    gcl::ops::leaky_relu_forward<T>(x_dev.cview(), y_dev.view(), T(0.01));
    equal(y, gcl::to_host(y_dev));
    gcl::ops::leaky_relu_backward<T>(dy.cview(), x.cview(), dx.view(), T(0.01));
    gcl::ops::leaky_relu_backward<T>(dy_dev.cview(), x_dev.cview(), dx_dev.view(), T(0.01));
    equal(dx, gcl::to_host(dx_dev));
    gcl::ops::relu_forward<T>(x.cview(), y.view());
    gcl::ops::relu_forward<T>(x_dev.cview(), y_dev.view());
    equal(y, gcl::to_host(y_dev));
    gcl::ops::relu_backward<T>(dy.cview(), x.cview(), dx.view());
    gcl::ops::relu_backward<T>(dy_dev.cview(), x_dev.cview(), dx_dev.view());
    equal(dx, gcl::to_host(dx_dev));
}

TEMPLATE_TEST_CASE("ops bias on cuda equals the CPU", "[cuda][ops]", float, double) {
    using T = TestType;
    gcl::Rng rng(23);
    const Tensor<T> bias = gcl::testing::random_tensor<T>(Shape{6}, rng);
    const Tensor<T> y0 = gcl::testing::random_tensor<T>(Shape{5, 6, 9, 11}, rng);
    Tensor<T> y = y0;
    Tensor<T, gcl::cuda> y_dev = gcl::to_device(y0);
    gcl::ops::add_bias<T>(bias.cview(), y.view(), 1);
    gcl::ops::add_bias<T>(gcl::to_device(bias).cview(), y_dev.view(), 1);
    check_close(y, gcl::to_host(y_dev), 0);

    for (gcl::WriteMode mode : {gcl::WriteMode::overwrite, gcl::WriteMode::accumulate}) {
        Tensor<T> db = gcl::testing::random_tensor<T>(Shape{6}, rng);
        Tensor<T, gcl::cuda> db_dev = gcl::to_device(db);
        gcl::ops::bias_backward<T>(y0.cview(), db.view(), 1, mode);
        gcl::ops::bias_backward<T>(gcl::to_device(y0).cview(), db_dev.view(), 1, mode);
        check_close(db, gcl::to_host(db_dev), tolerance<T>());
    }
}
