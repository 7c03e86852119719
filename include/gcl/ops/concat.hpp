#pragma once
// Concatenation and splitting along one dimension (dimension 1, the channels, by default), as
// for the skip connections of a U-Net:
//
//   ops::concat({skip.cview(), up.cview()}, merged.view());      // [N, C1 + C2, H, W]
//   ops::split(dmerged, {dskip.view(), dup.view()});             // the gradient: the inverse
//
// Views may have any strides (both are strided copies, so they run on every backend that
// provides Elementwise::copy); outputs must not overlap inputs.
#include <vector>

#include "gcl/ops/common.hpp"
#include "gcl/ops/elementwise.hpp"

namespace gcl::ops {

namespace detail {
// Throws unless `part` matches `whole` in every dimension but d.
inline void check_concat_part(std::string_view op, const Shape& whole, const Shape& part, int d,
                              std::string_view whole_name, std::string_view part_name, std::size_t k) {
    bool ok = part.rank() == whole.rank();
    for (int i = 0; ok && i < whole.rank(); ++i) ok = i == d || part[i] == whole[i];
    if (!ok)
        fail(op, part_name, " ", k, " has shape ", part, ", which does not match ", whole_name, " ", whole,
             " outside dimension ", d);
}
}  // namespace detail

// out = the inputs, one after the other along dim.
template <class T, class Device>
void concat(const std::vector<Input<T, Device>>& inputs, TensorView<T, Device> out, int dim = 1) {
    constexpr std::string_view op = "ops::concat";
    const int d = resolve_dim(op, out.shape(), dim);
    if (inputs.empty()) fail(op, "needs at least one input (out has shape ", out.shape(), ")");
    index_t total = 0;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        detail::check_concat_part(op, out.shape(), inputs[k].shape(), d, "out", "input", k);
        require_disjoint(op, out, inputs[k], "out", "an input");
        total += inputs[k].dim(d);
    }
    if (total != out.dim(d)) {
        std::string parts;
        for (std::size_t k = 0; k < inputs.size(); ++k) parts += (k ? " + " : "") + inputs[k].shape().str();
        fail(op, "out has shape ", out.shape(), " but the inputs ", parts, " add up to ", total,
             " along dimension ", d);
    }
    index_t offset = 0;
    for (const auto& in : inputs) {
        copy(in, out.narrow(d, offset, in.dim(d)));
        offset += in.dim(d);
    }
}

// The outputs = consecutive slices of `in` along dim (their extents must add up to in's).
template <ReadableTensor X>
void split(const X& x, const std::vector<TensorView<typename X::value_type, typename X::device_type>>& outputs,
           int dim = 1) {
    constexpr std::string_view op = "ops::split";
    const ConstViewOf<X> in = x;
    const int d = resolve_dim(op, in.shape(), dim);
    if (outputs.empty()) fail(op, "needs at least one output (in has shape ", in.shape(), ")");
    index_t total = 0;
    for (std::size_t k = 0; k < outputs.size(); ++k) {
        detail::check_concat_part(op, in.shape(), outputs[k].shape(), d, "in", "output", k);
        require_disjoint(op, outputs[k], in, "an output", "in");
        for (std::size_t j = 0; j < k; ++j) require_disjoint(op, outputs[k], outputs[j], "an output", "another output");
        total += outputs[k].dim(d);
    }
    if (total != in.dim(d)) {
        std::string parts;
        for (std::size_t k = 0; k < outputs.size(); ++k) parts += (k ? " + " : "") + outputs[k].shape().str();
        fail(op, "in has shape ", in.shape(), " but the outputs ", parts, " add up to ", total, " along dimension ", d);
    }
    index_t offset = 0;
    for (const auto& out : outputs) {
        copy(in.narrow(d, offset, out.dim(d)), out);
        offset += out.dim(d);
    }
}

}  // namespace gcl::ops
