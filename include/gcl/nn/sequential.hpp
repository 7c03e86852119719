#pragma once
// nn::Sequential<L1, ..., Ln>: layers applied one after the other, fixed at compile time.
//
//   auto block = nn::sequential(nn::Conv2d<float>(s.child("conv1"), {...}),
//                               nn::BatchNorm2d<float>(s.child("bn1"), {.channels = 32}),
//                               nn::LeakyReLU<float>(0.01));
//   auto y = block.forward(x);            // conv1 -> bn1 -> act
//   auto dx = block.backward(dy);         // act -> bn1 -> conv1
//   block.get<1>()                        // the batch norm
//
// forward and backward are fold expressions over the layers, so the type stays flat (no nested
// pairs, no recursion in error messages). Every element must satisfy the layer contract
// (layer.hpp); a type that does not is reported requirement by requirement. A Sequential is
// itself a layer, so it nests.
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "gcl/core/tensor_view.hpp"
#include "gcl/nn/layer.hpp"

namespace gcl::nn {

namespace detail {
// L's value_type and device_type, or void for a type that has none (already reported by
// assert_layer).
template <class L>
consteval auto layer_value_of() {
    if constexpr (HasLayerValueType<L>) return std::type_identity<typename L::value_type>{};
    else return std::type_identity<void>{};
}
template <class L>
consteval auto layer_device_of() {
    if constexpr (HasLayerDevice<L>) return std::type_identity<typename L::device_type>{};
    else return std::type_identity<void>{};
}
template <class L>
using layer_value_t = typename decltype(layer_value_of<L>())::type;
template <class L>
using layer_device_t = typename decltype(layer_device_of<L>())::type;
}  // namespace detail

template <class... Layers>
class Sequential {
    static_assert(sizeof...(Layers) > 0, "gcl::nn::Sequential needs at least one layer");
    static_assert((detail::assert_layer<Layers>() && ...), "gcl::nn::Sequential: every element must be a gcl layer");

public:
    using value_type = detail::layer_value_t<std::tuple_element_t<0, std::tuple<Layers...>>>;
    using device_type = detail::layer_device_t<std::tuple_element_t<0, std::tuple<Layers...>>>;
    static_assert((std::is_same_v<detail::layer_value_t<Layers>, value_type> && ...),
                  "gcl::nn::Sequential: every layer must have the same value_type");
    static_assert((std::is_same_v<detail::layer_device_t<Layers>, device_type> && ...),
                  "gcl::nn::Sequential: every layer must have the same device_type");

    static constexpr std::size_t size() { return sizeof...(Layers); }

    explicit Sequential(Layers... layers) : layers_(std::move(layers)...) {}

    Shape output_shape(const Shape& x) const {
        Shape s = x;
        std::apply([&](const auto&... layer) { ((s = layer.output_shape(s)), ...); }, layers_);
        return s;
    }

    ConstView<value_type, device_type> forward(ConstView<value_type, device_type> x) {
        ConstView<value_type, device_type> h = x;
        std::apply([&](auto&... layer) { ((h = layer.forward(h)), ...); }, layers_);
        return h;
    }

    // The layers' backward passes, last to first.
    ConstView<value_type, device_type> backward(ConstView<value_type, device_type> dy) {
        ConstView<value_type, device_type> g = dy;
        [&]<std::size_t... I>(std::index_sequence<I...>) { ((g = std::get<size() - 1 - I>(layers_).backward(g)), ...); }
        (std::make_index_sequence<size()>{});
        return g;
    }

    // K backward passes at once (layer.hpp), when every layer has backward_stacked.
    ConstView<value_type, device_type> backward_stacked(ConstView<value_type, device_type> dy, index_t passes)
        requires(HasStackedBackward<Layers> && ...)
    {
        ConstView<value_type, device_type> g = dy;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((g = std::get<size() - 1 - I>(layers_).backward_stacked(g, passes)), ...);
        }(std::make_index_sequence<size()>{});
        return g;
    }

    void set_training(bool training) {
        training_ = training;
        std::apply([&](auto&... layer) { (layer.set_training(training), ...); }, layers_);
    }
    bool training() const { return training_; }

    template <std::size_t I>
    auto& get() {
        return std::get<I>(layers_);
    }
    template <std::size_t I>
    const auto& get() const {
        return std::get<I>(layers_);
    }

private:
    std::tuple<Layers...> layers_;
    bool training_ = true;
};

// Builds a Sequential from layers (moved in); the element types are deduced.
template <class... Layers>
Sequential<std::decay_t<Layers>...> sequential(Layers&&... layers) {
    return Sequential<std::decay_t<Layers>...>(std::forward<Layers>(layers)...);
}

}  // namespace gcl::nn
