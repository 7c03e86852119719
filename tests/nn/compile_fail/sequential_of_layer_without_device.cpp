// Must not compile: a Sequential of a type that does not say which device its tensors live on.
// The test checks that the compiler names the missing device_type in one line
// (tests/nn/CMakeLists.txt).
#include "gcl/nn/sequential.hpp"

struct NoDevice {
    using value_type = float;
    gcl::ConstView<float> forward(gcl::ConstView<float> x) { return x; }
    gcl::ConstView<float> backward(gcl::ConstView<float> dy) { return dy; }
    gcl::Shape output_shape(const gcl::Shape& x) const { return x; }
    void set_training(bool) {}
    bool training() const { return true; }
};

int main() {
    gcl::nn::Sequential<NoDevice> stack{NoDevice{}};
    (void)stack;
}
