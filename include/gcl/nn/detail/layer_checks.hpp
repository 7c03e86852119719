#pragma once
// Checks shared by the layers: every message names the layer (its scope name) and the shapes.
#include <string>
#include <string_view>

#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::nn::detail {

// " 'encoder.block0.conv1'" for a named layer, "" for an anonymous one.
inline std::string quoted(const std::string& name) { return name.empty() ? std::string() : " '" + name + "'"; }

// Throws unless forward has run (backward reads what forward cached).
inline void require_forward(bool forward_done, std::string_view op, const std::string& name) {
    if (!forward_done) fail(op, "layer", quoted(name), ": backward called before forward");
}

// Throws unless the upstream gradient has the shape of the forward's output.
inline void require_gradient_shape(std::string_view op, const std::string& name, const Shape& dy, const Shape& y) {
    if (!(dy == y)) fail(op, "layer", quoted(name), ": dy has shape ", dy, " but the forward output has shape ", y);
}

// Throws unless dy stacks `passes` gradients of the forward's output along the batch dimension:
// dy is y's shape with the first extent multiplied by `passes` (backward_stacked).
inline void require_stacked_gradient_shape(std::string_view op, const std::string& name, const Shape& dy,
                                           const Shape& y, index_t passes) {
    if (passes < 1) fail(op, "layer", quoted(name), ": needs at least one pass, got ", passes);
    Shape expected = y;
    if (expected.rank() > 0) expected[0] *= passes;
    if (!(dy == expected))
        fail(op, "layer", quoted(name), ": dy has shape ", dy, " but ", passes, " stacked gradients of the output ", y,
             " have shape ", expected);
}

// Pass k's block of a stack of gradients [passes * N, ...] (contiguous): its N rows of the batch.
template <class View>
View pass_block(View stacked, index_t passes, index_t pass) {
    const index_t n = stacked.dim(0) / passes;
    return stacked.narrow(0, pass * n, n);
}

// The shape of `passes` stacked tensors of shape x.
inline Shape stacked_shape(Shape x, index_t passes) {
    x[0] *= passes;
    return x;
}

// Throws unless x is [N, channels, H, W] (channels < 0: any number of channels).
inline void require_image(std::string_view op, const std::string& name, const Shape& x, index_t channels) {
    if (x.rank() != 4 || (channels >= 0 && x[1] != channels)) {
        if (channels >= 0) fail(op, "layer", quoted(name), " expects input [N, ", channels, ", H, W], got ", x);
        fail(op, "layer", quoted(name), " expects input [N, C, H, W], got ", x);
    }
}

}  // namespace gcl::nn::detail
