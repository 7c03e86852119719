#pragma once
// NaN / infinity checks, for guarding losses, gradients and inputs:
//
//   if (!ops::all_finite(grad)) ...
//   ops::check_finite("train::step", loss_grad, "the loss gradient");   // throws gcl::Error
#include <string_view>

#include "gcl/backend/cpu/reduce.hpp"
#include "gcl/core/stream.hpp"
#include "gcl/ops/common.hpp"

namespace gcl::ops {

// Index of the first NaN or infinite element in row-major order, or -1.
template <ReadableTensor X>
index_t first_nonfinite(const X& x) {
    const ConstViewOf<X> v = x;
    require_contiguous("ops::first_nonfinite", v, "x");
    return backend::Reduce<typename X::device_type>::first_nonfinite(v);
}

template <ReadableTensor X>
bool all_finite(const X& x) {
    return first_nonfinite(x) < 0;
}

// Throws gcl::Error for `op` naming `what`, its shape, and the first non-finite element (its
// multi-index and value) unless every element is finite. While the current stream is captured
// into a graph (a model's forward pass recorded for replay) nothing runs, so nothing is checked.
template <ReadableTensor X>
void check_finite(std::string_view op, const X& x, std::string_view what = "tensor") {
    if (current_stream<typename X::device_type>().capturing()) return;
    const ConstViewOf<X> v = x;
    const index_t bad = first_nonfinite(v);
    if (bad < 0) return;
    std::string where = "[";
    index_t rest = bad;
    index_t position[max_rank] = {};
    for (int d = v.rank() - 1; d >= 0; --d) {
        position[d] = rest % v.dim(d);
        rest /= v.dim(d);
    }
    for (int d = 0; d < v.rank(); ++d) where += (d ? ", " : "") + std::to_string(position[d]);
    where += "]";
    const auto value = backend::Reduce<typename X::device_type>::element(v, bad);
    fail(op, what, " of shape ", v.shape(), " has a non-finite value ", value, " at ", where);
}

}  // namespace gcl::ops
