// oneDNN's float convolutions against the im2col path, on many geometries, for the forward pass,
// the data gradient, the weight gradient (overwrite and accumulate) and the transposed
// convolution built from them; and a call repeated gives the same bits, with and without the
// forward operands kept for the backward passes (OperandCache).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "gcl/backend/cpu/conv2d.hpp"
#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/ops/conv2d.hpp"
#include "gcl/ops/conv_transpose2d.hpp"
#include "gcl/testing/projection.hpp"

namespace {

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::backend::Conv2d;
using gcl::backend::Im2colConv2d;
namespace ops = gcl::ops;

// The stated tolerance: float results of the two paths agree to 2e-5 of the largest magnitude
// of the im2col result, plus 2e-5 relative (they sum the same products in other orders).
constexpr double tolerance = 2e-5;

void require_close(const Tensor<float>& onednn, const Tensor<float>& im2col, const char* what) {
    REQUIRE(onednn.shape() == im2col.shape());
    double scale = 0;
    for (index_t i = 0; i < im2col.numel(); ++i) scale = std::max(scale, std::abs(double(im2col.data()[i])));
    double worst = 0;
    index_t at = 0;
    for (index_t i = 0; i < im2col.numel(); ++i) {
        const double a = onednn.data()[i], b = im2col.data()[i];
        const double excess = std::abs(a - b) - tolerance * (scale + std::abs(b));
        if (excess > worst) worst = excess, at = i;
    }
    INFO(what << ": largest excess " << worst << " at " << at << " (scale " << scale << ")");
    REQUIRE(worst == 0);
}

bool bitwise_equal(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() && std::equal(a.data(), a.data() + a.numel(), b.data());
}

struct Case {
    Shape x, w;
    gcl::Conv2dParams p;
};

std::vector<Case> cases() {
    return {
        {{2, 3, 9, 9}, {4, 3, 3, 3}, {{1, 1}, {1, 1}, {1, 1}}},           // same padding
        {{1, 1, 7, 5}, {2, 1, 3, 3}, {{1, 1}, {0, 0}, {1, 1}}},           // batch 1, one channel, no padding
        {{3, 5, 11, 8}, {6, 5, 3, 3}, {{2, 2}, {1, 1}, {1, 1}}},          // stride 2, odd height
        {{2, 4, 10, 13}, {3, 4, 5, 3}, {{2, 1}, {2, 1}, {1, 1}}},         // rectangular kernel and stride
        {{2, 2, 12, 12}, {3, 2, 3, 3}, {{1, 1}, {2, 2}, {2, 2}}},         // dilation 2
        {{4, 8, 6, 6}, {5, 8, 1, 1}, {{1, 1}, {0, 0}, {1, 1}}},           // pointwise
        {{2, 16, 16, 16}, {32, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}}},      // blocked channel counts
        {{2, 32, 8, 8}, {16, 32, 2, 2}, {{2, 2}, {0, 0}, {1, 1}}},        // 2x2 stride 2 (U-Net's up path)
        {{1, 17, 9, 7}, {19, 17, 3, 3}, {{1, 1}, {1, 1}, {1, 1}}},        // channels off the block size
        {{5, 3, 4, 4}, {2, 3, 4, 4}, {{1, 1}, {0, 0}, {1, 1}}},           // kernel as large as the image
        {{2, 3, 8, 8}, {4, 3, 3, 3}, {{3, 3}, {2, 2}, {1, 1}}},           // stride 3, padding 2
    };
}

}  // namespace

TEST_CASE("oneDNN float convolutions agree with the im2col path", "[backend][conv][onednn]") {
    if (!gcl::backend::onednn::enabled) {
        WARN("gcl is configured without oneDNN (GCL_CPU_CONV=im2col): nothing to compare");
        std::exit(77);
    }
    gcl::Rng rng(20261201);
    int index = 0;
    for (const Case& c : cases()) {
        CAPTURE(index++, c.x, c.w);
        const Shape y_shape = ops::conv2d_output_shape(c.x, c.w, c.p);
        const Tensor<float> x = gcl::testing::random_tensor<float>(c.x, rng, -1.f, 1.f);
        const Tensor<float> w = gcl::testing::random_tensor<float>(c.w, rng, -1.f, 1.f);
        const Tensor<float> dy = gcl::testing::random_tensor<float>(y_shape, rng, -1.f, 1.f);
        const Tensor<float> dw0 = gcl::testing::random_tensor<float>(c.w, rng, -1.f, 1.f);

        Tensor<float> y_dnn(y_shape), y_ref(y_shape);
        Conv2d<gcl::cpu>::forward<float>(x, w, y_dnn, c.p);
        Im2colConv2d::forward<float>(x, w, y_ref, c.p);
        require_close(y_dnn, y_ref, "forward");

        Tensor<float> dx_dnn(c.x), dx_ref(c.x);
        Conv2d<gcl::cpu>::backward_data<float>(dy, w, dx_dnn, c.p);
        Im2colConv2d::backward_data<float>(dy, w, dx_ref, c.p);
        require_close(dx_dnn, dx_ref, "backward data");

        Tensor<float> dw_dnn(c.w), dw_ref(c.w);
        Conv2d<gcl::cpu>::backward_weight<float>(dy, x, dw_dnn, c.p, false);
        Im2colConv2d::backward_weight<float>(dy, x, dw_ref, c.p, false);
        require_close(dw_dnn, dw_ref, "backward weight");

        Tensor<float> acc_dnn = dw0, acc_ref = dw0;
        Conv2d<gcl::cpu>::backward_weight<float>(dy, x, acc_dnn, c.p, true);
        Im2colConv2d::backward_weight<float>(dy, x, acc_ref, c.p, true);
        require_close(acc_dnn, acc_ref, "backward weight, accumulated");

        // The cached plan repeats its results exactly.
        Tensor<float> y_again(y_shape), dx_again(c.x), dw_again(c.w);
        Conv2d<gcl::cpu>::forward<float>(x, w, y_again, c.p);
        Conv2d<gcl::cpu>::backward_data<float>(dy, w, dx_again, c.p);
        Conv2d<gcl::cpu>::backward_weight<float>(dy, x, dw_again, c.p, false);
        REQUIRE(bitwise_equal(y_again, y_dnn));
        REQUIRE(bitwise_equal(dx_again, dx_dnn));
        REQUIRE(bitwise_equal(dw_again, dw_dnn));
    }
}

TEST_CASE("oneDNN transposed convolutions agree with the im2col path", "[backend][conv][onednn]") {
    if (!gcl::backend::onednn::enabled) std::exit(77);
    struct TransposedCase {
        Shape x, w;
        gcl::ConvTranspose2dParams p;
    };
    const std::vector<TransposedCase> transposed = {
        {{2, 32, 8, 8}, {32, 16, 2, 2}, {{2, 2}, {0, 0}, {0, 0}, {1, 1}}},  // the U-Net's up-sampling
        {{1, 3, 5, 7}, {3, 4, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, {1, 1}}},     // output padding, batch 1
        {{2, 4, 6, 5}, {4, 2, 3, 3}, {{1, 1}, {1, 1}, {0, 0}, {1, 1}}},     // stride 1
        {{2, 2, 5, 5}, {2, 3, 3, 3}, {{1, 1}, {0, 0}, {1, 1}, {2, 2}}},     // output padding from dilation
    };
    gcl::Rng rng(11);
    for (const TransposedCase& c : transposed) {
        CAPTURE(c.x, c.w);
        const Shape y_shape = ops::conv_transpose2d_output_shape(c.x, c.w, c.p);
        const Tensor<float> x = gcl::testing::random_tensor<float>(c.x, rng, -1.f, 1.f);
        const Tensor<float> w = gcl::testing::random_tensor<float>(c.w, rng, -1.f, 1.f);
        const Tensor<float> dy = gcl::testing::random_tensor<float>(y_shape, rng, -1.f, 1.f);
        Tensor<float> y_dnn(y_shape), y_ref(y_shape), dx_dnn(c.x), dx_ref(c.x), dw_dnn(c.w), dw_ref(c.w);
        ops::conv_transpose2d_forward<float, gcl::cpu>(x, w, y_dnn.view(), c.p);
        Im2colConv2d::backward_data<float>(x, w, y_ref, c.p.adjoint());
        require_close(y_dnn, y_ref, "transposed forward");
        ops::conv_transpose2d_backward_data<float, gcl::cpu>(dy, w, dx_dnn.view(), c.p);
        Im2colConv2d::forward<float>(dy, w, dx_ref, c.p.adjoint());
        require_close(dx_dnn, dx_ref, "transposed backward data");
        ops::conv_transpose2d_backward_weight<float, gcl::cpu>(dy, x, dw_dnn.view(), c.p);
        Im2colConv2d::backward_weight<float>(x, dy, dw_ref, c.p.adjoint(), false);
        require_close(dw_dnn, dw_ref, "transposed backward weight");
    }
}

namespace {

// K = 3 stacked backward passes over x [2, 16, 12, 12] and w [filters, 16, 3, 3]: `stacked` runs
// them into dx [K N, ...] and dw[k]; each must equal a separate pass bit for bit.
template <class Stacked>
void require_stacked_equals_separate(index_t filters, std::uint64_t seed, Stacked&& stacked) {
    gcl::Rng rng(seed);
    const gcl::Conv2dParams p{{1, 1}, {1, 1}, {1, 1}};
    const index_t K = 3, N = 2;
    const Shape xs{N, 16, 12, 12}, ws{filters, 16, 3, 3};
    const Shape ys = ops::conv2d_output_shape(xs, ws, p);
    const Tensor<float> x = gcl::testing::random_tensor<float>(xs, rng, -1.f, 1.f);
    const Tensor<float> w = gcl::testing::random_tensor<float>(ws, rng, -1.f, 1.f);
    const Tensor<float> dy = gcl::testing::random_tensor<float>(Shape{K * N, ys[1], ys[2], ys[3]}, rng, -1.f, 1.f);
    Tensor<float> dx(Shape{K * N, 16, 12, 12});
    std::vector<Tensor<float>> dw(K, Tensor<float>(ws));
    std::vector<gcl::TensorView<float, gcl::cpu>> dw_views;
    for (auto& t : dw) dw_views.push_back(t.view());
    stacked(x, w, dy, dx, dw_views, p);
    for (index_t k = 0; k < K; ++k) {
        Tensor<float> dy_k(ys), dx_k(xs), dw_k(ws);
        std::copy(dy.data() + k * ys.numel(), dy.data() + (k + 1) * ys.numel(), dy_k.data());
        Conv2d<gcl::cpu>::backward_data<float>(dy_k, w, dx_k, p);
        Conv2d<gcl::cpu>::backward_weight<float>(dy_k, x, dw_k, p, false);
        REQUIRE(std::equal(dx_k.data(), dx_k.data() + xs.numel(), dx.data() + k * xs.numel()));
        REQUIRE(bitwise_equal(dw_k, dw[k]));
    }
}

using DwViews = std::vector<gcl::TensorView<float, gcl::cpu>>;

}  // namespace

TEST_CASE("oneDNN's stacked backward equals K separate passes bit for bit", "[backend][conv][onednn]") {
    if (!gcl::backend::onednn::enabled) std::exit(77);
    require_stacked_equals_separate(8, 7, [](const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& dy,
                                             Tensor<float>& dx, const DwViews& dw, const gcl::Conv2dParams& p) {
        Conv2d<gcl::cpu>::backward_stacked<float>(dy, x, w, dx, dw, p, false);
    });
}

TEST_CASE("Backward passes from kept forward operands equal the plain calls bit for bit", "[backend][conv][onednn]") {
    if (!gcl::backend::onednn::enabled) std::exit(77);
    using Cache = Conv2d<gcl::cpu>::OperandCache;
    gcl::Rng rng(31);
    const index_t K = 3;
    int index = 0;
    for (const Case& c : cases()) {
        CAPTURE(index++, c.x, c.w);
        const Shape y_shape = ops::conv2d_output_shape(c.x, c.w, c.p);
        Tensor<float> x(c.x), w(c.w);
        Cache keep;
        // Two forwards on the same buffers with new values: the second must replace the copies.
        for (int round = 0; round < 2; ++round) {
            CAPTURE(round);
            const Tensor<float> x_values = gcl::testing::random_tensor<float>(c.x, rng, -1.f, 1.f);
            const Tensor<float> w_values = gcl::testing::random_tensor<float>(c.w, rng, -1.f, 1.f);
            std::copy(x_values.data(), x_values.data() + x.numel(), x.data());
            std::copy(w_values.data(), w_values.data() + w.numel(), w.data());
            Tensor<float> y_kept(y_shape), y_plain(y_shape);
            Conv2d<gcl::cpu>::forward<float>(x, w, y_kept, c.p, &keep);
            Conv2d<gcl::cpu>::forward<float>(x, w, y_plain, c.p);
            REQUIRE(bitwise_equal(y_kept, y_plain));
            const Tensor<float> dw0 = gcl::testing::random_tensor<float>(c.w, rng, -1.f, 1.f);
            Tensor<float> dw_kept = dw0, dw_plain = dw0;
            for (index_t k = 0; k < K; ++k) {
                CAPTURE(k);
                const Tensor<float> dy = gcl::testing::random_tensor<float>(y_shape, rng, -1.f, 1.f);
                const bool accumulate = k > 0;
                Tensor<float> dx_kept(c.x), dx_plain(c.x);
                Conv2d<gcl::cpu>::backward<float>(dy, x, w, dx_kept, dw_kept, c.p, accumulate, &keep);
                Conv2d<gcl::cpu>::backward_weight<float>(dy, x, dw_plain, c.p, accumulate);
                Conv2d<gcl::cpu>::backward_data<float>(dy, w, dx_plain, c.p);
                REQUIRE(bitwise_equal(dx_kept, dx_plain));
                REQUIRE(bitwise_equal(dw_kept, dw_plain));
                // Without the cache, and with an x the cache does not hold (another buffer, same
                // values): the same bits through the reorders.
                Tensor<float> dx_uncached(c.x), dw_uncached(c.w), dx_other(c.x), dw_other(c.w);
                Conv2d<gcl::cpu>::backward<float>(dy, x, w, dx_uncached, dw_uncached, c.p, false);
                const Tensor<float> x_copy = x;
                Conv2d<gcl::cpu>::backward<float>(dy, x_copy, w, dx_other, dw_other, c.p, false, &keep);
                REQUIRE(bitwise_equal(dx_uncached, dx_plain));
                REQUIRE(bitwise_equal(dx_other, dx_plain));
                REQUIRE(bitwise_equal(dw_uncached, dw_other));
            }
        }
        // The copies are about x and w, twice at most (where the backward layouts differ), with
        // oneDNN's channel padding to a block of 16.
        const auto padded = [](const Shape& s, int blocked_dims) {
            std::size_t n = 1;
            for (int d = 0; d < s.rank(); ++d)
                n *= static_cast<std::size_t>(d < blocked_dims ? (s[d] + 15) / 16 * 16 : s[d]);
            return n * sizeof(float);
        };
        const Shape x_channels_blocked{c.x[1], c.x[0], c.x[2], c.x[3]};  // channels first for the helper
        CHECK(keep.bytes() <= 2 * (padded(x_channels_blocked, 1) + padded(c.w, 2)));
    }
}

TEST_CASE("The stacked backward reads the kept operands and equals separate passes", "[backend][conv][onednn]") {
    if (!gcl::backend::onednn::enabled) std::exit(77);
    Conv2d<gcl::cpu>::OperandCache keep;
    require_stacked_equals_separate(32, 8, [&](const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& dy,
                                               Tensor<float>& dx, const DwViews& dw, const gcl::Conv2dParams& p) {
        Tensor<float> y(ops::conv2d_output_shape(x.shape(), w.shape(), p));
        ops::conv2d_forward<float, gcl::cpu>(x, w, y.view(), p, keep);
        ops::conv2d_backward_stacked<float, gcl::cpu>(dy, x, w, dx.view(), dw, p, gcl::WriteMode::overwrite, &keep);
        CHECK(keep.bytes() >= x.numel() * sizeof(float));  // x is blocked here (16 channels)
    });
}

TEST_CASE("ops::conv2d_backward checks its operands", "[backend][conv]") {
    const gcl::Conv2dParams p{{1, 1}, {1, 1}, {1, 1}};
    const Tensor<float> x(Shape{2, 3, 8, 8}), w(Shape{4, 3, 3, 3}), dy(Shape{2, 4, 8, 8});
    Tensor<float> dx(Shape{2, 3, 8, 8}), dw(Shape{4, 3, 3, 3}), wrong_dx(Shape{2, 3, 8, 7});
    Tensor<float> wrong_dw(Shape{4, 3, 3, 1});
    const auto overwrite = gcl::WriteMode::overwrite;
    CHECK_NOTHROW((ops::conv2d_backward<float, gcl::cpu>(dy, x, w, dx.view(), dw.view(), p, overwrite)));
    CHECK_THROWS_WITH((ops::conv2d_backward<float, gcl::cpu>(dy, x, w, wrong_dx.view(), dw.view(), p, overwrite)),
                      Catch::Contains("ops::conv2d_backward") && Catch::Contains("dx is"));
    CHECK_THROWS_WITH((ops::conv2d_backward<float, gcl::cpu>(dy, x, w, dx.view(), wrong_dw.view(), p, overwrite)),
                      Catch::Contains("ops::conv2d_backward") && Catch::Contains("dw is"));
}

TEST_CASE("oneDNN is off in the portable build", "[backend][conv][onednn]") {
#if defined(GCL_PORTABLE_BUILD)
    REQUIRE_FALSE(gcl::backend::onednn::enabled);
#else
    SUCCEED("not a portable build");
#endif
}
