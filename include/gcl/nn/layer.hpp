#pragma once
// The layer contract: what every gcl layer (and every model built from layers) provides. This
// header holds the contract alone; the layers are in the headers next to it.
//
// A layer L with element type T = L::value_type (float or double) and device D = L::device_type
// (gcl::cpu, gcl::cuda) provides
//
//   ConstView<T, D> forward(ConstView<T, D> x);
//       Computes y = f(x) into memory the layer owns and returns a read-only view of it, valid
//       until the layer's next forward call. Caches what backward needs. The layer may keep a
//       view of x instead of a copy: x must stay alive and unchanged until the last backward
//       call that belongs to this forward call. Parameters are read from the arena when forward
//       runs, so a change of the parameter values (an optimizer step) takes effect at the next
//       forward call. In training mode forward may update state (batch-norm running statistics)
//       and draw random numbers (dropout); in evaluation mode it does neither.
//
//   ConstView<T, D> backward(ConstView<T, D> dy);
//       Given dy = dL/dy (y's shape), returns dx = dL/dx (x's shape) in memory the layer owns,
//       valid until the layer's next backward call, and ADDS dL/dtheta for each of its
//       parameters theta into the arena's current gradient target (ParameterArena::grad_target
//       or accumulate_grad). The layer never assigns a gradient and never looks at the target's
//       mode: the caller chose the target and its mode with arena.begin_backward(...) (overwrite
//       zeroes it when the pass begins; accumulate keeps what it holds), so one rule is right
//       in both modes and for parameters used several times.
//       backward may be called any number of times after one forward call, each time with its
//       own dy, and must give the same result as a fresh forward followed by that backward:
//       it reads the cache and never changes it. That is what gradient surgery over K losses
//       needs: one forward, then for m = 0..K-1
//           arena.begin_backward(G, m, WriteMode::overwrite);   // row m of a K x P matrix
//           model.backward(dL_m / dy);                          // row m := dL_m / dtheta
//       Calling backward before any forward, or with a dy of the wrong shape, throws gcl::Error.
//
//   Optional: ConstView<T, D> backward_stacked(ConstView<T, D> dy, index_t passes);
//       K = passes backward passes after one forward at once: dy stacks the K upstream gradients
//       along the batch dimension ([K N, ...], pass k in rows k N .. k N + N - 1), the result
//       stacks the K input gradients the same way, and pass k's parameter gradients are added
//       into the arena's grad_target(h, k) (ParameterArena::begin_stacked_backward). Equal to K
//       calls of backward, pass k into row k (up to the summation order where a layer says so).
//
//   Shape output_shape(const Shape& x) const;
//       The shape forward gives for an input of shape x; throws gcl::Error naming the layer if
//       the layer cannot take that input.
//
//   void set_training(bool training);  bool training() const;
//       Training mode (the default) or evaluation mode. Batch norm normalises with the batch
//       statistics and updates its running estimates in training mode and uses the running
//       estimates in evaluation mode; dropout drops in training mode and is the identity in
//       evaluation mode; the other layers do not depend on the mode. Composites pass the mode
//       on to every layer they hold.
//
// Every gcl layer is a template `template <class T, class D = gcl::cpu>`: its inputs, outputs and
// cached tensors are Tensor<T, D> / ConstView<T, D>, its parameters live in a ParameterArena<T, D>,
// and its arithmetic goes through gcl::ops::, which dispatch on D to the backend's kernel
// families. A layer therefore instantiates for every device whose backend implements the ops it
// calls. docs/layers.md shows how to write one.
//
// Parameters and persistent state live in a ParameterArena (parameter_arena.hpp); a layer keeps
// the arena's handles, never views, because a registration may move the arena's storage. The
// arena must outlive the layer. Layers take their names (e.g. "encoder.block0.conv1") and seeded
// initialisation from an nn::Scope (scope.hpp).
//
// gcl::nn::Layer<L> checks the contract at compile time. Models built from layers
// (nn::Sequential and the composites) static_assert it requirement by requirement, so that a
// type that is not a layer is reported in one line naming what it lacks.
#include <concepts>
#include <type_traits>

#include "gcl/core/device.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::nn {

// The element types layers compute in.
template <class T>
concept LayerElement = std::same_as<T, float> || std::same_as<T, double>;

// L declares its element type: `using value_type = float;` (or double).
template <class L>
concept HasLayerValueType = requires {
    typename L::value_type;
    requires LayerElement<typename L::value_type>;
};

// L declares the device its tensors live on: `using device_type = gcl::cpu;` (or gcl::cuda).
template <class L>
concept HasLayerDevice = requires {
    typename L::device_type;
    requires DeviceTag<typename L::device_type>;
};

// The views a layer takes and returns: ConstView<T, D> with L's element type and device.
template <class L>
using LayerView = ConstView<typename L::value_type, typename L::device_type>;

// ConstView<T, D> forward(ConstView<T, D> x)
template <class L>
concept HasLayerForward = HasLayerValueType<L> && HasLayerDevice<L> && requires(L& layer, LayerView<L> x) {
    { layer.forward(x) } -> std::same_as<LayerView<L>>;
};

// ConstView<T, D> backward(ConstView<T, D> dy)
template <class L>
concept HasLayerBackward = HasLayerValueType<L> && HasLayerDevice<L> && requires(L& layer, LayerView<L> dy) {
    { layer.backward(dy) } -> std::same_as<LayerView<L>>;
};

// Shape output_shape(const Shape& x) const
template <class L>
concept HasLayerOutputShape = requires(const L& layer, const Shape& x) {
    { layer.output_shape(x) } -> std::same_as<Shape>;
};

// void set_training(bool); bool training() const
template <class L>
concept HasLayerMode = requires(L& layer, const L& const_layer, bool on) {
    layer.set_training(on);
    { const_layer.training() } -> std::same_as<bool>;
};

// ConstView<T, D> backward_stacked(ConstView<T, D> dy, index_t passes)
template <class L>
concept HasStackedBackward =
    HasLayerValueType<L> && HasLayerDevice<L> && requires(L& layer, LayerView<L> dy, index_t k) {
        { layer.backward_stacked(dy, k) } -> std::same_as<LayerView<L>>;
    };

// The layer contract described above.
template <class L>
concept Layer = HasLayerValueType<L> && HasLayerDevice<L> && HasLayerForward<L> && HasLayerBackward<L> &&
                HasLayerOutputShape<L> && HasLayerMode<L>;

namespace detail {
// Checks the contract one requirement at a time, so that a compile error names the missing piece
// (the compiler's "required from here" note names the offending type).
template <class L>
consteval bool assert_layer() {
    static_assert(HasLayerValueType<L>,
                  "gcl::nn: this type is not a gcl layer: it needs `using value_type = float;` (or double)");
    static_assert(HasLayerDevice<L>,
                  "gcl::nn: this type is not a gcl layer: it needs `using device_type = gcl::cpu;` (or another "
                  "device tag)");
    if constexpr (HasLayerValueType<L> && HasLayerDevice<L>) {
        static_assert(HasLayerForward<L>, "gcl::nn: this type is not a gcl layer: it needs "
                                          "`ConstView<T, D> forward(ConstView<T, D> x)`");
        static_assert(HasLayerBackward<L>, "gcl::nn: this type is not a gcl layer: it needs "
                                           "`ConstView<T, D> backward(ConstView<T, D> dy)`");
    }
    static_assert(HasLayerOutputShape<L>,
                  "gcl::nn: this type is not a gcl layer: it needs `Shape output_shape(const Shape& x) const`");
    static_assert(HasLayerMode<L>,
                  "gcl::nn: this type is not a gcl layer: it needs `void set_training(bool)` and "
                  "`bool training() const`");
    return Layer<L>;
}
}  // namespace detail

}  // namespace gcl::nn
