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

// Throws unless x is [N, channels, H, W] (channels < 0: any number of channels).
inline void require_image(std::string_view op, const std::string& name, const Shape& x, index_t channels) {
    if (x.rank() != 4 || (channels >= 0 && x[1] != channels)) {
        if (channels >= 0) fail(op, "layer", quoted(name), " expects input [N, ", channels, ", H, W], got ", x);
        fail(op, "layer", quoted(name), " expects input [N, C, H, W], got ", x);
    }
}

}  // namespace gcl::nn::detail
