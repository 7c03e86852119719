// Must not compile: a Sequential of a type without backward. The test checks that the compiler
// names the missing requirement in one line (tests/nn/CMakeLists.txt).
#include "gcl/nn/sequential.hpp"
#include "non_layers.hpp"

int main() {
    gcl::nn::Sequential<nn_non_layers::NoBackward> stack{nn_non_layers::NoBackward{}};
    (void)stack;
}
