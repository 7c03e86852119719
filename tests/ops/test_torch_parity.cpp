// gcl::ops against PyTorch on fixtures written by scripts/fixtures/ops.py (float64 throughout).
#include "gcl/core/npy.hpp"
#include "gcl/ops/batch_norm.hpp"
#include "gcl/ops/conv2d.hpp"
#include "gcl/ops/conv_transpose2d.hpp"
#include "gcl/ops/normalize.hpp"
#include "gcl/ops/pooling.hpp"
#include "gcl/ops/softmax.hpp"
#include "support/compare.hpp"
#include "support/errors.hpp"
#include "support/gradient.hpp"
#include "support/tensors.hpp"

#include <string>

using namespace gcl_test;
namespace ops = gcl::ops;

namespace {

Tensor<double> load(const std::string& name) {
    return gcl::load_npy<double>(std::string(GCL_TEST_FIXTURES) + "/ops/" + name + ".npy");
}

}  // namespace

TEST_CASE("conv2d matches PyTorch", "[ops][conv2d][torch]") {
    const auto x = load("conv2d_x"), w = load("conv2d_w"), b = load("conv2d_b"), dy = load("conv2d_dy");
    const gcl::Conv2dParams p{.stride = {2, 1}, .padding = {1, 2}, .dilation = {1, 2}};
    Tensor<double> y(ops::conv2d_output_shape(x.shape(), w.shape(), p)), dx(x.shape()), dw(w.shape()), db(b.shape());
    ops::conv2d_forward(x, w, b, y.view(), p);
    ops::conv2d_backward_data(dy, w, dx.view(), p);
    ops::conv2d_backward_weight(dy, x, dw.view(), p);
    ops::conv2d_backward_bias(dy, db.view());
    require_close(y, load("conv2d_y"));
    require_close(dx, load("conv2d_dx"));
    require_close(dw, load("conv2d_dw"));
    require_close(db, load("conv2d_db"));
}

TEST_CASE("conv_transpose2d matches PyTorch's weight layout and output padding", "[ops][conv_transpose2d][torch]") {
    const auto x = load("conv_transpose2d_x"), w = load("conv_transpose2d_w"), b = load("conv_transpose2d_b");
    const auto dy = load("conv_transpose2d_dy");
    const gcl::ConvTranspose2dParams p{.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}};
    Tensor<double> y(ops::conv_transpose2d_output_shape(x.shape(), w.shape(), p)), dx(x.shape()), dw(w.shape()),
        db(b.shape());
    ops::conv_transpose2d_forward(x, w, b, y.view(), p);
    ops::conv_transpose2d_backward_data(dy, w, dx.view(), p);
    ops::conv_transpose2d_backward_weight(dy, x, dw.view(), p);
    ops::conv_transpose2d_backward_bias(dy, db.view());
    require_close(y, load("conv_transpose2d_y"));
    require_close(dx, load("conv_transpose2d_dx"));
    require_close(dw, load("conv_transpose2d_dw"));
    require_close(db, load("conv_transpose2d_db"));
}

TEST_CASE("batch norm matches PyTorch in training (running statistics included) and evaluation",
          "[ops][batch_norm][torch]") {
    const auto x = load("batch_norm_x"), gamma = load("batch_norm_gamma"), beta = load("batch_norm_beta");
    const auto dy = load("batch_norm_dy");
    auto rm = load("batch_norm_running_mean0"), rv = load("batch_norm_running_var0");
    Tensor<double> y(x.shape()), mean(gamma.shape()), invstd(gamma.shape());
    ops::batch_norm_forward_train(x, gamma, beta, y.view(), rm.view(), rv.view(), mean.view(), invstd.view(),
                                  {.momentum = 0.1, .eps = 1e-5});
    require_close(y, load("batch_norm_y"));
    require_close(rm, load("batch_norm_running_mean"));
    require_close(rv, load("batch_norm_running_var"));
    Tensor<double> dx(x.shape()), dgamma(gamma.shape()), dbeta(gamma.shape());
    ops::batch_norm_backward_train(dy, x, gamma, mean, invstd, dx.view(), dgamma.view(), dbeta.view());
    require_close(dx, load("batch_norm_dx"));
    require_close(dgamma, load("batch_norm_dgamma"));
    require_close(dbeta, load("batch_norm_dbeta"));
    ops::batch_norm_forward_eval(x, gamma, beta, rm, rv, y.view(), {.eps = 1e-5});
    require_close(y, load("batch_norm_y_eval"));
}

TEST_CASE("max pooling matches PyTorch, indices included", "[ops][pooling][torch]") {
    const auto x = load("max_pool2d_x"), dy = load("max_pool2d_dy");
    const gcl::Pool2dParams p{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}};
    const Shape ys = ops::max_pool2d_output_shape(x.shape(), p);
    Tensor<double> y(ys), dx(x.shape());
    Tensor<index_t> indices(ys);
    ops::max_pool2d_forward(x, y.view(), indices.view(), p);
    ops::max_pool2d_backward(dy, indices, dx.view(), p);
    require_close(y, load("max_pool2d_y"));
    require_equal(indices, gcl::load_npy<std::int64_t>(std::string(GCL_TEST_FIXTURES) + "/ops/max_pool2d_indices.npy"));
    require_close(dx, load("max_pool2d_dx"));
}

TEST_CASE("softmax and log-softmax match PyTorch", "[ops][softmax][torch]") {
    const auto x = load("softmax_x");
    Tensor<double> y(x.shape()), dx(x.shape());
    ops::softmax_forward(x, y.view(), -1);
    require_close(y, load("softmax_y"));
    ops::softmax_backward(load("softmax_dy"), y, dx.view(), -1);
    require_close(dx, load("softmax_dx"));
    ops::log_softmax_forward(x, y.view(), 1);
    require_close(y, load("log_softmax_y"));
    ops::log_softmax_backward(load("log_softmax_dy"), y, dx.view(), 1);
    require_close(dx, load("log_softmax_dx"));
}

TEST_CASE("l2 normalisation matches F.normalize, zero vectors included", "[ops][normalize][torch]") {
    const auto x = load("normalize_x");
    Tensor<double> y(x.shape()), dx(x.shape());
    ops::l2_normalize_forward(x, y.view(), 1);
    ops::l2_normalize_backward(load("normalize_dy"), x, dx.view(), 1);
    require_close(y, load("normalize_y"));
    require_close(dx, load("normalize_dx"));
}
