// One U-Net encoder block (conv3x3 -> batch norm -> LeakyReLU -> 2x2 max pool), forward and
// backward with gcl::ops, and a finite-difference check of the convolution's weight gradient.
//
//   ./ops_conv_block
#include <cmath>
#include <cstdio>

#include "gcl/gcl.hpp"

int main() {
    using namespace gcl;
    Rng rng(42);

    // Input batch and parameters: 4 images of 1 x 32 x 32, 8 filters.
    const auto x = testing::random_tensor<float>({4, 1, 32, 32}, rng);
    const auto w = testing::random_tensor<float>({8, 1, 3, 3}, rng, -0.3f, 0.3f);
    Tensor<float> gamma({8}, 1.0f), beta({8}), running_mean({8}), running_var({8}, 1.0f);

    // Forward: every output is allocated by the caller, from the ops' shape functions.
    const ops::Conv2dParams conv{.padding = {1, 1}};
    Tensor<float> h(ops::conv2d_output_shape(x.shape(), w.shape(), conv));
    ops::conv2d_forward(x, w, h.view(), conv);

    Tensor<float> n(h.shape()), saved_mean({8}), saved_invstd({8});
    ops::batch_norm_forward_train(h, gamma, beta, n.view(), running_mean.view(), running_var.view(),
                                  saved_mean.view(), saved_invstd.view());
    Tensor<float> a(n.shape());
    ops::leaky_relu_forward(n, a.view(), 0.01);

    const Shape pooled = ops::max_pool2d_output_shape(a.shape());
    Tensor<float> y(pooled);
    Tensor<index_t> argmax(pooled);
    ops::max_pool2d_forward(a, y.view(), argmax.view());
    ops::check_finite("example", y, "the block's output");
    std::printf("x %s -> conv %s -> pooled %s, mean %.4f, max %.4f\n", x.shape().str().c_str(),
                h.shape().str().c_str(), y.shape().str().c_str(), ops::mean(y), ops::max(y));

    // Backward from dL/dy = 1 (L = sum of the outputs), in reverse order.
    const Tensor<float> dy(pooled, 1.0f);
    Tensor<float> da(a.shape()), dn(n.shape()), dh(h.shape()), dx(x.shape());
    Tensor<float> dw(w.shape()), dgamma({8}), dbeta({8});
    ops::max_pool2d_backward(dy, argmax, da.view());
    ops::leaky_relu_backward(da, n, dn.view(), 0.01);
    ops::batch_norm_backward_train(dn, h, gamma, saved_mean, saved_invstd, dh.view(), dgamma.view(), dbeta.view());
    ops::conv2d_backward_weight(dh, x, dw.view(), conv);
    ops::conv2d_backward_data(dh, w, dx.view(), conv);
    std::printf("|dL/dw| %.4f, |dL/dx| %.4f, running mean of channel 0 %.5f\n", std::sqrt(ops::dot(dw, dw)),
                std::sqrt(ops::dot(dx, dx)), running_mean(0));

    // The same gradient checked by finite differences, in double, through a random projection.
    auto xd = testing::random_tensor<double>({2, 1, 6, 6}, rng);
    auto wd = testing::random_tensor<double>({3, 1, 3, 3}, rng);
    const auto result = testing::check_projected_gradient(
        wd.view(), ops::conv2d_output_shape(xd.shape(), wd.shape(), conv),
        [&](TensorView<double> out) { ops::conv2d_forward(xd, wd, out, conv); },
        [&](ConstView<double> dout, TensorView<double> dwd) { ops::conv2d_backward_weight(dout, xd, dwd, conv); },
        rng);
    std::printf("%s\n", result.message.c_str());
    return result.passed ? 0 : 1;
}
