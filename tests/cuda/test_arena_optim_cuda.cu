// ParameterArena<T, gcl::cuda>, backend::Elementwise<cuda> and the optimizers on cuda, against the
// same calls on the cpu. Fill, copy and +, -, *, / give the CPU's bits; affine maps, axpby and
// the optimizer updates may differ by rounding (nvcc fuses a * b + c into one FMA), so they are
// compared within a few units in the last place.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../optim/optim_test_util.hpp"
#include "gcl/core/random.hpp"
#include "gcl/cuda.cuh"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/transfer.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/optim/adam.hpp"
#include "gcl/optim/sgd.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::WriteMode;
using gcl::nn::ParameterArena;
namespace ops = gcl::ops;
namespace optim = gcl::optim;
using optim_test::bitwise_equal;
using optim_test::random_tensor;

namespace {

// Copies a contiguous host view into a contiguous device view of the same size.
template <class T>
void upload(gcl::TensorView<const T> host, gcl::TensorView<T, gcl::cuda> device) {
    REQUIRE(host.numel() == device.numel());
    GCL_CUDA_CHECK(cudaMemcpy(device.data(), host.data(), host.numel() * sizeof(T), cudaMemcpyHostToDevice));
}

template <class T>
Tensor<T> download(gcl::TensorView<const T, gcl::cuda> device) {
    return gcl::to_host(device);
}

// The largest difference between a and b, in units of the element type's epsilon times the
// larger magnitude (at least 1).
template <class T>
double ulps_apart(gcl::TensorView<const T> a, gcl::TensorView<const T> b) {
    double worst = 0;
    for (index_t i = 0; i < a.numel(); ++i) {
        const double x = a.data()[i], y = b.data()[i];
        const double scale = std::max({1.0, std::abs(x), std::abs(y)}) * std::numeric_limits<T>::epsilon();
        worst = std::max(worst, std::abs(x - y) / scale);
    }
    return worst;
}

// Registers the same parameters (with mixed options) and a buffer in an arena of either device.
template <class Arena>
void register_model(Arena& arena) {
    arena.add_parameter("conv.weight", Shape{4, 3, 3, 3});
    arena.add_parameter("conv.bias", Shape{4}, {.weight_decay = false});
    arena.add_parameter("norm.weight", Shape{4}, {.weight_decay = false});
    arena.add_parameter("head.weight", Shape{5, 4}, {.trainable = false});
    arena.add_parameter("head.bias", Shape{5});
    arena.add_buffer("norm.running_mean", Shape{4});
}

}  // namespace

TEMPLATE_TEST_CASE("Elementwise<cuda> gives the cpu results", "[cuda][elementwise]", float, double) {
    using T = TestType;
    const Tensor<T> a = random_tensor<T>(Shape{37, 129}, 1);
    Tensor<T> b = random_tensor<T>(Shape{37, 129}, 2);
    for (index_t i = 0; i < b.numel(); ++i) b.data()[i] += T(3);  // no division by zero
    const Tensor<T, gcl::cuda> da = gcl::to_device(a), db = gcl::to_device(b);
    Tensor<T> out(a.shape());
    Tensor<T, gcl::cuda> dout(a.shape());

    ops::fill(out.view(), T(1.5));
    ops::fill(dout.view(), T(1.5));
    CHECK(bitwise_equal<T>(download<T>(dout.cview()).cview(), out.cview()));

    ops::add(a.cview(), b.cview(), out.view());
    ops::add(da.cview(), db.cview(), dout.view());
    CHECK(bitwise_equal<T>(download<T>(dout.cview()).cview(), out.cview()));
    ops::sub(a.cview(), b.cview(), out.view());
    ops::sub(da.cview(), db.cview(), dout.view());
    CHECK(bitwise_equal<T>(download<T>(dout.cview()).cview(), out.cview()));
    ops::mul(a.cview(), b.cview(), out.view());
    ops::mul(da.cview(), db.cview(), dout.view());
    CHECK(bitwise_equal<T>(download<T>(dout.cview()).cview(), out.cview()));
    ops::div(a.cview(), b.cview(), out.view());
    ops::div(da.cview(), db.cview(), dout.view());
    CHECK(bitwise_equal<T>(download<T>(dout.cview()).cview(), out.cview()));

    ops::scale(a.cview(), T(0.3), out.view());
    ops::scale(da.cview(), T(0.3), dout.view());
    CHECK(bitwise_equal<T>(download<T>(dout.cview()).cview(), out.cview()));
    ops::add_scalar(a.cview(), T(-2), out.view());
    ops::add_scalar(da.cview(), T(-2), dout.view());
    CHECK(bitwise_equal<T>(download<T>(dout.cview()).cview(), out.cview()));

    // axpby with beta == 0 must not read y: NaN there does not survive.
    ops::fill(out.view(), std::numeric_limits<T>::quiet_NaN());
    ops::fill(dout.view(), std::numeric_limits<T>::quiet_NaN());
    ops::axpby(T(0.7), a.cview(), T(0), out.view());
    ops::axpby(T(0.7), da.cview(), T(0), dout.view());
    CHECK(bitwise_equal<T>(download<T>(dout.cview()).cview(), out.cview()));
    ops::axpby(T(-1.25), b.cview(), T(0.5), out.view());
    ops::axpby(T(-1.25), db.cview(), T(0.5), dout.view());
    CHECK(ulps_apart<T>(download<T>(dout.cview()).cview(), out.cview()) <= 2);
    ops::axpy(T(0.1), a.cview(), out.view());
    ops::axpy(T(0.1), da.cview(), dout.view());
    CHECK(ulps_apart<T>(download<T>(dout.cview()).cview(), out.cview()) <= 4);

    // Strided copies: a transpose, a narrowed block, a contiguous run (cudaMemcpyAsync).
    Tensor<T> t(Shape{129, 37});
    Tensor<T, gcl::cuda> dt(Shape{129, 37});
    ops::copy(a.cview().transpose(0, 1), t.view());
    ops::copy(da.cview().transpose(0, 1), dt.view());
    CHECK(bitwise_equal<T>(download<T>(dt.cview()).cview(), t.cview()));
    Tensor<T> block(Shape{5, 60});
    Tensor<T, gcl::cuda> dblock(Shape{5, 60});
    ops::fill(block.view(), T(0));
    ops::copy(a.cview().narrow(0, 3, 5).narrow(1, 7, 60), block.view());
    ops::copy(da.cview().narrow(0, 3, 5).narrow(1, 7, 60), dblock.view());
    CHECK(bitwise_equal<T>(download<T>(dblock.cview()).cview(), block.cview()));
    ops::copy(da.cview(), dout.view());
    CHECK(bitwise_equal<T>(download<T>(dout.cview()).cview(), a.cview()));
}

TEMPLATE_TEST_CASE("ParameterArena<T, gcl::cuda> keeps the cpu arena's layout, targets and gradients",
                   "[cuda][arena]", float, double) {
    using T = TestType;
    ParameterArena<T> host;
    ParameterArena<T, gcl::cuda> device;
    register_model(host);
    register_model(device);
    REQUIRE(device.size() == host.size());
    REQUIRE(device.buffer_size() == host.buffer_size());
    for (std::size_t k = 0; k < host.parameter_count(); ++k) {
        CHECK(device.parameters()[k].name == host.parameters()[k].name);
        CHECK(device.parameters()[k].offset == host.parameters()[k].offset);
    }
    const index_t P = host.size();

    // New storage is zeroed; values written survive a registration that moves the storage.
    CHECK(bitwise_equal<T>(download<T>(device.flat_values()).cview(), host.flat_values()));
    const Tensor<T> values = random_tensor<T>(Shape{P}, 3);
    ops::copy(values.cview(), host.flat_values());
    upload<T>(values.cview(), device.flat_values());
    const Tensor<T> grads = random_tensor<T>(Shape{P}, 4);
    ops::copy(grads.cview(), host.flat_grads());
    upload<T>(grads.cview(), device.flat_grads());
    const auto extra_h = host.add_parameter("late.weight", Shape{300});
    const auto extra_d = device.add_parameter("late.weight", Shape{300});
    CHECK(bitwise_equal<T>(download<T>(device.flat_values()).cview(), host.flat_values()));
    CHECK(bitwise_equal<T>(download<T>(device.flat_grads()).cview(), host.flat_grads()));
    const index_t P2 = host.size();

    // Overwrite zeroes the target; accumulate keeps it; contributions add (contiguous or not).
    const Tensor<T> contribution = random_tensor<T>(Shape{5, 4}, 5);
    const Tensor<T> transposed = random_tensor<T>(Shape{4, 5}, 6);
    const Tensor<T, gcl::cuda> dcontribution = gcl::to_device(contribution), dtransposed = gcl::to_device(transposed);
    for (WriteMode mode : {WriteMode::overwrite, WriteMode::accumulate}) {
        host.begin_backward(mode);
        device.begin_backward(mode);
        CHECK(device.grad_mode() == mode);
        host.accumulate_grad(host.parameter("head.weight"), contribution.cview());
        device.accumulate_grad(device.parameter("head.weight"), dcontribution.cview());
        host.accumulate_grad(host.parameter("head.weight"), transposed.cview().transpose(0, 1));
        device.accumulate_grad(device.parameter("head.weight"), dtransposed.cview().transpose(0, 1));
        host.end_backward();
        device.end_backward();
        CHECK(bitwise_equal<T>(download<T>(device.flat_grads()).cview(), host.flat_grads()));
    }
    CHECK_THROWS_WITH(device.grad_target(extra_d), Catch::Contains("no backward pass has begun"));

    // Row m of an external K x P matrix, and a stacked target written through grad_target(h, k).
    const index_t K = 3;
    Tensor<T> G(Shape{K, P2});
    Tensor<T, gcl::cuda> dG(Shape{K, P2});
    ops::fill(G.view(), T(2));
    ops::fill(dG.view(), T(2));
    host.begin_backward(G.view(), 1, WriteMode::overwrite);
    device.begin_backward(dG.view(), 1, WriteMode::overwrite);
    host.accumulate_grad(extra_h, random_tensor<T>(Shape{300}, 7).cview());
    device.accumulate_grad(extra_d, gcl::to_device(random_tensor<T>(Shape{300}, 7)).cview());
    CHECK(bitwise_equal<T>(download<T>(dG.cview()).cview(), G.cview()));

    host.begin_stacked_backward(G.view(), WriteMode::accumulate);
    device.begin_stacked_backward(dG.view(), WriteMode::accumulate);
    CHECK(device.target_passes() == K);
    for (index_t k = 0; k < K; ++k) {
        const Tensor<T> g = random_tensor<T>(Shape{4}, 10 + static_cast<std::uint64_t>(k));
        ops::axpy(T(1), g.cview(), host.grad_target(host.parameter("conv.bias"), k));
        ops::axpy(T(1), gcl::to_device(g).cview(), device.grad_target(device.parameter("conv.bias"), k));
    }
    CHECK(bitwise_equal<T>(download<T>(dG.cview()).cview(), G.cview()));
    CHECK_THROWS_WITH(device.grad_target(extra_d), Catch::Contains("grad_target(h, k)"));
    host.begin_stacked_backward(G.view(), WriteMode::overwrite);
    device.begin_stacked_backward(dG.view(), WriteMode::overwrite);
    CHECK(bitwise_equal<T>(download<T>(dG.cview()).cview(), G.cview()));
    device.end_backward();

    device.zero_grad();
    host.zero_grad();
    CHECK(bitwise_equal<T>(download<T>(device.flat_grads()).cview(), host.flat_grads()));
}

namespace {

// Runs `steps` steps of the same optimizer on a cpu and a cuda arena with the same gradients
// and returns how far apart (in ulps) the parameters and states end.
template <class T, class Rule>
double optimizer_ulps(const typename Rule::options_type& options, int steps) {
    ParameterArena<T> host;
    ParameterArena<T, gcl::cuda> device;
    register_model(host);
    register_model(device);
    const Tensor<T> values = random_tensor<T>(Shape{host.size()}, 20);
    ops::copy(values.cview(), host.flat_values());
    upload<T>(values.cview(), device.flat_values());
    optim::FlatOptimizer<T, Rule> cpu_opt(options);
    optim::FlatOptimizer<T, Rule, gcl::cuda> cuda_opt(options);
    double worst = 0;
    for (int s = 0; s < steps; ++s) {
        const Tensor<T> g = random_tensor<T>(Shape{host.size()}, 30 + static_cast<std::uint64_t>(s));
        ops::copy(g.cview(), host.flat_grads());
        upload<T>(g.cview(), device.flat_grads());
        cpu_opt.step(host);
        cuda_opt.step(device);
    }
    worst = std::max(worst, ulps_apart<T>(download<T>(device.flat_values()).cview(), host.flat_values()));
    const auto cpu_state = cpu_opt.state();
    const auto cuda_state = cuda_opt.state();
    REQUIRE(cpu_state.size() == cuda_state.size());
    for (std::size_t k = 0; k < cpu_state.size(); ++k) {
        CHECK(cuda_state[k].name == cpu_state[k].name);
        worst = std::max(worst, ulps_apart<T>(download<T>(cuda_state[k].values).cview(), cpu_state[k].values));
    }
    CHECK(cuda_opt.step_count() == steps);
    // The frozen parameter did not move.
    CHECK(bitwise_equal<T>(download<T>(device.value("head.weight")).cview(), host.value("head.weight")));
    return worst;
}

}  // namespace

TEST_CASE("transfer_parameters converts double to float on cuda as on the cpu", "[cuda][arena][transfer]") {
    ParameterArena<double> host_source;
    ParameterArena<float> host_target;
    ParameterArena<double, gcl::cuda> source;
    ParameterArena<float, gcl::cuda> target;
    register_model(host_source);
    register_model(host_target);
    register_model(source);
    register_model(target);
    const Tensor<double> values = random_tensor<double>(Shape{host_source.size()}, 21);
    const Tensor<double> buffers = random_tensor<double>(Shape{host_source.buffer_size()}, 22);
    ops::copy(values.cview(), host_source.flat_values());
    ops::copy(buffers.cview(), host_source.flat_buffers());
    upload<double>(values.cview(), source.flat_values());
    upload<double>(buffers.cview(), source.flat_buffers());

    const gcl::nn::TransferReport on_host = gcl::nn::transfer_parameters(host_source, host_target);
    const gcl::nn::TransferReport on_device = gcl::nn::transfer_parameters(source, target);
    CHECK(on_device.copied == on_host.copied);
    CHECK(on_device.missing == on_host.missing);
    // The same rounding of each value: the cpu's bits.
    CHECK(bitwise_equal<float>(download<float>(target.flat_values()).cview(), host_target.flat_values()));
    CHECK(bitwise_equal<float>(download<float>(target.flat_buffers()).cview(), host_target.flat_buffers()));
}

TEMPLATE_TEST_CASE("SGD, Adam and AdamW on cuda follow the cpu optimizers", "[cuda][optim]", float, double) {
    using T = TestType;
    // A few steps amplify rounding differences a little; 64 ulps of the larger magnitude is far
    // below what a wrong formula, flag or state index would give.
    const double limit = 64;
    CHECK(optimizer_ulps<T, optim::SgdRule<T>>({.learning_rate = 0.1}, 4) <= limit);
    CHECK(optimizer_ulps<T, optim::SgdRule<T>>(
              {.learning_rate = 0.1, .momentum = 0.9, .dampening = 0.2, .weight_decay = 0.01}, 4) <= limit);
    CHECK(optimizer_ulps<T, optim::SgdRule<T>>(
              {.learning_rate = 0.05, .momentum = 0.7, .weight_decay = 0.02, .nesterov = true, .maximize = true},
              4) <= limit);
    CHECK(optimizer_ulps<T, optim::AdamRule<T, optim::WeightDecay::coupled>>(
              {.learning_rate = 0.01, .weight_decay = 0.1}, 4) <= limit);
    CHECK(optimizer_ulps<T, optim::AdamRule<T, optim::WeightDecay::decoupled>>(
              {.learning_rate = 0.01, .weight_decay = 0.1, .amsgrad = true}, 4) <= limit);
}

TEMPLATE_TEST_CASE("A non-finite gradient on cuda is refused with the cpu's message", "[cuda][optim]", float,
                   double) {
    using T = TestType;
    ParameterArena<T> host;
    ParameterArena<T, gcl::cuda> device;
    register_model(host);
    register_model(device);
    Tensor<T> g(Shape{host.size()});
    g.data()[host.info(host.parameter("head.bias")).offset + 2] = std::numeric_limits<T>::infinity();
    g.data()[host.size() - 1] = std::numeric_limits<T>::quiet_NaN();
    ops::copy(g.cview(), host.flat_grads());
    upload<T>(g.cview(), device.flat_grads());
    optim::Adam<T> cpu_opt;
    optim::Adam<T, gcl::cuda> cuda_opt;
    std::string cpu_message, cuda_message;
    try {
        cpu_opt.step(host);
    } catch (const gcl::Error& e) {
        cpu_message = e.what();
    }
    try {
        cuda_opt.step(device);
    } catch (const gcl::Error& e) {
        cuda_message = e.what();
    }
    CHECK_THAT(cpu_message, Catch::Contains("element 2 of parameter 'head.bias'"));
    CHECK(cuda_message == cpu_message);
    CHECK(bitwise_equal<T>(download<T>(device.flat_values()).cview(), host.flat_values()));
}
