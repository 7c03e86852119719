// Writing a layer of your own against gcl's layer contract, composing it with gcl's layers, and
// checking its gradients by finite differences (the code of docs/nn.md).
//
//   ./nn_custom_layer
#include <cstdio>

#include "gcl/gcl.hpp"

namespace nn = gcl::nn;

// y = x * scale, one learned scale per channel of [N, C, H, W]. A host layer: its loops read and
// write elements directly, which only host memory allows (a layer for any device calls gcl::ops).
template <class T>
class ChannelScale {
public:
    using value_type = T;
    using device_type = gcl::cpu;
    ChannelScale(const nn::Scope<T>& scope, gcl::index_t channels)
        : arena_(&scope.arena()), scale_(scope.parameter("scale", {channels}, nn::Init::ones())) {}

    gcl::Shape output_shape(const gcl::Shape& x) const { return x; }
    gcl::ConstView<T> forward(gcl::ConstView<T> x) {
        x_ = x;
        y_.resize(x.shape());
        auto s = arena_->value(scale_);
        for (gcl::index_t i = 0; i < x.numel(); ++i) y_.data()[i] = x.data()[i] * s(channel(x, i));
        return y_.cview();
    }
    gcl::ConstView<T> backward(gcl::ConstView<T> dy) {
        dx_.resize(x_.shape());
        auto s = arena_->value(scale_);
        auto ds = arena_->grad_target(scale_);            // add, never assign
        for (gcl::index_t i = 0; i < dy.numel(); ++i) {
            dx_.data()[i] = dy.data()[i] * s(channel(x_, i));
            ds(channel(x_, i)) += dy.data()[i] * x_.data()[i];
        }
        return dx_.cview();
    }
    void set_training(bool t) { training_ = t; }
    bool training() const { return training_; }

private:
    static gcl::index_t channel(const gcl::ConstView<T>& x, gcl::index_t i) {
        return i / (x.dim(2) * x.dim(3)) % x.dim(1);
    }
    nn::ParameterArena<T>* arena_;
    nn::ParamHandle scale_;
    bool training_ = true;
    gcl::ConstView<T> x_;
    gcl::Tensor<T> y_, dx_;
};
static_assert(nn::Layer<ChannelScale<float>>);

// y = x + shift, one learned shift per channel: a layer for any device. Its tensors are
// Tensor<T, D>, its parameters live in a ParameterArena<T, D>, and its arithmetic is gcl::ops,
// which dispatch on D to the backend, so it never touches an element itself.
template <class T, class D = gcl::cpu>
class ChannelShift {
public:
    using value_type = T;
    using device_type = D;
    ChannelShift(const nn::Scope<T, D>& scope, gcl::index_t channels)
        : arena_(&scope.arena()), shift_(scope.parameter("shift", {channels}, nn::Init::zeros())) {}

    gcl::Shape output_shape(const gcl::Shape& x) const { return x; }
    gcl::ConstView<T, D> forward(gcl::ConstView<T, D> x) {
        y_.resize(x.shape());
        gcl::ops::copy(x, y_.view());
        gcl::ops::add_bias(arena_->value(shift_), y_.view());
        return y_.cview();
    }
    gcl::ConstView<T, D> backward(gcl::ConstView<T, D> dy) {
        gcl::ops::bias_backward(dy, arena_->grad_target(shift_), 1, gcl::WriteMode::accumulate);  // add
        dx_.resize(dy.shape());
        gcl::ops::copy(dy, dx_.view());
        return dx_.cview();
    }
    void set_training(bool t) { training_ = t; }
    bool training() const { return training_; }

private:
    nn::ParameterArena<T, D>* arena_;
    nn::ParamHandle shift_;
    bool training_ = true;
    gcl::Tensor<T, D> y_, dx_;
};
static_assert(nn::Layer<ChannelShift<float, gcl::cpu>>);

int main() {
    // The layer alone, in double: input and parameter gradients against central differences.
    nn::ParameterArena<double> arena;
    ChannelScale<double> layer(nn::Scope<double>(arena, 1).child("scale"), 3);
    gcl::Rng rng(7);
    auto x = gcl::testing::random_tensor<double>({2, 3, 4, 4}, rng);
    const auto alone = gcl::testing::check_layer_gradients(layer, arena, x.view(), rng);
    std::printf("ChannelScale: %s\n", alone.message.c_str());

    // In a stack with gcl's layers: the stack is a layer too, and checks the same way.
    nn::ParameterArena<double> stack_arena;
    const nn::Scope<double> net(stack_arena, 2);
    auto stack = nn::Sequential<nn::Conv2d<double>, ChannelScale<double>, ChannelShift<double>, nn::LeakyReLU<double>>{
        nn::Conv2d<double>(net.child("conv"), {.in_channels = 3, .out_channels = 4, .padding = {1, 1}}),
        ChannelScale<double>(net.child("scale"), 4), ChannelShift<double>(net.child("shift"), 4),
        nn::LeakyReLU<double>(0.1)};
    const auto stacked = gcl::testing::check_layer_gradients(stack, stack_arena, x.view(), rng);
    std::printf("conv -> scale -> shift -> LeakyReLU: %s\n", stacked.message.c_str());
    return alone.passed && stacked.passed ? 0 : 1;
}
