#pragma once
// Per-channel bias along one dimension: dimension 1 is the channels of [N, C, H, W] and the
// features of [N, F].
#include "gcl/backend/cpu/bias.hpp"
#include "gcl/ops/common.hpp"

namespace gcl::ops {

namespace detail {
template <class T, class U, class Device>
DimSplit check_bias(std::string_view op, const TensorView<T, Device>& bias, const TensorView<U, Device>& y,
                    int dim, std::string_view bias_name, std::string_view y_name) {
    const int d = resolve_dim(op, y.shape(), dim);
    if (bias.rank() != 1 || bias.dim(0) != y.dim(d))
        fail(op, bias_name, " must have shape [", y.dim(d), "] for ", y_name, " of shape ", y.shape(),
             " (dimension ", d, "), got ", bias.shape());
    require_contiguous(op, bias, bias_name);
    require_contiguous(op, y, y_name);
    require_disjoint(op, y, bias, y_name, bias_name);
    return split_at(y.shape(), d);
}

template <class T, class Device>
void bias_backward(std::string_view op, const ConstView<T, Device>& dy, const TensorView<T, Device>& db, int dim,
                   WriteMode mode) {
    const DimSplit s = check_bias(op, db, dy, dim, "db", "dy");
    backend::Bias<Device>::backward(dy, db, s.outer, s.extent, s.inner, mode == WriteMode::accumulate);
}
}  // namespace detail

// y[..., c, ...] += bias[c], with c indexing dimension `dim` of y.
template <class T, class Device>
void add_bias(Input<T, Device> bias, TensorView<T, Device> y, int dim = 1) {
    const DimSplit s = detail::check_bias("ops::add_bias", bias, y, dim, "bias", "y");
    backend::Bias<Device>::add(bias, y, s.outer, s.extent, s.inner);
}

// db[c] = (or +=) the sum of dy over every dimension but `dim`: the gradient of add_bias.
template <class T, class Device>
void bias_backward(Input<T, Device> dy, TensorView<T, Device> db, int dim = 1,
                   WriteMode mode = WriteMode::overwrite) {
    detail::bias_backward("ops::bias_backward", dy, db, dim, mode);
}

}  // namespace gcl::ops
