#pragma once
// Types that break the layer contract (gcl/nn/layer.hpp) by one member each: the compile-fail
// programs next to this header and tests/nn/test_layer_devices.cpp use them.
#include "gcl/core/device.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/tensor_view.hpp"

namespace nn_non_layers {

// Everything but a device_type.
struct NoDevice {
    using value_type = float;
    gcl::ConstView<float> forward(gcl::ConstView<float> x) { return x; }
    gcl::ConstView<float> backward(gcl::ConstView<float> dy) { return dy; }
    gcl::Shape output_shape(const gcl::Shape& x) const { return x; }
    void set_training(bool) {}
    bool training() const { return true; }
};

// Everything but backward.
struct NoBackward {
    using value_type = float;
    using device_type = gcl::cpu;
    gcl::ConstView<float> forward(gcl::ConstView<float> x) { return x; }
    gcl::Shape output_shape(const gcl::Shape& x) const { return x; }
    void set_training(bool) {}
    bool training() const { return true; }
};

}  // namespace nn_non_layers
