// Must not compile: a Sequential of a type without backward. The test checks that the compiler
// names the missing requirement in one line (tests/nn/CMakeLists.txt).
#include "gcl/nn/sequential.hpp"

struct NoBackward {
    using value_type = float;
    using device_type = gcl::cpu;
    gcl::ConstView<float> forward(gcl::ConstView<float> x) { return x; }
    gcl::Shape output_shape(const gcl::Shape& x) const { return x; }
    void set_training(bool) {}
    bool training() const { return true; }
};

int main() {
    gcl::nn::Sequential<NoBackward> stack{NoBackward{}};
    (void)stack;
}
