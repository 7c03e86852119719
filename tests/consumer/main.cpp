// Compiles against the installed gcl package and uses a little of it.
#include <cstdio>

#include "gcl/gcl.hpp"

int main() {
    gcl::Tensor<float> t(gcl::Shape{4, 8});
    gcl::Rng rng(2024);
    gcl::fill_normal(t.view(), rng);
    double sum = gcl::as_eigen(t.view()).template cast<double>().sum();
    std::printf("gcl %d.%d.%d consumer: %s tensor, sum %.6f\n", gcl::version_major, gcl::version_minor,
                gcl::version_patch, t.shape().str().c_str(), sum);
    return t.numel() == 32 ? 0 : 1;
}
