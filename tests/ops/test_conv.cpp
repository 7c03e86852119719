#include "gcl/ops/conv2d.hpp"
#include "gcl/ops/conv_transpose2d.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

#include <array>

#if defined(_OPENMP)
#include <omp.h>
#endif

using namespace gcl_test;
namespace ops = gcl::ops;
using gcl::ConstView;
using gcl::TensorView;

namespace {

struct ConvCase {
    Shape x, w;
    gcl::Extent2 stride, padding, dilation;
    gcl::Extent2 output_padding{0, 0};  // transposed convolution only
};

struct Reference {
    Tensor<double> y, dx, dw;
};

// Convolution by its definition, with the gradients for upstream dy.
Reference naive_conv2d(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& dy, const ConvCase& c) {
    const index_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), K = w.dim(0), R = w.dim(2), S = w.dim(3);
    const index_t OH = (H + 2 * c.padding[0] - c.dilation[0] * (R - 1) - 1) / c.stride[0] + 1;
    const index_t OW = (W + 2 * c.padding[1] - c.dilation[1] * (S - 1) - 1) / c.stride[1] + 1;
    Reference r{Tensor<double>(Shape{N, K, OH, OW}), Tensor<double>(x.shape()), Tensor<double>(w.shape())};
    for (index_t n = 0; n < N; ++n)
        for (index_t k = 0; k < K; ++k)
            for (index_t oh = 0; oh < OH; ++oh)
                for (index_t ow = 0; ow < OW; ++ow)
                    for (index_t ch = 0; ch < C; ++ch)
                        for (index_t a = 0; a < R; ++a)
                            for (index_t b = 0; b < S; ++b) {
                                const index_t ih = oh * c.stride[0] - c.padding[0] + a * c.dilation[0];
                                const index_t iw = ow * c.stride[1] - c.padding[1] + b * c.dilation[1];
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                r.y(n, k, oh, ow) += x(n, ch, ih, iw) * w(k, ch, a, b);
                                if (dy.numel() == r.y.numel()) {
                                    r.dx(n, ch, ih, iw) += dy(n, k, oh, ow) * w(k, ch, a, b);
                                    r.dw(k, ch, a, b) += dy(n, k, oh, ow) * x(n, ch, ih, iw);
                                }
                            }
    return r;
}

// Transposed convolution by its definition: every input pixel scatters the kernel, scaled, into
// the output.
Reference naive_conv_transpose2d(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& dy,
                                 const ConvCase& c) {
    const index_t N = x.dim(0), CI = x.dim(1), H = x.dim(2), W = x.dim(3), CO = w.dim(1), R = w.dim(2), S = w.dim(3);
    const index_t OH = (H - 1) * c.stride[0] - 2 * c.padding[0] + c.dilation[0] * (R - 1) + c.output_padding[0] + 1;
    const index_t OW = (W - 1) * c.stride[1] - 2 * c.padding[1] + c.dilation[1] * (S - 1) + c.output_padding[1] + 1;
    Reference r{Tensor<double>(Shape{N, CO, OH, OW}), Tensor<double>(x.shape()), Tensor<double>(w.shape())};
    for (index_t n = 0; n < N; ++n)
        for (index_t ci = 0; ci < CI; ++ci)
            for (index_t ih = 0; ih < H; ++ih)
                for (index_t iw = 0; iw < W; ++iw)
                    for (index_t co = 0; co < CO; ++co)
                        for (index_t a = 0; a < R; ++a)
                            for (index_t b = 0; b < S; ++b) {
                                const index_t oh = ih * c.stride[0] - c.padding[0] + a * c.dilation[0];
                                const index_t ow = iw * c.stride[1] - c.padding[1] + b * c.dilation[1];
                                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                                r.y(n, co, oh, ow) += x(n, ci, ih, iw) * w(ci, co, a, b);
                                if (dy.numel() == r.y.numel()) {
                                    r.dx(n, ci, ih, iw) += dy(n, co, oh, ow) * w(ci, co, a, b);
                                    r.dw(ci, co, a, b) += dy(n, co, oh, ow) * x(n, ci, ih, iw);
                                }
                            }
    return r;
}

gcl::Conv2dParams conv_params(const ConvCase& c) { return {c.stride, c.padding, c.dilation}; }
gcl::ConvTranspose2dParams transpose_params(const ConvCase& c) {
    return {c.stride, c.padding, c.output_padding, c.dilation};
}

Tensor<double> channel_sums(const Tensor<double>& dy) {
    Tensor<double> db(Shape{dy.dim(1)});
    for (index_t n = 0; n < dy.dim(0); ++n)
        for (index_t k = 0; k < dy.dim(1); ++k)
            for (index_t i = 0; i < dy.dim(2); ++i)
                for (index_t j = 0; j < dy.dim(3); ++j) db(k) += dy(n, k, i, j);
    return db;
}

const ConvCase conv_cases[] = {
    {{2, 3, 7, 6}, {4, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1}},   // "same" 3x3
    {{3, 2, 9, 8}, {5, 2, 3, 2}, {2, 2}, {1, 0}, {1, 1}},   // stride 2, rectangular kernel
    {{2, 3, 10, 11}, {2, 3, 3, 3}, {1, 2}, {2, 2}, {2, 2}}, // dilation 2, mixed strides
    {{4, 5, 5, 3}, {3, 5, 1, 1}, {1, 1}, {0, 0}, {1, 1}},   // pointwise (no im2col)
    {{1, 1, 5, 5}, {1, 1, 5, 5}, {1, 1}, {0, 0}, {1, 1}},   // kernel as large as the input
    {{2, 2, 8, 7}, {3, 2, 2, 2}, {3, 3}, {0, 1}, {1, 1}},   // stride 3 > kernel: skipped pixels
    {{1, 2, 6, 6}, {2, 2, 1, 1}, {2, 2}, {1, 1}, {3, 3}},   // strided 1x1 with padding
    {{4, 8, 12, 12}, {6, 8, 3, 3}, {1, 1}, {1, 1}, {1, 1}}, // enough work for the parallel paths
    {{1, 8, 12, 12}, {6, 8, 3, 3}, {2, 1}, {1, 1}, {1, 2}}, // one image: Eigen's own threads
};

const ConvCase transpose_cases[] = {
    {{2, 3, 4, 5}, {3, 2, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},  // 2x up-sampling
    {{2, 2, 3, 3}, {2, 4, 2, 2}, {2, 2}, {0, 0}, {1, 1}, {0, 0}},  // U-Net's 2x2 stride-2 up-convolution
    {{1, 3, 5, 4}, {3, 2, 3, 2}, {1, 1}, {0, 1}, {1, 1}, {0, 0}},
    {{2, 2, 4, 4}, {2, 3, 3, 3}, {2, 1}, {1, 2}, {2, 2}, {1, 1}},  // dilation with output padding
    {{2, 2, 3, 4}, {2, 2, 3, 3}, {1, 1}, {1, 0}, {2, 3}, {1, 2}},  // output padding >= stride (< dilation)
    {{2, 3, 4, 4}, {3, 2, 1, 1}, {1, 1}, {0, 0}, {2, 2}, {1, 1}},  // 1x1 with output padding
    {{4, 8, 8, 8}, {8, 6, 2, 2}, {2, 2}, {0, 0}, {1, 1}, {0, 0}},  // enough work for the parallel paths
};

}  // namespace

TEMPLATE_TEST_CASE("conv2d forward and backward match the definition", "[ops][conv2d]", float, double) {
    using T = TestType;
    gcl::Rng rng(201);
    int index = 0;
    for (const auto& c : conv_cases) {
        DYNAMIC_SECTION("case " << index++ << ": x " << c.x << ", w " << c.w) {
            const auto p = conv_params(c);
            const Shape ys = ops::conv2d_output_shape(c.x, c.w, p);
            const auto x = random<T>(c.x, rng);
            const auto w = random<T>(c.w, rng);
            const auto bias = random<T>(Shape{c.w[0]}, rng);
            const auto dy = random<T>(ys, rng);
            const auto ref = naive_conv2d(cast<double>(x), cast<double>(w), cast<double>(dy), c);
            REQUIRE(ys == ref.y.shape());

            Tensor<T> y(ys);
            ops::conv2d_forward(x, w, y.view(), p);
            require_close(y, ref.y);
            ops::conv2d_forward(x, w, bias, y.view(), p);
            Tensor<double> biased = ref.y;
            for (index_t i = 0; i < biased.numel(); ++i)
                biased.data()[i] += static_cast<double>(bias((i / (ys[2] * ys[3])) % ys[1]));
            require_close(y, biased);

            Tensor<T> dx(c.x, T(7)), dw(c.w, T(7)), db(Shape{c.w[0]});
            ops::conv2d_backward_data(dy, w, dx.view(), p);
            ops::conv2d_backward_weight(dy, x, dw.view(), p);
            ops::conv2d_backward_bias(dy, db.view());
            require_close(dx, ref.dx);
            require_close(dw, ref.dw);
            require_close(db, channel_sums(cast<double>(dy)));

            // Accumulation adds to the gradient; the result repeats exactly.
            const Tensor<T> first = dw;
            ops::conv2d_backward_weight(dy, x, dw.view(), p, gcl::WriteMode::accumulate);
            Tensor<double> twice = ref.dw;
            for (index_t i = 0; i < twice.numel(); ++i) twice.data()[i] *= 2;
            require_close(dw, twice);
            ops::conv2d_backward_weight(dy, x, dw.view(), p);
            require_equal(dw, first);
        }
    }
}

TEST_CASE("conv2d gradients pass the finite-difference check", "[ops][conv2d][gradcheck]") {
    gcl::Rng rng(202);
    for (int i : {0, 1, 2, 3, 5, 6}) {
        const ConvCase& c = conv_cases[i];
        DYNAMIC_SECTION("case " << i) {
            const auto p = conv_params(c);
            const Shape ys = ops::conv2d_output_shape(c.x, c.w, p);
            auto x = random<double>(c.x, rng);
            auto w = random<double>(c.w, rng);
            auto b = random<double>(Shape{c.w[0]}, rng);
            auto forward = [&](TensorView<double> y) { ops::conv2d_forward(x, w, b, y, p); };
            require_gradient(x, ys, forward, [&](ConstView<double> dy, TensorView<double> dx) {
                ops::conv2d_backward_data(dy, w, dx, p);
            }, rng);
            require_gradient(w, ys, forward, [&](ConstView<double> dy, TensorView<double> dw) {
                ops::conv2d_backward_weight(dy, x, dw, p);
            }, rng);
            require_gradient(b, ys, forward, [&](ConstView<double> dy, TensorView<double> db) {
                ops::conv2d_backward_bias(dy, db);
            }, rng);
        }
    }
}

TEMPLATE_TEST_CASE("conv_transpose2d forward and backward match the definition", "[ops][conv_transpose2d]", float,
                   double) {
    using T = TestType;
    gcl::Rng rng(203);
    int index = 0;
    for (const auto& c : transpose_cases) {
        DYNAMIC_SECTION("case " << index++ << ": x " << c.x << ", w " << c.w) {
            const auto p = transpose_params(c);
            const Shape ys = ops::conv_transpose2d_output_shape(c.x, c.w, p);
            const auto x = random<T>(c.x, rng);
            const auto w = random<T>(c.w, rng);
            const auto bias = random<T>(Shape{c.w[1]}, rng);
            const auto dy = random<T>(ys, rng);
            const auto ref = naive_conv_transpose2d(cast<double>(x), cast<double>(w), cast<double>(dy), c);
            REQUIRE(ys == ref.y.shape());

            Tensor<T> y(ys, T(7));
            ops::conv_transpose2d_forward(x, w, y.view(), p);
            require_close(y, ref.y);
            ops::conv_transpose2d_forward(x, w, bias, y.view(), p);
            Tensor<double> biased = ref.y;
            for (index_t i = 0; i < biased.numel(); ++i)
                biased.data()[i] += static_cast<double>(bias((i / (ys[2] * ys[3])) % ys[1]));
            require_close(y, biased);

            Tensor<T> dx(c.x, T(7)), dw(c.w, T(7)), db(Shape{c.w[1]});
            ops::conv_transpose2d_backward_data(dy, w, dx.view(), p);
            ops::conv_transpose2d_backward_weight(dy, x, dw.view(), p);
            ops::conv_transpose2d_backward_bias(dy, db.view());
            require_close(dx, ref.dx);
            require_close(dw, ref.dw);
            require_close(db, channel_sums(cast<double>(dy)));

            ops::conv_transpose2d_backward_weight(dy, x, dw.view(), p, gcl::WriteMode::accumulate);
            Tensor<double> twice = ref.dw;
            for (index_t i = 0; i < twice.numel(); ++i) twice.data()[i] *= 2;
            require_close(dw, twice);
        }
    }
}

TEST_CASE("conv_transpose2d gradients pass the finite-difference check", "[ops][conv_transpose2d][gradcheck]") {
    gcl::Rng rng(204);
    for (int i : {0, 1, 3, 4, 5}) {
        const ConvCase& c = transpose_cases[i];
        DYNAMIC_SECTION("case " << i) {
            const auto p = transpose_params(c);
            const Shape ys = ops::conv_transpose2d_output_shape(c.x, c.w, p);
            auto x = random<double>(c.x, rng);
            auto w = random<double>(c.w, rng);
            auto b = random<double>(Shape{c.w[1]}, rng);
            auto forward = [&](TensorView<double> y) { ops::conv_transpose2d_forward(x, w, b, y, p); };
            require_gradient(x, ys, forward, [&](ConstView<double> dy, TensorView<double> dx) {
                ops::conv_transpose2d_backward_data(dy, w, dx, p);
            }, rng);
            require_gradient(w, ys, forward, [&](ConstView<double> dy, TensorView<double> dw) {
                ops::conv_transpose2d_backward_weight(dy, x, dw, p);
            }, rng);
            require_gradient(b, ys, forward, [&](ConstView<double> dy, TensorView<double> db) {
                ops::conv_transpose2d_backward_bias(dy, db);
            }, rng);
        }
    }
}

#if defined(_OPENMP)
TEST_CASE("convolution gives the same results on one thread and on several", "[ops][conv2d][threads]") {
    // Batches at least as large as the thread count run image-parallel; smaller ones run image by
    // image with Eigen's threads; one thread runs everything in turn.
    gcl::Rng rng(205);
    const ConvCase& c = conv_cases[7];
    const auto p = conv_params(c);
    const Shape ys = ops::conv2d_output_shape(c.x, c.w, p);
    const auto x = random<float>(c.x, rng), w = random<float>(c.w, rng), dy = random<float>(ys, rng);
    auto run = [&] {
        Tensor<float> y(ys), dx(c.x), dw(c.w);
        ops::conv2d_forward(x, w, y.view(), p);
        ops::conv2d_backward_data(dy, w, dx.view(), p);
        ops::conv2d_backward_weight(dy, x, dw.view(), p);
        return std::array<Tensor<float>, 3>{y, dx, dw};
    };
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const auto serial = run();
    for (int threads : {2, 3, 8}) {
        omp_set_num_threads(threads);
        const auto parallel = run();
        const auto again = run();
        for (int k = 0; k < 3; ++k) {
            require_close(parallel[k], cast<double>(serial[k]));
            require_equal(again[k], parallel[k]);  // the same thread count repeats exactly
        }
    }
    omp_set_num_threads(saved);
}
#endif

TEST_CASE("convolution output shapes", "[ops][conv2d][shape]") {
    using gcl::Conv2dParams;
    CHECK(ops::conv2d_output_shape({8, 3, 32, 32}, {16, 3, 3, 3}, {.padding = {1, 1}}) == Shape{8, 16, 32, 32});
    CHECK(ops::conv2d_output_shape({8, 3, 32, 31}, {16, 3, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}) ==
          Shape{8, 16, 16, 16});
    CHECK(ops::conv2d_output_shape({1, 1, 7, 7}, {1, 1, 3, 3}, {.dilation = {3, 3}}) == Shape{1, 1, 1, 1});
    CHECK(ops::conv_transpose2d_output_shape({2, 16, 8, 8}, {16, 8, 2, 2}, {.stride = {2, 2}}) == Shape{2, 8, 16, 16});
    CHECK(ops::conv_transpose2d_output_shape({2, 16, 8, 8}, {16, 8, 3, 3},
                                             {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}}) ==
          Shape{2, 8, 16, 16});
}

TEST_CASE("convolution rejects impossible shapes and parameters naming them", "[ops][conv2d][errors]") {
    require_error([] { (void)ops::conv2d_output_shape({2, 3, 8, 8}, {4, 2, 3, 3}); },
                  {"ops::conv2d_output_shape", "[2, 3, 8, 8]", "[4, 2, 3, 3]"});
    require_error([] { (void)ops::conv2d_output_shape({2, 3, 4, 4}, {4, 3, 3, 3}, {.dilation = {2, 2}}); },
                  {"smaller than the kernel", "[2, 3, 4, 4]", "[4, 3, 3, 3]"});
    require_error([] { (void)ops::conv2d_output_shape({2, 3, 8, 8}, {4, 3, 3, 3}, {.stride = {0, 1}}); },
                  {"stride", "0x1"});
    require_error([] { (void)ops::conv2d_output_shape({2, 3, 8, 8}, {4, 3, 3, 3}, {.padding = {-1, 0}}); },
                  {"padding", "-1x0"});
    require_error([] { (void)ops::conv2d_output_shape({3, 8, 8}, {4, 3, 3, 3}); }, {"[3, 8, 8]", "[4, 3, 3, 3]"});
    require_error(
        [] { (void)ops::conv_transpose2d_output_shape({2, 3, 8, 8}, {3, 4, 3, 3}, {.output_padding = {1, 1}}); },
        {"output padding", "1x1"});
    require_error([] { (void)ops::conv_transpose2d_output_shape({2, 3, 8, 8}, {4, 3, 3, 3}); },
                  {"[2, 3, 8, 8]", "[4, 3, 3, 3]"});
    require_error([] { (void)ops::conv_transpose2d_output_shape({1, 1, 1, 1}, {1, 1, 1, 1}, {.padding = {1, 1}}); },
                  {"empty output", "[1, 1, 1, 1]"});

    Tensor<float> x(Shape{2, 3, 8, 8}), w(Shape{4, 3, 3, 3}), y(Shape{2, 4, 6, 7}), b(Shape{3});
    require_error([&] { ops::conv2d_forward(x, w, y.view()); },
                  {"ops::conv2d_forward", "[2, 4, 6, 7]", "[2, 3, 8, 8]", "[4, 3, 3, 3]", "[2, 4, 6, 6]"});
    Tensor<float> y_ok(Shape{2, 4, 6, 6});
    require_error([&] { ops::conv2d_forward(x, w, b, y_ok.view()); }, {"ops::conv2d_forward", "[3]", "[2, 4, 6, 6]"});
    Tensor<float> dx_bad(Shape{2, 3, 9, 9});
    require_error([&] { ops::conv2d_backward_data(y_ok, w, dx_bad.view()); },
                  {"ops::conv2d_backward_data", "[2, 4, 6, 6]", "[2, 3, 9, 9]"});
    Tensor<float> dw_bad(Shape{4, 3, 2, 2});
    require_error([&] { ops::conv2d_backward_weight(y_ok, x, dw_bad.view()); },
                  {"ops::conv2d_backward_weight", "[2, 4, 6, 6]", "[4, 3, 2, 2]"});
    require_error([&] { ops::conv2d_backward_bias(y_ok, b.view()); }, {"ops::conv2d_backward_bias", "[3]", "[2, 4, 6, 6]"});
    Tensor<float> y_wide(Shape{2, 4, 6, 8});
    require_error([&] { ops::conv2d_forward(x, w, y_wide.view().narrow(3, 1, 6)); },
                  {"ops::conv2d_forward", "contiguous"});
    Tensor<float> inplace(Shape{2, 3, 8, 8});
    Tensor<float> w1(Shape{3, 3, 1, 1});
    require_error([&] { ops::conv2d_forward(inplace, w1, inplace.view()); }, {"ops::conv2d_forward", "overlaps"});

    Tensor<float> tw(Shape{3, 2, 2, 2}), ty_bad(Shape{2, 2, 15, 16});
    require_error([&] { ops::conv_transpose2d_forward(x, tw, ty_bad.view(), {.stride = {2, 2}}); },
                  {"ops::conv_transpose2d_forward", "[2, 2, 15, 16]", "[2, 2, 16, 16]"});
    Tensor<float> ty(Shape{2, 2, 16, 16}), tdx_bad(Shape{2, 3, 7, 8});
    require_error([&] { ops::conv_transpose2d_backward_data(ty, tw, tdx_bad.view(), {.stride = {2, 2}}); },
                  {"ops::conv_transpose2d_backward_data", "[2, 2, 16, 16]", "[2, 3, 7, 8]"});
    Tensor<float> tdw_bad(Shape{2, 3, 2, 2});
    require_error([&] { ops::conv_transpose2d_backward_weight(ty, x, tdw_bad.view(), {.stride = {2, 2}}); },
                  {"ops::conv_transpose2d_backward_weight", "[2, 3, 8, 8]", "[2, 3, 2, 2]"});
}
