#include "gcl/ops/activation.hpp"
#include "gcl/ops/batch_norm.hpp"
#include "gcl/ops/normalize.hpp"
#include "gcl/ops/softmax.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

#include <array>
#include <limits>

using namespace gcl_test;
namespace ops = gcl::ops;
using gcl::ConstView;
using gcl::TensorView;

// ---------------------------------------------------------------------------------------------
// Batch normalisation

namespace {

struct BatchNormReference {
    Tensor<double> y, mean, biased_var, unbiased_var;
};

// Batch statistics per channel (dimension 1) and the normalised output, by definition.
BatchNormReference naive_batch_norm(const Tensor<double>& x, const Tensor<double>& gamma, const Tensor<double>& beta,
                                    double eps) {
    const index_t C = x.dim(1), inner = x.numel() / (x.dim(0) * C), count = x.dim(0) * inner;
    BatchNormReference r{Tensor<double>(x.shape()), Tensor<double>(Shape{C}), Tensor<double>(Shape{C}),
                         Tensor<double>(Shape{C})};
    auto at = [&](index_t n, index_t c, index_t i) { return (n * C + c) * inner + i; };
    for (index_t c = 0; c < C; ++c) {
        double s = 0;
        for (index_t n = 0; n < x.dim(0); ++n)
            for (index_t i = 0; i < inner; ++i) s += x.data()[at(n, c, i)];
        const double mean = s / count;
        double q = 0;
        for (index_t n = 0; n < x.dim(0); ++n)
            for (index_t i = 0; i < inner; ++i) q += (x.data()[at(n, c, i)] - mean) * (x.data()[at(n, c, i)] - mean);
        r.mean(c) = mean;
        r.biased_var(c) = q / count;
        r.unbiased_var(c) = q / (count - 1);
        for (index_t n = 0; n < x.dim(0); ++n)
            for (index_t i = 0; i < inner; ++i)
                r.y.data()[at(n, c, i)] = gamma(c) * (x.data()[at(n, c, i)] - mean) / std::sqrt(q / count + eps) + beta(c);
    }
    return r;
}

const Shape batch_norm_shapes[] = {{4, 3, 5, 6}, {6, 5}, {3, 2, 1, 7}, {2, 4, 3, 3, 2}, {1, 2, 3, 3}};

}  // namespace

TEMPLATE_TEST_CASE("batch norm in training uses batch statistics and updates running ones like PyTorch",
                   "[ops][batch_norm]", float, double) {
    using T = TestType;
    gcl::Rng rng(301);
    for (const Shape& shape : batch_norm_shapes) {
        DYNAMIC_SECTION("x " << shape) {
            const index_t C = shape[1];
            const auto x = random<T>(shape, rng, -2, 3);
            const auto gamma = random<T>(Shape{C}, rng, 0.5, 1.5);
            const auto beta = random<T>(Shape{C}, rng);
            const auto rm0 = random<T>(Shape{C}, rng);
            const auto rv0 = random<T>(Shape{C}, rng, 0.5, 2);
            const ops::BatchNormParams params{.momentum = 0.3, .eps = 1e-3};
            const auto ref = naive_batch_norm(cast<double>(x), cast<double>(gamma), cast<double>(beta), params.eps);

            Tensor<T> y(shape), rm = rm0, rv = rv0, mean(Shape{C}), invstd(Shape{C});
            ops::batch_norm_forward_train(x, gamma, beta, y.view(), rm.view(), rv.view(), mean.view(), invstd.view(),
                                          params);
            require_close(y, ref.y);
            require_close(mean, ref.mean);
            Tensor<double> expected_invstd(Shape{C}), expected_rm(Shape{C}), expected_rv(Shape{C});
            for (index_t c = 0; c < C; ++c) {
                expected_invstd(c) = 1 / std::sqrt(ref.biased_var(c) + params.eps);
                expected_rm(c) = 0.7 * static_cast<double>(rm0(c)) + 0.3 * ref.mean(c);
                expected_rv(c) = 0.7 * static_cast<double>(rv0(c)) + 0.3 * ref.unbiased_var(c);
            }
            require_close(invstd, expected_invstd);
            require_close(rm, expected_rm);
            require_close(rv, expected_rv);

            // In place: y is x.
            auto inplace = x;
            ops::batch_norm_forward_train(inplace, gamma, beta, inplace.view(), rm.view(), rv.view(), mean.view(),
                                          invstd.view(), params);
            require_close(inplace, ref.y);
        }
    }
}

TEMPLATE_TEST_CASE("batch norm in evaluation uses the running statistics", "[ops][batch_norm]", float, double) {
    using T = TestType;
    gcl::Rng rng(302);
    const Shape shape{3, 4, 5, 2};
    const auto x = random<T>(shape, rng, -2, 3);
    const auto gamma = random<T>(Shape{4}, rng, 0.5, 1.5);
    const auto beta = random<T>(Shape{4}, rng);
    const auto rm = random<T>(Shape{4}, rng);
    const auto rv = random<T>(Shape{4}, rng, 0.5, 2);
    Tensor<T> y(shape);
    ops::batch_norm_forward_eval(x, gamma, beta, rm, rv, y.view());
    Tensor<double> expected(shape);
    for (index_t i = 0; i < x.numel(); ++i) {
        const index_t c = (i / 10) % 4;
        expected.data()[i] = static_cast<double>(gamma(c)) * (static_cast<double>(x.data()[i]) - static_cast<double>(rm(c))) /
                                 std::sqrt(static_cast<double>(rv(c)) + 1e-5) +
                             static_cast<double>(beta(c));
    }
    require_close(y, expected);
}

TEST_CASE("batch norm gradients pass the finite-difference check", "[ops][batch_norm][gradcheck]") {
    gcl::Rng rng(303);
    for (const Shape& shape : batch_norm_shapes) {
        DYNAMIC_SECTION("x " << shape) {
            const index_t C = shape[1];
            auto x = random<double>(shape, rng, -2, 3);
            auto gamma = random<double>(Shape{C}, rng, 0.5, 1.5);
            auto beta = random<double>(Shape{C}, rng);
            Tensor<double> rm(Shape{C}), rv(Shape{C}, 1.0), mean(Shape{C}), invstd(Shape{C});
            const ops::BatchNormParams params{.eps = 1e-3};
            auto train = [&](TensorView<double> y) {
                ops::batch_norm_forward_train(x, gamma, beta, y, rm.view(), rv.view(), mean.view(), invstd.view(),
                                              params);
            };
            // backward uses the statistics saved by the forward pass that precedes it.
            auto grads = [&](ConstView<double> dy, TensorView<double> dx, TensorView<double> dgamma,
                             TensorView<double> dbeta) {
                ops::batch_norm_backward_train(dy, x, gamma, mean, invstd, dx, dgamma, dbeta);
            };
            Tensor<double> scratch_dx(shape), scratch_c(Shape{C}), scratch_c2(Shape{C});
            require_gradient(x, shape, train, [&](ConstView<double> dy, TensorView<double> dx) {
                grads(dy, dx, scratch_c.view(), scratch_c2.view());
            }, rng);
            require_gradient(gamma, shape, train, [&](ConstView<double> dy, TensorView<double> dg) {
                grads(dy, scratch_dx.view(), dg, scratch_c2.view());
            }, rng);
            require_gradient(beta, shape, train, [&](ConstView<double> dy, TensorView<double> db) {
                grads(dy, scratch_dx.view(), scratch_c.view(), db);
            }, rng);

            auto rm_e = random<double>(Shape{C}, rng);
            auto rv_e = random<double>(Shape{C}, rng, 0.5, 2);
            auto eval = [&](TensorView<double> y) { ops::batch_norm_forward_eval(x, gamma, beta, rm_e, rv_e, y, params); };
            auto eval_grads = [&](ConstView<double> dy, TensorView<double> dx, TensorView<double> dgamma,
                                  TensorView<double> dbeta) {
                ops::batch_norm_backward_eval(dy, x, gamma, rm_e, rv_e, dx, dgamma, dbeta, params);
            };
            require_gradient(x, shape, eval, [&](ConstView<double> dy, TensorView<double> dx) {
                eval_grads(dy, dx, scratch_c.view(), scratch_c2.view());
            }, rng);
            require_gradient(gamma, shape, eval, [&](ConstView<double> dy, TensorView<double> dg) {
                eval_grads(dy, scratch_dx.view(), dg, scratch_c2.view());
            }, rng);
            require_gradient(beta, shape, eval, [&](ConstView<double> dy, TensorView<double> db) {
                eval_grads(dy, scratch_dx.view(), scratch_c.view(), db);
            }, rng);
        }
    }
}

TEMPLATE_TEST_CASE("batch norm backward in each precision agrees with double, and accumulates",
                   "[ops][batch_norm]", float, double) {
    using T = TestType;
    gcl::Rng rng(304);
    const Shape shape{5, 3, 4, 4};
    const auto x0 = random<double>(shape, rng, -2, 3);
    const auto gamma0 = random<double>(Shape{3}, rng, 0.5, 1.5);
    const auto beta0 = random<double>(Shape{3}, rng);
    const auto rm0 = random<double>(Shape{3}, rng);
    const auto rv0 = random<double>(Shape{3}, rng, 0.5, 2);
    const auto dy0 = random<double>(shape, rng);
    for (bool eval : {false, true}) {
        DYNAMIC_SECTION((eval ? "eval" : "train")) {
            // Gradients written onto dgamma = 1 and dbeta = 2 with the given mode.
            auto run = [&]<class U>(gcl::WriteMode mode) {
                const auto x = cast<U>(x0), gamma = cast<U>(gamma0), beta = cast<U>(beta0), dy = cast<U>(dy0);
                auto rm = cast<U>(rm0), rv = cast<U>(rv0);
                Tensor<U> y(shape), mean(Shape{3}), invstd(Shape{3});
                Tensor<U> dx(shape), dgamma(Shape{3}, U(1)), dbeta(Shape{3}, U(2));
                if (eval) {
                    ops::batch_norm_backward_eval(dy, x, gamma, rm, rv, dx.view(), dgamma.view(), dbeta.view(), {}, mode);
                } else {
                    ops::batch_norm_forward_train(x, gamma, beta, y.view(), rm.view(), rv.view(), mean.view(),
                                                  invstd.view());
                    ops::batch_norm_backward_train(dy, x, gamma, mean, invstd, dx.view(), dgamma.view(), dbeta.view(),
                                                   mode);
                }
                return std::array<Tensor<U>, 3>{dx, dgamma, dbeta};
            };
            const auto mine = run.template operator()<T>(gcl::WriteMode::overwrite);
            const auto ref = run.template operator()<double>(gcl::WriteMode::overwrite);
            for (int k = 0; k < 3; ++k) require_close(mine[k], ref[k]);
            const auto added = run.template operator()<T>(gcl::WriteMode::accumulate);
            require_equal(added[0], mine[0]);  // dx is always overwritten
            for (index_t c = 0; c < 3; ++c) {
                CHECK(gcl::testing::close<T>(added[1](c), static_cast<double>(mine[1](c)) + 1));
                CHECK(gcl::testing::close<T>(added[2](c), static_cast<double>(mine[2](c)) + 2));
            }
        }
    }
}

TEST_CASE("batch norm rejects bad shapes and parameters naming them", "[ops][batch_norm][errors]") {
    Tensor<float> x(Shape{4, 3, 2, 2}), y(Shape{4, 3, 2, 2}), c3(Shape{3}), c4(Shape{4});
    Tensor<float> rm(Shape{3}), rv(Shape{3}), m(Shape{3}), s(Shape{3});
    require_error([&] { ops::batch_norm_forward_train(x, c4, c3, y.view(), rm.view(), rv.view(), m.view(), s.view()); },
                  {"ops::batch_norm_forward_train", "gamma", "[4]", "[4, 3, 2, 2]"});
    Tensor<float> y_bad(Shape{4, 3, 2, 3});
    require_error([&] { ops::batch_norm_forward_train(x, c3, c3, y_bad.view(), rm.view(), rv.view(), m.view(), s.view()); },
                  {"ops::batch_norm_forward_train", "[4, 3, 2, 3]", "[4, 3, 2, 2]"});
    Tensor<float> single(Shape{1, 3, 1, 1}), single_y(Shape{1, 3, 1, 1});
    require_error([&] {
        ops::batch_norm_forward_train(single, c3, c3, single_y.view(), rm.view(), rv.view(), m.view(), s.view());
    }, {"more than one value per channel", "[1, 3, 1, 1]"});
    require_error([&] { ops::batch_norm_forward_eval(x, c3, c3, rm, rv, y.view(), {.eps = 0}); }, {"eps"});
    require_error([&] { ops::batch_norm_forward_eval(x, c3, c3, c4, rv, y.view()); },
                  {"ops::batch_norm_forward_eval", "running_mean", "[4]", "[4, 3, 2, 2]"});
    require_error([&] { ops::batch_norm_forward_train(x, c3, c3, y.view(), rm.view(), rm.view(), m.view(), s.view()); },
                  {"ops::batch_norm_forward_train", "overlaps"});
    Tensor<float> dx(Shape{4, 3, 2, 2}), dg(Shape{3}), db(Shape{4});
    require_error([&] { ops::batch_norm_backward_train(y, x, c3, m, s, dx.view(), dg.view(), db.view()); },
                  {"ops::batch_norm_backward_train", "dbeta", "[4]", "[4, 3, 2, 2]"});
    Tensor<float> dy_bad(Shape{4, 3, 4});
    require_error([&] { ops::batch_norm_backward_eval(dy_bad, x, c3, rm, rv, dx.view(), dg.view(), dg.view()); },
                  {"ops::batch_norm_backward_eval", "[4, 3, 4]", "[4, 3, 2, 2]"});
    Tensor<float> flat(Shape{5});
    require_error([&] { ops::batch_norm_forward_eval(flat, c3, c3, rm, rv, flat.view()); }, {"[5]"});
}

// ---------------------------------------------------------------------------------------------
// ReLU and LeakyReLU

TEMPLATE_TEST_CASE("relu and leaky relu match their definitions, in place too", "[ops][activation]", float, double) {
    using T = TestType;
    gcl::Rng rng(311);
    const auto x = random<T>(Shape{3, 4, 5, 6}, rng);
    const auto dy = random<T>(x.shape(), rng);
    for (double slope : {0.0, 0.01, 0.2}) {
        DYNAMIC_SECTION("slope " << slope) {
            Tensor<T> y(x.shape()), dx(x.shape());
            Tensor<double> ey(x.shape()), edx(x.shape());
            for (index_t i = 0; i < x.numel(); ++i) {
                const double v = static_cast<double>(x.data()[i]), g = static_cast<double>(dy.data()[i]);
                ey.data()[i] = v > 0 ? v : slope * v;
                edx.data()[i] = v > 0 ? g : slope * g;
            }
            if (slope == 0) {
                ops::relu_forward(x, y.view());
                ops::relu_backward(dy, x, dx.view());
            } else {
                ops::leaky_relu_forward(x, y.view(), slope);
                ops::leaky_relu_backward(dy, x, dx.view(), slope);
            }
            require_close(y, ey);
            require_close(dx, edx);
            auto inplace = x;
            ops::leaky_relu_forward(inplace, inplace.view(), slope);
            require_close(inplace, ey);
            auto g = dy;
            ops::leaky_relu_backward(g, x, g.view(), slope);
            require_close(g, edx);
        }
    }
    // Edge values as in PyTorch: relu(-inf) = 0, NaN stays NaN, the gradient at 0 is the
    // negative side's.
    const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    const auto edge = Tensor<T>::from(Shape{4}, {-inf, inf, nan, T(0)});
    Tensor<T> out(Shape{4}), grad(Shape{4});
    ops::relu_forward(edge, out.view());
    CHECK(out(0) == T(0));
    CHECK(out(1) == inf);
    CHECK(std::isnan(out(2)));
    CHECK(out(3) == T(0));
    ops::relu_backward(Tensor<T>(Shape{4}, T(1)), edge, grad.view());
    CHECK(grad(3) == T(0));
    ops::leaky_relu_backward(Tensor<T>(Shape{4}, T(1)), edge, grad.view(), 0.1);
    CHECK(gcl::testing::close<T>(grad(3), 0.1));
}

TEST_CASE("relu and leaky relu gradients pass the finite-difference check", "[ops][activation][gradcheck]") {
    gcl::Rng rng(312);
    auto x = random<double>(Shape{2, 3, 4, 5}, rng);
    for (index_t i = 0; i < x.numel(); ++i)  // stay clear of the kink at 0
        if (std::abs(x.data()[i]) < 1e-3) x.data()[i] = 0.5;
    require_gradient(x, x.shape(), [&](TensorView<double> y) { ops::relu_forward(x, y); },
                     [&](ConstView<double> dy, TensorView<double> dx) { ops::relu_backward(dy, x, dx); }, rng);
    require_gradient(x, x.shape(), [&](TensorView<double> y) { ops::leaky_relu_forward(x, y, 0.1); },
                     [&](ConstView<double> dy, TensorView<double> dx) { ops::leaky_relu_backward(dy, x, dx, 0.1); }, rng);
}

TEST_CASE("activations reject mismatched shapes naming both", "[ops][activation][errors]") {
    Tensor<float> x(Shape{2, 3}), y(Shape{3, 2}), dy(Shape{2, 4});
    require_error([&] { ops::relu_forward(x, y.view()); }, {"ops::relu_forward", "[2, 3]", "[3, 2]"});
    require_error([&] { ops::leaky_relu_forward(x, y.view()); }, {"ops::leaky_relu_forward", "[2, 3]", "[3, 2]"});
    Tensor<float> dx(Shape{2, 3});
    require_error([&] { ops::relu_backward(dy, x, dx.view()); }, {"ops::relu_backward", "[2, 4]", "[2, 3]"});
    require_error([&] { ops::leaky_relu_backward(x, x, y.view()); }, {"ops::leaky_relu_backward", "[2, 3]", "[3, 2]"});
    Tensor<float> big(Shape{8});
    require_error([&] { ops::relu_forward(big.view().narrow(0, 0, 6), big.view().narrow(0, 2, 6)); },
                  {"ops::relu_forward", "overlaps"});
}

// ---------------------------------------------------------------------------------------------
// Softmax and log-softmax

namespace {

Tensor<double> naive_softmax(const Tensor<double>& x, int dim, bool log) {
    const int d = dim < 0 ? dim + x.rank() : dim;
    index_t outer = 1, inner = 1;
    for (int i = 0; i < d; ++i) outer *= x.dim(i);
    for (int i = d + 1; i < x.rank(); ++i) inner *= x.dim(i);
    const index_t n = x.dim(d);
    Tensor<double> y(x.shape());
    for (index_t o = 0; o < outer; ++o)
        for (index_t i = 0; i < inner; ++i) {
            double s = 0;
            for (index_t k = 0; k < n; ++k) s += std::exp(x.data()[(o * n + k) * inner + i]);
            for (index_t k = 0; k < n; ++k) {
                const double v = x.data()[(o * n + k) * inner + i];
                y.data()[(o * n + k) * inner + i] = log ? v - std::log(s) : std::exp(v) / s;
            }
        }
    return y;
}

}  // namespace

TEMPLATE_TEST_CASE("softmax and log-softmax match their definitions along every dimension", "[ops][softmax]", float,
                   double) {
    using T = TestType;
    gcl::Rng rng(321);
    const Shape shape{3, 5, 4};
    const auto x = random<T>(shape, rng, -3, 3);
    const auto dy = random<T>(shape, rng);
    for (int dim : {0, 1, 2, -1}) {
        for (bool log : {false, true}) {
            DYNAMIC_SECTION("dim " << dim << (log ? " log" : "")) {
                Tensor<T> y(shape);
                if (log)
                    ops::log_softmax_forward(x, y.view(), dim);
                else
                    ops::softmax_forward(x, y.view(), dim);
                require_close(y, naive_softmax(cast<double>(x), dim, log));

                // Shifting the input by a large constant changes nothing (the maximum is subtracted).
                auto shifted = x;
                for (index_t i = 0; i < shifted.numel(); ++i) shifted.data()[i] += T(1000);
                Tensor<T> ys(shape);
                if (log)
                    ops::log_softmax_forward(shifted, ys.view(), dim);
                else
                    ops::softmax_forward(shifted, ys.view(), dim);
                require_close(ys, naive_softmax(cast<double>(x), dim, log), 1e-4, 1e-4);

                // In place, and the backward pass against the double one (gradient-checked below).
                auto inplace = x;
                if (log)
                    ops::log_softmax_forward(inplace, inplace.view(), dim);
                else
                    ops::softmax_forward(inplace, inplace.view(), dim);
                require_close(inplace, y);
                auto backward = [&]<class U>() {
                    const Tensor<U> yu = cast<U>(y), dyu = cast<U>(dy);
                    Tensor<U> dx(shape);
                    if (log)
                        ops::log_softmax_backward(dyu, yu, dx.view(), dim);
                    else
                        ops::softmax_backward(dyu, yu, dx.view(), dim);
                    return dx;
                };
                require_close(backward.template operator()<T>(), backward.template operator()<double>());
                auto g = dy;
                if (log)
                    ops::log_softmax_backward(g, y, g.view(), dim);
                else
                    ops::softmax_backward(g, y, g.view(), dim);
                require_close(g, backward.template operator()<double>());
            }
        }
    }
}

TEST_CASE("softmax of extreme inputs stays finite", "[ops][softmax]") {
    const auto x = Tensor<float>::from(Shape{1, 3}, {1e30f, -1e30f, 0.0f});
    Tensor<float> y(Shape{1, 3}), ly(Shape{1, 3});
    ops::softmax_forward(x, y.view(), 1);
    ops::log_softmax_forward(x, ly.view(), 1);
    CHECK(y(0, 0) == 1.0f);
    CHECK(y(0, 1) == 0.0f);
    CHECK(ly(0, 0) == 0.0f);
    CHECK(std::isfinite(ly(0, 2)));
}

TEST_CASE("softmax and log-softmax gradients pass the finite-difference check", "[ops][softmax][gradcheck]") {
    gcl::Rng rng(322);
    auto x = random<double>(Shape{2, 4, 3}, rng, -2, 2);
    for (int dim : {0, 1, -1}) {
        DYNAMIC_SECTION("dim " << dim) {
            Tensor<double> y(x.shape());
            require_gradient(x, x.shape(), [&](TensorView<double> out) { ops::softmax_forward(x, out, dim); },
                             [&](ConstView<double> dy, TensorView<double> dx) {
                                 ops::softmax_forward(x, y.view(), dim);
                                 ops::softmax_backward(dy, y, dx, dim);
                             }, rng);
            require_gradient(x, x.shape(), [&](TensorView<double> out) { ops::log_softmax_forward(x, out, dim); },
                             [&](ConstView<double> dy, TensorView<double> dx) {
                                 ops::log_softmax_forward(x, y.view(), dim);
                                 ops::log_softmax_backward(dy, y, dx, dim);
                             }, rng);
        }
    }
}

TEST_CASE("softmax rejects bad dimensions and shapes naming them", "[ops][softmax][errors]") {
    Tensor<float> x(Shape{2, 3}), y(Shape{3, 2});
    require_error([&] { ops::softmax_forward(x, y.view(), 1); }, {"ops::softmax_forward", "[2, 3]", "[3, 2]"});
    require_error([&] { ops::log_softmax_forward(x, x.view(), 2); }, {"ops::log_softmax_forward", "2", "[2, 3]"});
    Tensor<float> dx(Shape{2, 3});
    require_error([&] { ops::softmax_backward(y, x, dx.view(), 1); }, {"ops::softmax_backward", "[3, 2]", "[2, 3]"});
    require_error([&] { ops::log_softmax_backward(x, x, y.view(), -1); },
                  {"ops::log_softmax_backward", "[3, 2]", "[2, 3]"});
}

// ---------------------------------------------------------------------------------------------
// L2 normalisation

TEMPLATE_TEST_CASE("l2 normalisation matches F.normalize, guards zero vectors, and its backward agrees with double",
                   "[ops][normalize]", float, double) {
    using T = TestType;
    gcl::Rng rng(331);
    const Shape shape{4, 6, 3};
    auto x = random<T>(shape, rng);
    for (index_t k = 0; k < 6; ++k) x(1, k, 2) = T(0);  // an all-zero vector along dimension 1
    const auto dy = random<T>(shape, rng);
    for (int dim : {1, -1, 0}) {
        DYNAMIC_SECTION("dim " << dim) {
            const int d = dim < 0 ? dim + 3 : dim;
            Tensor<T> y(shape);
            ops::l2_normalize_forward(x, y.view(), dim);
            Tensor<double> expected(shape), norms(shape);
            for (index_t a = 0; a < shape[0]; ++a)
                for (index_t b = 0; b < shape[1]; ++b)
                    for (index_t c = 0; c < shape[2]; ++c) {
                        double s = 0;
                        for (index_t k = 0; k < shape[d]; ++k) {
                            index_t idx[] = {a, b, c};
                            idx[d] = k;
                            s += std::pow(static_cast<double>(x(idx[0], idx[1], idx[2])), 2);
                        }
                        expected(a, b, c) = static_cast<double>(x(a, b, c)) / std::max(std::sqrt(s), 1e-12);
                    }
            require_close(y, expected);
            if (d == 1)
                for (index_t k = 0; k < 6; ++k) CHECK(y(1, k, 2) == T(0));

            auto backward = [&]<class U>() {
                const Tensor<U> xu = cast<U>(x), dyu = cast<U>(dy);
                Tensor<U> dx(shape);
                ops::l2_normalize_backward(dyu, xu, dx.view(), dim);
                return dx;
            };
            const auto dx = backward.template operator()<T>();
            // The zero vector is divided by eps, so its gradient is dy / eps: compare relatively.
            require_close(dx, backward.template operator()<double>());
            if (d == 1)
                for (index_t k = 0; k < 6; ++k)
                    CHECK(gcl::testing::close<T>(dx(1, k, 2), static_cast<double>(dy(1, k, 2)) / 1e-12));

            auto inplace = x;
            ops::l2_normalize_forward(inplace, inplace.view(), dim);
            require_close(inplace, y);
        }
    }
}

TEST_CASE("l2 normalisation gradients pass the finite-difference check, also where eps clamps", "[ops][normalize][gradcheck]") {
    gcl::Rng rng(332);
    auto x = random<double>(Shape{3, 5, 2}, rng);
    for (int dim : {1, -1}) {
        DYNAMIC_SECTION("dim " << dim) {
            require_gradient(x, x.shape(), [&](TensorView<double> y) { ops::l2_normalize_forward(x, y, dim); },
                             [&](ConstView<double> dy, TensorView<double> dx) {
                                 ops::l2_normalize_backward(dy, x, dx, dim);
                             }, rng);
        }
    }
    // A large eps clamps some vectors (norm < eps) and not others.
    auto small = random<double>(Shape{6, 3}, rng, -0.6, 0.6);
    require_gradient(small, small.shape(), [&](TensorView<double> y) { ops::l2_normalize_forward(small, y, 1, 0.5); },
                     [&](ConstView<double> dy, TensorView<double> dx) {
                         ops::l2_normalize_backward(dy, small, dx, 1, 0.5);
                     }, rng);
}

TEMPLATE_TEST_CASE("strict l2 normalisation equals the eps mode where vectors have a direction", "[ops][normalize]",
                   float, double) {
    using T = TestType;
    gcl::Rng rng(333);
    const Shape shape{4, 6, 3};
    const auto x = random<T>(shape, rng);
    for (int dim : {1, -1, 0}) {
        DYNAMIC_SECTION("dim " << dim) {
            const int d = dim < 0 ? dim + 3 : dim;
            Tensor<T> y(shape), strict(shape), norms(ops::remove_dim(shape, d));
            ops::l2_normalize_forward(x, y.view(), dim);
            ops::l2_normalize_strict_forward(x, strict.view(), norms.view(), dim);
            require_close(strict, y);
            // The norms: ||x|| of each vector, numbered as norms' elements.
            Tensor<T> dx(shape);
            for (index_t i = 0; i < norms.numel(); ++i) CHECK(norms.data()[i] > T(0));
            // Strict backward (from y and norms) equals the eps backward (from x).
            const auto dy = random<T>(shape, rng);
            Tensor<T> dx_eps(shape);
            ops::l2_normalize_backward(dy, x, dx_eps.view(), dim);
            ops::l2_normalize_strict_backward(dy, strict, norms, dx.view(), dim);
            require_close(dx, dx_eps);
            auto inplace = dy;
            ops::l2_normalize_strict_backward(inplace, strict, norms, inplace.view(), dim);
            require_close(inplace, dx);
        }
    }
}

TEMPLATE_TEST_CASE("l2_norm gives the strict mode's norms, and 0, NaN or infinity where it has no direction",
                   "[ops][normalize]", float, double) {
    using T = TestType;
    gcl::Rng rng(334);
    const Shape shape{4, 6, 3};
    auto x = random<T>(shape, rng);
    for (int dim : {1, -1, 0}) {
        DYNAMIC_SECTION("dim " << dim) {
            const int d = dim < 0 ? dim + 3 : dim;
            Tensor<T> y(shape), strict_norms(ops::remove_dim(shape, d)), norms(strict_norms.shape());
            ops::l2_normalize_strict_forward(x, y.view(), strict_norms.view(), dim);
            ops::l2_norm(x, norms.view(), dim);
            for (index_t i = 0; i < norms.numel(); ++i) CHECK(norms.data()[i] == strict_norms.data()[i]);
        }
    }
    // Rows of a matrix: a zero row, a NaN, an infinity, a norm beyond T's range, a huge and a tiny row.
    Tensor<T> m(Shape{7, 3});
    for (index_t c = 0; c < 3; ++c) {
        m(0, c) = T(0);
        m(1, c) = T(c + 1);
        m(2, c) = c == 1 ? std::numeric_limits<T>::quiet_NaN() : T(1);
        m(3, c) = c == 2 ? std::numeric_limits<T>::infinity() : T(1);
        m(4, c) = std::numeric_limits<T>::max();
        m(5, c) = T(3e30) * T(c + 1);
        m(6, c) = std::numeric_limits<T>::min() * T(c + 1);
    }
    Tensor<T> n(Shape{7});
    ops::l2_norm(m, n.view(), 1);
    CHECK(n(0) == T(0));
    CHECK(n(1) == Approx(std::sqrt(14.0)));
    CHECK(std::isnan(n(2)));
    CHECK(n(3) == std::numeric_limits<T>::infinity());
    CHECK(n(4) == std::numeric_limits<T>::infinity());
    CHECK(static_cast<double>(n(5)) == Approx(3e30 * std::sqrt(14.0)).epsilon(1e-6));
    CHECK(static_cast<double>(n(6)) ==
          Approx(static_cast<double>(std::numeric_limits<T>::min()) * std::sqrt(14.0)).epsilon(1e-6));
    Tensor<T> wrong(Shape{3});
    require_error([&] { ops::l2_norm(m, wrong.view(), 1); }, {"ops::l2_norm", "norms", "[3]"});
    require_error([&] { ops::l2_norm(m, n.view(), 2); }, {"ops::l2_norm", "2"});
}

TEST_CASE("strict l2 normalisation gradients pass the finite-difference check", "[ops][normalize][gradcheck]") {
    gcl::Rng rng(334);
    auto x = random<double>(Shape{3, 5, 2}, rng);
    for (int dim : {1, -1}) {
        DYNAMIC_SECTION("dim " << dim) {
            const int d = dim < 0 ? dim + 3 : dim;
            Tensor<double> norms(ops::remove_dim(x.shape(), d)), y(x.shape());
            ops::l2_normalize_strict_forward(x, y.view(), norms.view(), dim);
            require_gradient(
                x, x.shape(),
                [&](TensorView<double> out) {
                    Tensor<double> n(norms.shape());
                    ops::l2_normalize_strict_forward(x, out, n.view(), dim);
                },
                [&](ConstView<double> dy, TensorView<double> dx) {
                    ops::l2_normalize_strict_backward(dy, y, norms, dx, dim);
                },
                rng);
        }
    }
}

TEST_CASE("strict l2 normalisation rejects vectors without a direction, naming the op and the vector",
          "[ops][normalize][errors]") {
    gcl::Rng rng(335);
    auto x = random<float>(Shape{4, 6, 3}, rng);
    for (index_t k = 0; k < 6; ++k) x(1, k, 2) = 0.0f;  // vector 1 * 3 + 2 = 5 along dimension 1
    Tensor<float> y(x.shape()), norms(Shape{4, 3});
    require_error([&] { ops::l2_normalize_strict_forward(x, y.view(), norms.view(), 1); },
                  {"ops::l2_normalize_strict_forward", "vector 5 is zero"});
    require_error([&] { ops::l2_normalize_strict_forward(x, y.view(), norms.view(), 1, "supcon", "embedding"); },
                  {"supcon", "embedding 5 is zero"});
    x(1, 4, 2) = std::numeric_limits<float>::infinity();
    require_error([&] { ops::l2_normalize_strict_forward(x, y.view(), norms.view(), 1); },
                  {"vector 5", "non-finite value at 4"});
    Tensor<float> wrong(Shape{4, 6});
    require_error([&] { ops::l2_normalize_strict_forward(x, y.view(), wrong.view(), 1); },
                  {"ops::l2_normalize_strict_forward", "norms", "[4, 6]", "[4, 3]"});
    require_error([&] { ops::l2_normalize_strict_backward(y, y, norms, y.view(), 1); },
                  {"ops::l2_normalize_strict_backward", "overlaps"});
}

TEST_CASE("l2 normalisation rejects bad shapes and eps naming them", "[ops][normalize][errors]") {
    Tensor<float> x(Shape{2, 3}), y(Shape{2, 4});
    require_error([&] { ops::l2_normalize_forward(x, y.view(), 1); }, {"ops::l2_normalize_forward", "[2, 3]", "[2, 4]"});
    require_error([&] { ops::l2_normalize_forward(x, x.view(), 1, 0.0); }, {"ops::l2_normalize_forward", "eps"});
    require_error([&] { ops::l2_normalize_backward(y, x, x.view(), 1); },
                  {"ops::l2_normalize_backward", "[2, 4]", "[2, 3]"});
    require_error([&] { ops::l2_normalize_forward(x, x.view(), -3); }, {"ops::l2_normalize_forward", "-3", "[2, 3]"});
}
