// Every layer, its composites and the U-Net on cuda (tests/nn/layer_cases.hpp): the gradient
// check in double, and one forward and backward pass against the cpu's in float and double
// from the same parameters (outputs, running statistics, input and parameter gradients).
#include <catch2/catch.hpp>

#include "gcl/cuda.cuh"
#include "nn/layer_cases.hpp"

// The layers are layers of the cuda device.
static_assert(gcl::nn::Layer<gcl::nn::UNet<float, gcl::cuda>> && gcl::nn::Layer<gcl::nn::ImageHead<double, gcl::cuda>>);

TEMPLATE_LIST_TEST_CASE("every layer passes its gradient check in double on cuda", "[cuda][nn][gradcheck]",
                        layer_cases::All) {
    layer_cases::require_gradients<TestType, gcl::cuda>();
}

TEMPLATE_LIST_TEST_CASE("every layer on cuda equals the cpu in float and double", "[cuda][nn]", layer_cases::All) {
    layer_cases::require_cpu_parity<TestType, float, gcl::cuda>();
    layer_cases::require_cpu_parity<TestType, double, gcl::cuda>();
}
