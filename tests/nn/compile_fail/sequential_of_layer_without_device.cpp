// Must not compile: a Sequential of a type that does not say which device its tensors live on.
// The test checks that the compiler names the missing device_type in one line
// (tests/nn/CMakeLists.txt).
#include "gcl/nn/sequential.hpp"
#include "non_layers.hpp"

int main() {
    gcl::nn::Sequential<nn_non_layers::NoDevice> stack{nn_non_layers::NoDevice{}};
    (void)stack;
}
