// ops:: on the GPU against the same ops on the CPU: GEMM (cuBLAS), linear, activations, bias,
// pooling, reductions, concat and split, and conversion (softmax, normalisation and the contrasts: test_contrast_cuda.cu).
// Skipped (exit 77) without a GPU.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "gcl/cuda.cuh"
#include "gcl/ops/activation.hpp"
#include "gcl/ops/batch_norm.hpp"
#include "gcl/ops/bias.hpp"
#include "gcl/ops/concat.hpp"
#include "gcl/ops/conv2d.hpp"
#include "gcl/ops/conv_transpose2d.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/finite.hpp"
#include "gcl/ops/gemm.hpp"
#include "gcl/ops/linear.hpp"
#include "gcl/ops/pooling.hpp"
#include "gcl/ops/reduce.hpp"
#include "gcl/testing/projection.hpp"
#include "support/cuda_parity.hpp"
#include "support/tensors.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;

using gcl_test::check_bitwise;
using gcl_test::check_close;
using gcl_test::tolerance;

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

TEMPLATE_TEST_CASE("ops batch norm on cuda equals the CPU, with and without a reduce of the sums", "[cuda][ops]", float,
                   double) {
    using T = TestType;
    gcl::Rng rng(24);
    const Shape shape{4, 5, 7, 9};
    const Tensor<T> x = gcl::testing::random_tensor<T>(shape, rng, T(-1), T(3));
    const Tensor<T> dy = gcl::testing::random_tensor<T>(shape, rng);
    const Tensor<T> gamma = gcl::testing::random_tensor<T>(Shape{5}, rng, T(0.5), T(1.5));
    const Tensor<T> beta = gcl::testing::random_tensor<T>(Shape{5}, rng);
    const double rtol = tolerance<T>() * 10;
    // A reduce that changes the sums (as a sum over ranks would): every call doubles them.
    int calls_cpu = 0, calls_cuda = 0;
    const auto doubling = [](int& calls) {
        return [&calls](double* v, index_t n) {
            ++calls;
            for (index_t i = 0; i < n; ++i) v[i] *= 2;
        };
    };
    for (bool synchronised : {false, true}) {
        INFO("synchronised " << synchronised);
        Tensor<T> y(shape), rm(Shape{5}), rv(Shape{5}), sm(Shape{5}), si(Shape{5});
        Tensor<T, gcl::cuda> y_d(shape), rm_d(Shape{5}), rv_d(Shape{5}), sm_d(Shape{5}), si_d(Shape{5});
        const auto x_d = gcl::to_device(x), dy_d = gcl::to_device(dy), gamma_d = gcl::to_device(gamma),
                   beta_d = gcl::to_device(beta);
        if (synchronised) {
            gcl::ops::batch_norm_forward_train<T>(x.cview(), gamma.cview(), beta.cview(), y.view(), rm.view(), rv.view(),
                                                  sm.view(), si.view(), {}, doubling(calls_cpu));
            gcl::ops::batch_norm_forward_train<T>(x_d.cview(), gamma_d.cview(), beta_d.cview(), y_d.view(), rm_d.view(),
                                                  rv_d.view(), sm_d.view(), si_d.view(), {}, doubling(calls_cuda));
        } else {
            gcl::ops::batch_norm_forward_train<T>(x.cview(), gamma.cview(), beta.cview(), y.view(), rm.view(), rv.view(),
                                                  sm.view(), si.view());
            gcl::ops::batch_norm_forward_train<T>(x_d.cview(), gamma_d.cview(), beta_d.cview(), y_d.view(), rm_d.view(),
                                                  rv_d.view(), sm_d.view(), si_d.view());
        }
        check_close(y, gcl::to_host(y_d), rtol);
        check_close(rm, gcl::to_host(rm_d), rtol);
        check_close(rv, gcl::to_host(rv_d), rtol);
        check_close(sm, gcl::to_host(sm_d), rtol);
        check_close(si, gcl::to_host(si_d), rtol);

        Tensor<T> dx(shape), dgamma(Shape{5}), dbeta(Shape{5});
        Tensor<T, gcl::cuda> dx_d(shape), dgamma_d(Shape{5}), dbeta_d(Shape{5});
        if (synchronised) {
            gcl::ops::batch_norm_backward_train<T>(dy.cview(), x.cview(), gamma.cview(), sm.cview(), si.cview(), dx.view(),
                                                   dgamma.view(), dbeta.view(), gcl::WriteMode::overwrite,
                                                   doubling(calls_cpu));
            gcl::ops::batch_norm_backward_train<T>(dy_d.cview(), x_d.cview(), gamma_d.cview(), sm_d.cview(), si_d.cview(),
                                                   dx_d.view(), dgamma_d.view(), dbeta_d.view(),
                                                   gcl::WriteMode::overwrite, doubling(calls_cuda));
        } else {
            gcl::ops::batch_norm_backward_train<T>(dy.cview(), x.cview(), gamma.cview(), sm.cview(), si.cview(), dx.view(),
                                                   dgamma.view(), dbeta.view());
            gcl::ops::batch_norm_backward_train<T>(dy_d.cview(), x_d.cview(), gamma_d.cview(), sm_d.cview(), si_d.cview(),
                                                   dx_d.view(), dgamma_d.view(), dbeta_d.view());
        }
        check_close(dx, gcl::to_host(dx_d), rtol);
        check_close(dgamma, gcl::to_host(dgamma_d), rtol);
        check_close(dbeta, gcl::to_host(dbeta_d), rtol);

        // Evaluation mode, from the running estimates, accumulating into the parameter gradients.
        gcl::ops::batch_norm_forward_eval<T>(x.cview(), gamma.cview(), beta.cview(), rm.cview(), rv.cview(), y.view());
        gcl::ops::batch_norm_forward_eval<T>(x_d.cview(), gamma_d.cview(), beta_d.cview(), rm_d.cview(), rv_d.cview(),
                                             y_d.view());
        check_close(y, gcl::to_host(y_d), rtol);
        gcl::ops::batch_norm_backward_eval<T>(dy.cview(), x.cview(), gamma.cview(), rm.cview(), rv.cview(), dx.view(),
                                              dgamma.view(), dbeta.view(), {}, gcl::WriteMode::accumulate);
        gcl::ops::batch_norm_backward_eval<T>(dy_d.cview(), x_d.cview(), gamma_d.cview(), rm_d.cview(), rv_d.cview(),
                                              dx_d.view(), dgamma_d.view(), dbeta_d.view(), {}, gcl::WriteMode::accumulate);
        check_close(dx, gcl::to_host(dx_d), rtol);
        check_close(dgamma, gcl::to_host(dgamma_d), rtol);
        check_close(dbeta, gcl::to_host(dbeta_d), rtol);
    }
    CHECK(calls_cpu == 3);
    CHECK(calls_cuda == 3);
}

TEMPLATE_TEST_CASE("ops convolutions on cuda (cuDNN) equal the CPU", "[cuda][ops][conv]", float, double) {
    using T = TestType;
    gcl::Rng rng(25);
    const double rtol = std::is_same_v<T, float> ? 1e-4 : 1e-11;
    const gcl::Conv2dParams windows[] = {{}, {.stride = {2, 2}, .padding = {1, 1}}, {.padding = {2, 1}, .dilation = {2, 1}}};
    for (const gcl::Conv2dParams& p : windows) {
        INFO("stride " << p.stride[0] << " padding " << p.padding[0] << "," << p.padding[1] << " dilation "
                       << p.dilation[0]);
        const Shape xs{3, 4, 13, 11}, ws{6, 4, 3, 3};
        const Shape ys = gcl::ops::conv2d_output_shape(xs, ws, p);
        const Tensor<T> x = gcl::testing::random_tensor<T>(xs, rng);
        const Tensor<T> w = gcl::testing::random_tensor<T>(ws, rng);
        const Tensor<T> dy = gcl::testing::random_tensor<T>(ys, rng);
        const auto x_d = gcl::to_device(x), w_d = gcl::to_device(w), dy_d = gcl::to_device(dy);

        Tensor<T> y(ys);
        Tensor<T, gcl::cuda> y_d(ys);
        gcl::ops::conv2d_forward<T>(x.cview(), w.cview(), y.view(), p);
        gcl::ops::conv2d_forward<T>(x_d.cview(), w_d.cview(), y_d.view(), p);
        check_close(y, gcl::to_host(y_d), rtol);

        Tensor<T> dx(xs);
        Tensor<T, gcl::cuda> dx_d(xs);
        gcl::ops::conv2d_backward_data<T>(dy.cview(), w.cview(), dx.view(), p);
        gcl::ops::conv2d_backward_data<T>(dy_d.cview(), w_d.cview(), dx_d.view(), p);
        check_close(dx, gcl::to_host(dx_d), rtol);

        for (gcl::WriteMode mode : {gcl::WriteMode::overwrite, gcl::WriteMode::accumulate}) {
            Tensor<T> dw = gcl::testing::random_tensor<T>(ws, rng);
            Tensor<T, gcl::cuda> dw_d = gcl::to_device(dw);
            gcl::ops::conv2d_backward_weight<T>(dy.cview(), x.cview(), dw.view(), p, mode);
            gcl::ops::conv2d_backward_weight<T>(dy_d.cview(), x_d.cview(), dw_d.view(), p, mode);
            check_close(dw, gcl::to_host(dw_d), rtol);
        }

        // K = 2 stacked passes after one forward.
        Shape stacked_y = ys, stacked_x = xs;
        stacked_y[0] *= 2;
        stacked_x[0] *= 2;
        const Tensor<T> dy2 = gcl::testing::random_tensor<T>(stacked_y, rng);
        Tensor<T> dx2(stacked_x), dw0(ws), dw1(ws);
        Tensor<T, gcl::cuda> dx2_d(stacked_x), dw0_d(ws), dw1_d(ws);
        const gcl::TensorView<T, gcl::cpu> targets[] = {dw0.view(), dw1.view()};
        const gcl::TensorView<T, gcl::cuda> targets_d[] = {dw0_d.view(), dw1_d.view()};
        gcl::ops::conv2d_backward_stacked<T>(dy2.cview(), x.cview(), w.cview(), dx2.view(), targets, p);
        gcl::ops::conv2d_backward_stacked<T>(gcl::to_device(dy2).cview(), x_d.cview(), w_d.cview(), dx2_d.view(),
                                             targets_d, p);
        check_close(dx2, gcl::to_host(dx2_d), rtol);
        check_close(dw0, gcl::to_host(dw0_d), rtol);
        check_close(dw1, gcl::to_host(dw1_d), rtol);

        // A second call of the same shape reuses its plan and gives the same bits.
        Tensor<T, gcl::cuda> again(ys);
        gcl::ops::conv2d_forward<T>(x_d.cview(), w_d.cview(), again.view(), p);
        const Tensor<T> first = gcl::to_host(y_d), second = gcl::to_host(again);
        for (index_t i = 0; i < first.numel(); ++i) CHECK(first.data()[i] == second.data()[i]);
    }

    // The transposed convolution is the same three passes, adjoint.
    const gcl::ConvTranspose2dParams up{.stride = {2, 2}};
    const Shape xs{2, 6, 5, 7}, ws{6, 3, 2, 2};
    const Tensor<T> x = gcl::testing::random_tensor<T>(xs, rng);
    const Tensor<T> w = gcl::testing::random_tensor<T>(ws, rng);
    const Shape ys = gcl::ops::conv_transpose2d_output_shape(xs, ws, up);
    Tensor<T> y(ys);
    Tensor<T, gcl::cuda> y_d(ys);
    gcl::ops::conv_transpose2d_forward<T>(x.cview(), w.cview(), y.view(), up);
    gcl::ops::conv_transpose2d_forward<T>(gcl::to_device(x).cview(), gcl::to_device(w).cview(), y_d.view(), up);
    check_close(y, gcl::to_host(y_d), rtol);
}

TEMPLATE_TEST_CASE("ops convolutions on cuda write zeros where a sum has no terms, as the CPU does", "[cuda][ops][conv]",
                   float, double) {
    using T = TestType;
    gcl::Rng rng(30);
    const auto filled_with_nan = [](const Shape& shape) {
        Tensor<T> t(shape);
        std::fill(t.data(), t.data() + t.numel(), std::numeric_limits<T>::quiet_NaN());
        return t;
    };
    // op(a, b, out) on the host tensors and on their device copies, `out` starting from the same
    // values on both: the results equal bit for bit.
    const auto on_both_devices = [](const auto& op, const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& out) {
        Tensor<T, gcl::cuda> out_d = gcl::to_device(out);
        op(a.cview(), b.cview(), out.view());
        op(gcl::to_device(a).cview(), gcl::to_device(b).cview(), out_d.view());
        check_bitwise(out, gcl::to_host(out_d));
    };
    // No input channels: y = 0 (not what the output held before).
    Tensor<T> y = filled_with_nan(Shape{2, 3, 3, 3});
    on_both_devices([](auto x, auto w, auto out) { gcl::ops::conv2d_forward<T>(x, w, out, {}); },
                    Tensor<T>(Shape{2, 0, 5, 5}), Tensor<T>(Shape{3, 0, 3, 3}), y);
    CHECK(y.data()[0] == T(0));

    // No filters: dx = 0. No images: dw = 0 when overwritten, unchanged when accumulated.
    Tensor<T> dx = filled_with_nan(Shape{2, 2, 5, 5});
    on_both_devices([](auto dy, auto w, auto out) { gcl::ops::conv2d_backward_data<T>(dy, w, out, {}); },
                    Tensor<T>(Shape{2, 0, 3, 3}), Tensor<T>(Shape{0, 2, 3, 3}), dx);
    CHECK(dx.data()[0] == T(0));
    const Tensor<T> no_images(Shape{0, 2, 5, 5}), dy_none(Shape{0, 3, 3, 3});
    for (gcl::WriteMode mode : {gcl::WriteMode::accumulate, gcl::WriteMode::overwrite}) {
        INFO("accumulate " << (mode == gcl::WriteMode::accumulate));
        Tensor<T> dw = gcl::testing::random_tensor<T>(Shape{3, 2, 3, 3}, rng);
        const Tensor<T> dw_before = gcl_test::copy(dw.cview());
        on_both_devices([mode](auto dy, auto x, auto out) { gcl::ops::conv2d_backward_weight<T>(dy, x, out, {}, mode); },
                        dy_none, no_images, dw);
        if (mode == gcl::WriteMode::overwrite) CHECK(dw.data()[0] == T(0));
        else check_bitwise(dw_before, dw);
    }
}

TEMPLATE_TEST_CASE("ops max pooling on cuda equals the CPU bit for bit, overlapping windows included", "[cuda][ops]",
                   float, double) {
    using T = TestType;
    gcl::Rng rng(24);
    struct Case {
        Shape x;
        gcl::Pool2dParams params;
    };
    const Case cases[] = {
        {{4, 8, 16, 16}, {}},
        {{2, 3, 7, 9}, {}},
        {{2, 2, 9, 8}, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}},
        {{3, 5, 21, 19}, {.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}}},
        {{2, 1, 6, 7}, {.kernel = {2, 3}, .stride = {1, 2}, .padding = {1, 1}}},
    };
    for (const Case& c : cases) {
        INFO("x " << c.x);
        Tensor<T> x = gcl::testing::random_tensor<T>(c.x, rng);
        for (index_t e = 0; e < x.numel(); ++e) x.data()[e] = std::round(x.data()[e] * T(2));  // ties
        x.data()[3] = std::numeric_limits<T>::quiet_NaN();
        const Shape ys = gcl::ops::max_pool2d_output_shape(c.x, c.params);
        Tensor<T> y(ys);
        Tensor<index_t> indices(ys);
        gcl::ops::max_pool2d_forward<T>(x.cview(), y.view(), indices.view(), c.params);
        const auto x_dev = gcl::to_device(x);
        Tensor<T, gcl::cuda> y_dev(ys);
        Tensor<index_t, gcl::cuda> indices_dev(ys);
        gcl::ops::max_pool2d_forward<T>(x_dev.cview(), y_dev.view(), indices_dev.view(), c.params);
        check_bitwise(y, gcl::to_host(y_dev));
        const Tensor<index_t> indices_back = gcl::to_host(indices_dev);
        for (index_t e = 0; e < indices.numel(); ++e) CHECK(indices.data()[e] == indices_back.data()[e]);

        const Tensor<T> dy = gcl::testing::random_tensor<T>(ys, rng);
        Tensor<T> dx(c.x);
        gcl::ops::max_pool2d_backward<T>(dy.cview(), indices.cview(), dx.view(), c.params);
        Tensor<T, gcl::cuda> dx_dev(c.x);
        gcl::ops::max_pool2d_backward<T>(gcl::to_device(dy).cview(), indices_dev.cview(), dx_dev.view(), c.params);
        check_bitwise(dx, gcl::to_host(dx_dev));
    }
    // An index outside its plane is an error, as on the CPU.
    Tensor<index_t> bad(Shape{1, 1, 2, 2});
    bad.data()[2] = 16;
    Tensor<T, gcl::cuda> dx_dev(Shape{1, 1, 4, 4});
    CHECK_THROWS_WITH(gcl::ops::max_pool2d_backward<T>(gcl::to_device(Tensor<T>(Shape{1, 1, 2, 2})).cview(),
                                                       gcl::to_device(bad).cview(), dx_dev.view()),
                      Catch::Contains("outside their input plane"));
}

TEMPLATE_TEST_CASE("ops global average pooling on cuda equals the CPU", "[cuda][ops]", float, double) {
    using T = TestType;
    gcl::Rng rng(25);
    const Tensor<T> x = gcl::testing::random_tensor<T>(Shape{3, 5, 17, 23}, rng);
    Tensor<T> y(Shape{3, 5});
    Tensor<T, gcl::cuda> y_dev(Shape{3, 5});
    gcl::ops::global_avg_pool2d_forward<T>(x.cview(), y.view());
    gcl::ops::global_avg_pool2d_forward<T>(gcl::to_device(x).cview(), y_dev.view());
    check_close(y, gcl::to_host(y_dev), tolerance<T>());
    const Tensor<T> first_run = gcl::to_host(y_dev);
    gcl::ops::global_avg_pool2d_forward<T>(gcl::to_device(x).cview(), y_dev.view());
    check_bitwise(first_run, gcl::to_host(y_dev));
    Tensor<T> dx(x.shape());
    Tensor<T, gcl::cuda> dx_dev(x.shape());
    gcl::ops::global_avg_pool2d_backward<T>(y.cview(), dx.view());
    gcl::ops::global_avg_pool2d_backward<T>(gcl::to_device(y).cview(), dx_dev.view());
    check_bitwise(dx, gcl::to_host(dx_dev));
}

TEMPLATE_TEST_CASE("ops reductions on cuda match the CPU: totals within rounding, the rest bit for bit", "[cuda][ops]",
                   float, double) {
    using T = TestType;
    gcl::Rng rng(26);
    for (index_t n : {index_t{1}, index_t{1000}, index_t{300001}}) {
        INFO("n " << n);
        Tensor<T> a = gcl::testing::random_tensor<T>(Shape{n}, rng);
        const Tensor<T> b = gcl::testing::random_tensor<T>(Shape{n}, rng);
        const auto a_dev = gcl::to_device(a);
        const auto b_dev = gcl::to_device(b);
        CHECK(static_cast<double>(gcl::ops::sum(a_dev)) ==
              Approx(static_cast<double>(gcl::ops::sum(a))).epsilon(tolerance<T>()).margin(tolerance<T>()));
        CHECK(static_cast<double>(gcl::ops::mean(a_dev)) ==
              Approx(static_cast<double>(gcl::ops::mean(a))).epsilon(tolerance<T>()).margin(tolerance<T>()));
        CHECK(static_cast<double>(gcl::ops::dot(a_dev, b_dev)) ==
              Approx(static_cast<double>(gcl::ops::dot(a, b))).epsilon(tolerance<T>()).margin(tolerance<T>()));
        const double total = gcl::backend::Reduce<gcl::cuda>::sum<T>(a_dev.cview());
        const double products = gcl::backend::Reduce<gcl::cuda>::dot<T>(a_dev.cview(), b_dev.cview());
        for (int run = 0; run < 3; ++run) {  // fixed order: every run gives the same bits
            CHECK(gcl::backend::Reduce<gcl::cuda>::sum<T>(a_dev.cview()) == total);
            CHECK(gcl::backend::Reduce<gcl::cuda>::dot<T>(a_dev.cview(), b_dev.cview()) == products);
        }
        // row_sums: each row's sum() bit for bit, one copy back.
        Tensor<T> rows(Shape{3, n});
        std::copy(a.data(), a.data() + n, rows.data());
        std::copy(b.data(), b.data() + n, rows.data() + n);
        for (index_t i = 0; i < n; ++i) rows.data()[2 * n + i] = a.data()[i] * b.data()[i];
        const auto rows_dev = gcl::to_device(rows);
        const std::array<double, 3> row_totals = gcl::backend::Reduce<gcl::cuda>::row_sums<3, T>(rows_dev.cview());
        for (index_t r = 0; r < 3; ++r)
            CHECK(row_totals[static_cast<std::size_t>(r)] ==
                  gcl::backend::Reduce<gcl::cuda>::sum<T>(rows_dev.cview().select(0, r)));
        CHECK_THROWS_WITH((gcl::backend::Reduce<gcl::cuda>::row_sums<2, T>(rows_dev.cview())),
                          Catch::Matchers::Contains("Reduce<cuda>::row_sums") && Catch::Matchers::Contains("[2, n]"));
        CHECK(gcl::ops::max(a_dev) == gcl::ops::max(a));
        CHECK(gcl::ops::first_nonfinite(a_dev) == -1);
        a.data()[n - 1] = std::numeric_limits<T>::infinity();
        a.data()[n / 2] = std::numeric_limits<T>::quiet_NaN();
        const auto bad_dev = gcl::to_device(a);
        CHECK(gcl::ops::first_nonfinite(bad_dev) == gcl::ops::first_nonfinite(a));
        CHECK(std::isnan(gcl::ops::max(bad_dev)));
    }

    Tensor<T> x = gcl::testing::random_tensor<T>(Shape{4, 9, 13}, rng);
    for (index_t e = 0; e < x.numel(); ++e) x.data()[e] = std::round(x.data()[e] * T(3));  // ties
    x.data()[40] = std::numeric_limits<T>::quiet_NaN();
    const auto x_dev = gcl::to_device(x);
    for (int dim : {0, 1, 2}) {
        INFO("dim " << dim);
        Shape reduced = x.shape();
        reduced[dim] = 1;
        Tensor<T> out(reduced), dx(x.shape());
        Tensor<index_t> arg(reduced);
        Tensor<T, gcl::cuda> out_dev(reduced), dx_dev(x.shape());
        Tensor<index_t, gcl::cuda> arg_dev(reduced);
        gcl::ops::sum<T>(x.cview(), out.view(), dim);
        gcl::ops::sum<T>(x_dev.cview(), out_dev.view(), dim);
        check_bitwise(out, gcl::to_host(out_dev));
        gcl::ops::mean<T>(x.cview(), out.view(), dim);
        gcl::ops::mean<T>(x_dev.cview(), out_dev.view(), dim);
        check_bitwise(out, gcl::to_host(out_dev));
        gcl::ops::max<T>(x.cview(), out.view(), arg.view(), dim);
        gcl::ops::max<T>(x_dev.cview(), out_dev.view(), arg_dev.view(), dim);
        check_bitwise(out, gcl::to_host(out_dev));
        const Tensor<index_t> arg_back = gcl::to_host(arg_dev);
        for (index_t e = 0; e < arg.numel(); ++e) CHECK(arg.data()[e] == arg_back.data()[e]);

        const Tensor<T> dy = gcl::testing::random_tensor<T>(reduced, rng);
        const auto dy_dev = gcl::to_device(dy);
        gcl::ops::mean_backward<T>(dy.cview(), dx.view(), dim);
        gcl::ops::mean_backward<T>(dy_dev.cview(), dx_dev.view(), dim);
        check_bitwise(dx, gcl::to_host(dx_dev));
        gcl::ops::max_backward<T>(dy.cview(), arg.cview(), dx.view(), dim);
        gcl::ops::max_backward<T>(dy_dev.cview(), arg_dev.cview(), dx_dev.view(), dim);
        check_bitwise(dx, gcl::to_host(dx_dev));
    }
}

TEMPLATE_TEST_CASE("ops linear forward and backward on cuda equal the CPU, accumulating too", "[cuda][ops]", float,
                   double) {
    using T = TestType;
    gcl::Rng rng(27);
    const Tensor<T> x = gcl::testing::random_tensor<T>(Shape{13, 21}, rng);
    const Tensor<T> w = gcl::testing::random_tensor<T>(Shape{6, 21}, rng);
    const Tensor<T> bias = gcl::testing::random_tensor<T>(Shape{6}, rng);
    const Tensor<T> dy = gcl::testing::random_tensor<T>(Shape{13, 6}, rng);
    const auto x_dev = gcl::to_device(x), w_dev = gcl::to_device(w), bias_dev = gcl::to_device(bias),
               dy_dev = gcl::to_device(dy);

    Tensor<T> y(Shape{13, 6}), dx(x.shape());
    Tensor<T, gcl::cuda> y_dev(y.shape()), dx_dev(x.shape());
    gcl::ops::linear_forward<T>(x.cview(), w.cview(), y.view());
    gcl::ops::linear_forward<T>(x_dev.cview(), w_dev.cview(), y_dev.view());
    check_close(y, gcl::to_host(y_dev), tolerance<T>() * 10);
    gcl::ops::linear_forward<T>(x.cview(), w.cview(), bias.cview(), y.view());
    gcl::ops::linear_forward<T>(x_dev.cview(), w_dev.cview(), bias_dev.cview(), y_dev.view());
    check_close(y, gcl::to_host(y_dev), tolerance<T>() * 10);
    gcl::ops::linear_backward_data<T>(dy.cview(), w.cview(), dx.view());
    gcl::ops::linear_backward_data<T>(dy_dev.cview(), w_dev.cview(), dx_dev.view());
    check_close(dx, gcl::to_host(dx_dev), tolerance<T>() * 10);

    // Gradients accumulate onto what is there: start both from the same non-zero values.
    Tensor<T> dw = gcl::testing::random_tensor<T>(w.shape(), rng), db = gcl::testing::random_tensor<T>(bias.shape(), rng);
    auto dw_dev = gcl::to_device(dw), db_dev = gcl::to_device(db);
    for (gcl::WriteMode mode : {gcl::WriteMode::accumulate, gcl::WriteMode::overwrite}) {
        INFO("accumulate " << (mode == gcl::WriteMode::accumulate));
        gcl::ops::linear_backward_weight<T>(dy.cview(), x.cview(), dw.view(), mode);
        gcl::ops::linear_backward_weight<T>(dy_dev.cview(), x_dev.cview(), dw_dev.view(), mode);
        check_close(dw, gcl::to_host(dw_dev), tolerance<T>() * 10);
        gcl::ops::linear_backward_bias<T>(dy.cview(), db.view(), mode);
        gcl::ops::linear_backward_bias<T>(dy_dev.cview(), db_dev.view(), mode);
        check_close(db, gcl::to_host(db_dev), tolerance<T>() * 10);
    }
}

TEMPLATE_TEST_CASE("ops concat and split on cuda give the CPU's bits along every dimension, strided parts too",
                   "[cuda][ops][concat]", float, double) {
    using T = TestType;
    gcl::Rng rng(28);
    for (int d : {0, 1, 2, 3}) {
        INFO("dim " << d);
        Shape sa{2, 3, 4, 5}, sb = sa;
        sb[d] = 2;
        Shape so = sa;
        so[d] = sa[d] + sb[d];
        const Tensor<T> a = gcl::testing::random_tensor<T>(sa, rng);
        // b is read through a transposed view of a tensor laid out the other way round.
        Shape sb_t = sb;
        std::swap(sb_t[2], sb_t[3]);
        const Tensor<T> b_t = gcl::testing::random_tensor<T>(sb_t, rng);
        const auto a_dev = gcl::to_device(a), b_t_dev = gcl::to_device(b_t);

        Tensor<T> out(so);
        Tensor<T, gcl::cuda> out_dev(so);
        gcl::ops::concat<T>({a.cview(), b_t.cview().transpose(2, 3)}, out.view(), d);
        gcl::ops::concat<T>({a_dev.cview(), b_t_dev.cview().transpose(2, 3)}, out_dev.view(), d);
        check_bitwise(out, gcl::to_host(out_dev));

        Tensor<T> a_back(sa), b_back(sb);
        Tensor<T, gcl::cuda> a_back_dev(sa), b_back_dev(sb);
        gcl::ops::split(out, {a_back.view(), b_back.view()}, d);
        gcl::ops::split(out_dev, {a_back_dev.view(), b_back_dev.view()}, d);
        check_bitwise(a_back, gcl::to_host(a_back_dev));
        check_bitwise(b_back, gcl::to_host(b_back_dev));
        check_bitwise(a, a_back);
    }
    // The device's checks are the CPU's: the same message for a part that does not fit.
    Tensor<T, gcl::cuda> a_dev(Shape{2, 3, 4, 4}), wrong_dev(Shape{2, 2, 5, 4}), out_dev(Shape{2, 5, 4, 4});
    CHECK_THROWS_WITH(gcl::ops::concat<T>({a_dev.cview(), wrong_dev.cview()}, out_dev.view()),
                      Catch::Matchers::Contains("ops::concat") && Catch::Matchers::Contains("[2, 2, 5, 4]") &&
                          Catch::Matchers::Contains("[2, 5, 4, 4]"));
}

TEST_CASE("ops::convert on cuda casts float and double as the CPU does", "[cuda][ops]") {
    gcl::Rng rng(29);
    const Tensor<double> x = gcl::testing::random_tensor<double>(Shape{7, 33}, rng);
    Tensor<float> narrowed(x.shape());
    Tensor<float, gcl::cuda> narrowed_dev(x.shape());
    gcl::ops::convert<double, float>(x.cview(), narrowed.view());
    gcl::ops::convert<double, float>(gcl::to_device(x).cview(), narrowed_dev.view());
    check_bitwise(narrowed, gcl::to_host(narrowed_dev));
    Tensor<double> widened(x.shape());
    Tensor<double, gcl::cuda> widened_dev(x.shape());
    gcl::ops::convert<float, double>(narrowed.cview(), widened.view());
    gcl::ops::convert<float, double>(gcl::to_device(narrowed).cview(), widened_dev.view());
    check_bitwise(widened, gcl::to_host(widened_dev));
}
