// Must not compile: host code reading an element of a device view. The test checks that the
// compiler names the host-only requirement (tests/core/CMakeLists.txt).
#include "gcl/core/tensor_view.hpp"

int main() {
    float* device_memory = nullptr;
    const gcl::TensorView<float, gcl::cuda> v(device_memory, gcl::Shape{4});
    return static_cast<int>(v(1));
}
