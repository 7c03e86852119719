#pragma once
// Batch normalisation over dimension 1 (channels) of x [N, C, ...] (rank 2 to 5), with PyTorch's
// semantics: training normalises with the batch mean and the biased batch variance, and moves
// the running estimates by `momentum` towards the batch mean and the unbiased batch variance;
// evaluation normalises with the running estimates.
//
//   y = gamma (x - mean) / sqrt(var + eps) + beta
//
//   Training:   ops::batch_norm_forward_train(x, gamma, beta, y, running_mean, running_var,
//                                             saved_mean, saved_invstd, params);
//               ops::batch_norm_backward_train(dy, x, gamma, saved_mean, saved_invstd,
//                                              dx, dgamma, dbeta, WriteMode::accumulate);
//   Evaluation: ops::batch_norm_forward_eval(x, gamma, beta, running_mean, running_var, y, params);
//               ops::batch_norm_backward_eval(dy, x, gamma, running_mean, running_var,
//                                             dx, dgamma, dbeta, params);
//
// gamma, beta, the running estimates and the saved statistics (batch mean, 1/sqrt(var + eps))
// are [C]. y may be x itself and dx may be dy itself (in place); nothing else may overlap.
// The write mode applies to dgamma and dbeta; dx is always overwritten.
//
// Synchronised batch norm (host tensors): the training passes take an optional reduce(values, n)
// that sums per-channel statistics over the ranks of a data-parallel job in place (see
// backend/cpu/batch_norm.hpp for what it receives); the result is the layer on the concatenated batch.
#include <type_traits>

#include "gcl/backend/cpu/batch_norm.hpp"
#include "gcl/ops/common.hpp"

namespace gcl::ops {

// The reduce of a batch norm that sees only its own batch.
struct LocalBatchStatistics {
    void operator()(double*, index_t) const {}
};

struct BatchNormParams {
    double momentum = 0.1;  // weight of the batch statistics in the running estimates
    double eps = 1e-5;      // added to the variance
};

namespace detail {

template <class T, class Device>
DimSplit check_batch_norm_input(std::string_view op, const TensorView<T, Device>& x, std::string_view name) {
    if (x.rank() < 2) fail(op, name, " must have shape [N, C, ...], got ", x.shape());
    require_contiguous(op, x, name);
    return split_at(x.shape(), 1);
}

template <class T, class U, class Device>
void check_channel_vector(std::string_view op, const TensorView<T, Device>& v, std::string_view name,
                          const TensorView<U, Device>& x, std::string_view x_name) {
    if (v.rank() != 1 || v.dim(0) != x.dim(1))
        fail(op, name, " must have shape [", x.dim(1), "] for ", x_name, " of shape ", x.shape(), ", got ", v.shape());
    require_contiguous(op, v, name);
}

inline void check_batch_norm_params(std::string_view op, const BatchNormParams& p) {
    if (!(p.eps > 0)) fail(op, "eps must be positive, got ", p.eps);
    if (!(p.momentum >= 0 && p.momentum <= 1)) fail(op, "momentum must be in [0, 1], got ", p.momentum);
}

template <class T, class U, class Device>
void check_same_as(std::string_view op, const TensorView<T, Device>& a, std::string_view a_name,
                   const TensorView<U, Device>& b, std::string_view b_name) {
    check_same_shape(op, a.shape(), b.shape(), a_name, b_name);
    require_contiguous(op, a, a_name);
}

}  // namespace detail

template <class T, class Device, class Reduce = LocalBatchStatistics>
void batch_norm_forward_train(Input<T, Device> x, Input<T, Device> gamma, Input<T, Device> beta,
                              TensorView<T, Device> y, TensorView<T, Device> running_mean,
                              TensorView<T, Device> running_var, TensorView<T, Device> saved_mean,
                              TensorView<T, Device> saved_invstd, const BatchNormParams& params = {},
                              Reduce&& reduce = Reduce{}) {
    constexpr std::string_view op = "ops::batch_norm_forward_train";
    const DimSplit s = detail::check_batch_norm_input(op, x, "x");
    detail::check_same_as(op, y, "y", x, "x");
    detail::check_channel_vector(op, gamma, "gamma", x, "x");
    detail::check_channel_vector(op, beta, "beta", x, "x");
    detail::check_channel_vector(op, running_mean, "running_mean", x, "x");
    detail::check_channel_vector(op, running_var, "running_var", x, "x");
    detail::check_channel_vector(op, saved_mean, "saved_mean", x, "x");
    detail::check_channel_vector(op, saved_invstd, "saved_invstd", x, "x");
    detail::check_batch_norm_params(op, params);
    if (s.outer * s.inner < 2)
        fail(op, "training needs more than one value per channel, got x of shape ", x.shape());
    require_disjoint_or_same(op, y, x, "y", "x");
    const ConstView<T, Device> reads[] = {x, gamma, beta};
    const TensorView<T, Device> writes[] = {y, running_mean, running_var, saved_mean, saved_invstd};
    const char* write_names[] = {"y", "running_mean", "running_var", "saved_mean", "saved_invstd"};
    for (int w = 1; w < 5; ++w) {
        for (const auto& r : reads) require_disjoint(op, writes[w], r, write_names[w], "an input");
        for (int v = 0; v < w; ++v) require_disjoint(op, writes[w], writes[v], write_names[w], write_names[v]);
    }
    require_disjoint(op, y, gamma, "y", "gamma");
    require_disjoint(op, y, beta, "y", "beta");
    if constexpr (std::is_same_v<std::decay_t<Reduce>, LocalBatchStatistics>) {
        backend::BatchNorm<Device>::forward_train(x, gamma, beta, y, running_mean, running_var, saved_mean, saved_invstd,
                                                  s.outer, s.extent, s.inner, params.momentum, params.eps);
    } else {
        backend::BatchNorm<Device>::forward_train(x, gamma, beta, y, running_mean, running_var, saved_mean, saved_invstd,
                                                  s.outer, s.extent, s.inner, params.momentum, params.eps, reduce);
    }
}

template <class T, class Device>
void batch_norm_forward_eval(Input<T, Device> x, Input<T, Device> gamma, Input<T, Device> beta,
                             Input<T, Device> running_mean, Input<T, Device> running_var, TensorView<T, Device> y,
                             const BatchNormParams& params = {}) {
    constexpr std::string_view op = "ops::batch_norm_forward_eval";
    const DimSplit s = detail::check_batch_norm_input(op, x, "x");
    detail::check_same_as(op, y, "y", x, "x");
    detail::check_channel_vector(op, gamma, "gamma", x, "x");
    detail::check_channel_vector(op, beta, "beta", x, "x");
    detail::check_channel_vector(op, running_mean, "running_mean", x, "x");
    detail::check_channel_vector(op, running_var, "running_var", x, "x");
    detail::check_batch_norm_params(op, params);
    require_disjoint_or_same(op, y, x, "y", "x");
    for (const auto& [v, name] : {std::pair{gamma, "gamma"}, std::pair{beta, "beta"},
                                  std::pair{running_mean, "running_mean"}, std::pair{running_var, "running_var"}})
        require_disjoint(op, y, v, "y", name);
    backend::BatchNorm<Device>::forward_eval(x, gamma, beta, running_mean, running_var, y, s.outer, s.extent, s.inner,
                                             params.eps);
}

namespace detail {
template <class T, class Device>
DimSplit check_batch_norm_backward(std::string_view op, const ConstView<T, Device>& dy, const ConstView<T, Device>& x,
                                   const ConstView<T, Device>& gamma, const ConstView<T, Device>& stat0,
                                   const ConstView<T, Device>& stat1, const char* stat0_name, const char* stat1_name,
                                   const TensorView<T, Device>& dx, const TensorView<T, Device>& dgamma,
                                   const TensorView<T, Device>& dbeta) {
    const DimSplit s = check_batch_norm_input(op, x, "x");
    check_same_as(op, dy, "dy", x, "x");
    check_same_as(op, dx, "dx", x, "x");
    check_channel_vector(op, gamma, "gamma", x, "x");
    check_channel_vector(op, stat0, stat0_name, x, "x");
    check_channel_vector(op, stat1, stat1_name, x, "x");
    check_channel_vector(op, dgamma, "dgamma", x, "x");
    check_channel_vector(op, dbeta, "dbeta", x, "x");
    require_disjoint_or_same(op, dx, dy, "dx", "dy");
    require_disjoint_or_same(op, dx, x, "dx", "x");
    const ConstView<T, Device> reads[] = {dy, x, gamma, stat0, stat1};
    for (const auto& r : reads) {
        require_disjoint(op, dgamma, r, "dgamma", "an input");
        require_disjoint(op, dbeta, r, "dbeta", "an input");
    }
    for (const auto& r : {gamma, stat0, stat1}) require_disjoint(op, dx, r, "dx", "a channel vector");
    require_disjoint(op, dgamma, dbeta, "dgamma", "dbeta");
    require_disjoint(op, dx, dgamma, "dx", "dgamma");
    require_disjoint(op, dx, dbeta, "dx", "dbeta");
    return s;
}
}  // namespace detail

template <class T, class Device, class Reduce = LocalBatchStatistics>
void batch_norm_backward_train(Input<T, Device> dy, Input<T, Device> x, Input<T, Device> gamma,
                               Input<T, Device> saved_mean, Input<T, Device> saved_invstd, TensorView<T, Device> dx,
                               TensorView<T, Device> dgamma, TensorView<T, Device> dbeta,
                               WriteMode mode = WriteMode::overwrite, Reduce&& reduce = Reduce{}) {
    const DimSplit s = detail::check_batch_norm_backward("ops::batch_norm_backward_train", dy, x, gamma, saved_mean,
                                                         saved_invstd, "saved_mean", "saved_invstd", dx, dgamma, dbeta);
    if constexpr (std::is_same_v<std::decay_t<Reduce>, LocalBatchStatistics>) {
        backend::BatchNorm<Device>::backward_train(dy, x, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta, s.outer,
                                                   s.extent, s.inner, mode == WriteMode::accumulate);
    } else {
        backend::BatchNorm<Device>::backward_train(dy, x, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta, s.outer,
                                                   s.extent, s.inner, mode == WriteMode::accumulate, reduce);
    }
}

template <class T, class Device>
void batch_norm_backward_eval(Input<T, Device> dy, Input<T, Device> x, Input<T, Device> gamma,
                              Input<T, Device> running_mean, Input<T, Device> running_var, TensorView<T, Device> dx,
                              TensorView<T, Device> dgamma, TensorView<T, Device> dbeta,
                              const BatchNormParams& params = {}, WriteMode mode = WriteMode::overwrite) {
    constexpr std::string_view op = "ops::batch_norm_backward_eval";
    detail::check_batch_norm_params(op, params);
    const DimSplit s = detail::check_batch_norm_backward(op, dy, x, gamma, running_mean, running_var, "running_mean",
                                                         "running_var", dx, dgamma, dbeta);
    backend::BatchNorm<Device>::backward_eval(dy, x, gamma, running_mean, running_var, dx, dgamma, dbeta, s.outer,
                                              s.extent, s.inner, params.eps, mode == WriteMode::accumulate);
}

}  // namespace gcl::ops
