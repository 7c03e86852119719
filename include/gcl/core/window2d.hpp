#pragma once
// The parameters of a sliding 2-d window: convolution, transposed convolution and max pooling.
// Plain values below the backend, so kernels take them without depending on gcl::ops; the
// checks and output shapes they give are in gcl/ops/window2d.hpp.
#include <array>

#include "gcl/core/shape.hpp"

namespace gcl {

// Per spatial dimension {height, width}.
using Extent2 = std::array<index_t, 2>;

struct Conv2dParams {
    Extent2 stride{1, 1};
    Extent2 padding{0, 0};   // zeros added on both sides
    Extent2 dilation{1, 1};  // spacing between kernel taps
};

struct ConvTranspose2dParams {
    Extent2 stride{1, 1};
    Extent2 padding{0, 0};         // as in the convolution this one transposes
    Extent2 output_padding{0, 0};  // extra rows/columns on one side of the output; < max(stride, dilation)
    Extent2 dilation{1, 1};

    // The convolution whose adjoint this is (maps the output shape back to the input shape).
    Conv2dParams adjoint() const { return Conv2dParams{stride, padding, dilation}; }
};

// Max pooling window; the default is 2x2 with stride 2. Padding is implicit -infinity.
struct Pool2dParams {
    Extent2 kernel{2, 2};
    Extent2 stride{2, 2};
    Extent2 padding{0, 0};  // at most half the kernel, as in PyTorch
};

}  // namespace gcl
