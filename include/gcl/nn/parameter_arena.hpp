#pragma once
// ParameterArena<T, Device>: every parameter of a model in one contiguous buffer, every gradient
// in a parallel one, and the model's non-trainable state (batch-norm running statistics) in a
// third. A model's P parameters are therefore one flat vector: an optimizer step is one pass over
// two flat buffers, and a per-loss gradient is one row of a K x P matrix.
//
// Registration grows the arena; the handle it returns stays valid for the arena's lifetime, and
// views obtained from a handle stay valid until the next registration (the only operation that
// may move the storage). Layers therefore keep handles and ask for views when they run.
//
// Gradients go to the current *gradient target*: the arena's own gradient buffer, or any
// contiguous P-element vector such as row m of an external K x P matrix. Each backward pass
// starts with begin_backward(target, mode). In overwrite mode the target is zeroed right there,
// so that after the pass it holds exactly this pass's gradient (parameters the pass did not reach
// hold 0); in accumulate mode it keeps its contents. Either way layers only ever *add* their
// contribution (accumulate_grad, or add into grad_target's view, e.g. a GEMM with beta = 1), so
// layer code has one rule and cannot get the mode wrong.
//
// K backward passes that share one forward can also run at once (the layers' backward_stacked):
// begin_stacked_backward(G, mode) makes row k of a K x P matrix G the target of pass k, and
// layers add pass k's gradient into grad_target(h, k).
#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gcl/core/device.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/core/write_mode.hpp"
#include "gcl/nn/batch_statistics.hpp"
#include "gcl/nn/parameter_table.hpp"
#include "gcl/ops/elementwise.hpp"

namespace gcl::nn {

// One template for every device: the bookkeeping lives in a ParameterTable, the elements in
// Tensor<T, Device>, and every write to them goes through gcl::ops (so through the device's
// backend::Elementwise). On a device other than the cpu, the views it hands out point to device
// memory (a CUDA arena needs an nvcc translation unit that includes gcl/cuda.cuh).
template <class T, class Device = cpu>
class ParameterArena {
    static_assert(std::is_floating_point_v<T>, "gcl::nn::ParameterArena holds float or double parameters");

public:
    using value_type = T;
    using device_type = Device;
    using view_type = TensorView<T, Device>;
    using const_view_type = TensorView<const T, Device>;

    static constexpr std::size_t max_name_length = ParameterTable::max_name_length;

    ParameterArena() = default;

    // ---- registration ----

    // Registers a zero-initialised parameter. Names are unique across parameters and buffers.
    ParamHandle add_parameter(std::string name, const Shape& shape, ParameterOptions options = {}) {
        table_.check_new_name("ParameterArena::add_parameter", name);
        grow(values_, size(), shape.numel(), &grads_);
        return table_.add_parameter(std::move(name), shape, options);
    }

    // Registers zero-initialised non-trainable state: saved by checkpoints, skipped by optimizers.
    BufferHandle add_buffer(std::string name, const Shape& shape) {
        table_.check_new_name("ParameterArena::add_buffer", name);
        grow(buffer_values_, buffer_size(), shape.numel(), nullptr);
        return table_.add_buffer(std::move(name), shape);
    }

    // Reserves room for this many elements, so that registering up to them moves nothing.
    void reserve(index_t parameter_elements, index_t buffer_elements = 0) {
        check(parameter_elements >= 0 && buffer_elements >= 0, "ParameterArena::reserve", "negative capacity");
        if (parameter_elements > values_.numel()) reallocate(values_, size(), parameter_elements, &grads_);
        if (buffer_elements > buffer_values_.numel())
            reallocate(buffer_values_, buffer_size(), buffer_elements, nullptr);
    }

    // ---- sizes and metadata ----

    // The device-independent bookkeeping: names, shapes, offsets, options, the target's state.
    const ParameterTable& table() const { return table_; }

    index_t size() const { return table_.size(); }  // P: number of parameter elements
    index_t buffer_size() const { return table_.buffer_size(); }
    std::size_t parameter_count() const { return table_.parameter_count(); }
    std::size_t buffer_count() const { return table_.buffer_count(); }
    const std::vector<ParameterInfo>& parameters() const { return table_.parameters(); }
    const std::vector<BufferInfo>& buffers() const { return table_.buffers(); }
    const ParameterInfo& info(ParamHandle h) const { return table_.info(h); }
    const BufferInfo& info(BufferHandle h) const { return table_.info(h); }

    std::optional<ParamHandle> find_parameter(std::string_view name) const { return table_.find_parameter(name); }
    std::optional<BufferHandle> find_buffer(std::string_view name) const { return table_.find_buffer(name); }
    ParamHandle parameter(std::string_view name) const { return table_.parameter(name); }
    BufferHandle buffer(std::string_view name) const { return table_.buffer(name); }

    // ---- named access ----

    view_type value(ParamHandle h) { return slice(values_.data(), table_.info(h)); }
    const_view_type value(ParamHandle h) const { return slice(values_.data(), table_.info(h)); }
    view_type value(std::string_view name) { return value(parameter(name)); }
    const_view_type value(std::string_view name) const { return value(parameter(name)); }

    // The parameter's slice of the arena's own gradient buffer (what optimizers read by default).
    view_type grad(ParamHandle h) { return slice(grads_.data(), table_.info(h)); }
    const_view_type grad(ParamHandle h) const { return slice(grads_.data(), table_.info(h)); }
    view_type grad(std::string_view name) { return grad(parameter(name)); }
    const_view_type grad(std::string_view name) const { return grad(parameter(name)); }

    view_type buffer_value(BufferHandle h) { return slice(buffer_values_.data(), table_.info(h)); }
    const_view_type buffer_value(BufferHandle h) const { return slice(buffer_values_.data(), table_.info(h)); }
    view_type buffer_value(std::string_view name) { return buffer_value(buffer(name)); }
    const_view_type buffer_value(std::string_view name) const { return buffer_value(buffer(name)); }

    // ---- flat views (optimizers, gradient surgery, parameter averaging) ----

    view_type flat_values() { return view_type(values_.data(), Shape{size()}); }
    const_view_type flat_values() const { return const_view_type(values_.data(), Shape{size()}); }
    view_type flat_grads() { return view_type(grads_.data(), Shape{size()}); }
    const_view_type flat_grads() const { return const_view_type(grads_.data(), Shape{size()}); }
    view_type flat_buffers() { return view_type(buffer_values_.data(), Shape{buffer_size()}); }
    const_view_type flat_buffers() const { return const_view_type(buffer_values_.data(), Shape{buffer_size()}); }

    // Sets the arena's own gradient buffer to zero.
    void zero_grad() { ops::fill(flat_grads(), T(0)); }

    // ---- gradient target: where the next backward pass writes ----

    // Starts a backward pass into the arena's own gradient buffer.
    void begin_backward(WriteMode mode = WriteMode::overwrite) {
        external_target_ = view_type();
        start_pass(GradTargetKind::own, mode);
    }

    // Starts a backward pass into `target`: P contiguous elements owned by the caller, which must
    // outlive the pass.
    void begin_backward(view_type target, WriteMode mode) {
        check(target.is_contiguous() && target.numel() == size(), "ParameterArena::begin_backward",
              "the gradient target must be contiguous with P = ", size(), " elements, got shape ", target.shape(),
              target.is_contiguous() ? "" : " (not contiguous)");
        external_target_ = target.reshape(Shape{size()});
        start_pass(GradTargetKind::external, mode);
    }

    // Starts a backward pass into row `row` of a K x P matrix (one row per loss).
    void begin_backward(view_type matrix, index_t row, WriteMode mode) {
        check(matrix.rank() == 2 && matrix.dim(1) == size(), "ParameterArena::begin_backward",
              "the gradient matrix must be K x P with P = ", size(), ", got shape ", matrix.shape());
        check(row >= 0 && row < matrix.dim(0), "ParameterArena::begin_backward", "row ", row,
              " out of range for a gradient matrix of shape ", matrix.shape());
        begin_backward(matrix.select(0, row), mode);
    }

    // Starts K = matrix.dim(0) backward passes at once: pass k writes into row k of the K x P
    // matrix (zeroed first in overwrite mode). Layers reach row k through grad_target(h, k).
    void begin_stacked_backward(view_type matrix, WriteMode mode) {
        check(matrix.rank() == 2 && matrix.dim(1) == size() && matrix.dim(0) >= 1 && matrix.is_contiguous(),
              "ParameterArena::begin_stacked_backward", "the gradient matrix must be a contiguous K x P with P = ",
              size(), " and K >= 1, got shape ", matrix.shape());
        table_.begin_pass(GradTargetKind::stacked, mode, matrix.dim(0));
        external_target_ = matrix;
        if (mode == WriteMode::overwrite) ops::fill(matrix, T(0));
    }

    // How many passes the current target takes: K after begin_stacked_backward, else 1.
    index_t target_passes() const { return table_.target_passes(); }

    // The parameter's slice of pass `pass`'s target (pass 0 is the only one of a single pass).
    view_type grad_target(ParamHandle h, index_t pass) {
        const ParameterInfo& p = table_.pass_parameter(h, pass);
        if (table_.target_kind() != GradTargetKind::stacked) return grad_target(h);
        return slice(external_target_.data() + pass * size(), p);
    }

    // Ends the current pass: writing a gradient raises gcl::Error until the next begin_backward.
    void end_backward() {
        table_.end_pass();
        external_target_ = view_type();
    }

    bool in_backward() const { return table_.in_backward(); }
    WriteMode grad_mode() const { return table_.grad_mode(); }

    // The whole current gradient target, flat (P elements).
    view_type flat_grad_target() {
        table_.check_single_pass();
        return table_.target_kind() == GradTargetKind::own ? flat_grads() : external_target_;
    }

    // The parameter's slice of the current gradient target. Layers *add* to it (never assign):
    // overwrite mode has already zeroed it when the pass began.
    view_type grad_target(ParamHandle h) {
        const ParameterInfo& p = table_.single_pass_parameter(h);
        return slice(table_.target_kind() == GradTargetKind::own ? grads_.data() : external_target_.data(), p);
    }

    // Adds a layer's gradient contribution for one parameter into the current target.
    void accumulate_grad(ParamHandle h, const_view_type contribution) {
        const view_type target = grad_target(h);
        const ParameterInfo& p = table_.info(h);
        check_same_shape("ParameterArena::accumulate_grad", contribution.shape(), p.shape, "contribution",
                         "parameter '" + p.name + "'");
        if (contribution.is_contiguous()) {
            ops::add(target, contribution, target);
        } else {
            Tensor<T, Device> packed(p.shape);
            ops::copy(contribution, packed.view());
            ops::add(target, packed.cview(), target);
        }
    }

    // Synchronised batch norm (batch_statistics.hpp): the reducer every batch norm layer on this
    // arena passes its per-channel sums to; nullptr (the default) keeps the statistics local.
    // Not owned; it must outlive the layers' training passes.
    void set_batch_statistics_reducer(BatchStatisticsReducer* reducer) { batch_statistics_ = reducer; }
    BatchStatisticsReducer* batch_statistics_reducer() const { return batch_statistics_; }

private:
    template <class Info>
    static view_type slice(T* base, const Info& entry) {
        return view_type(base + entry.offset, entry.shape);
    }
    template <class Info>
    static const_view_type slice(const T* base, const Info& entry) {
        return const_view_type(base + entry.offset, entry.shape);
    }

    void start_pass(GradTargetKind kind, WriteMode mode) {
        table_.begin_pass(kind, mode);
        if (mode == WriteMode::overwrite) ops::fill(flat_grad_target(), T(0));
    }

    // Makes room for `extra` more elements after the first `used` (capacity doubles, so building
    // a model of P elements copies O(P) elements in all).
    static void grow(Tensor<T, Device>& storage, index_t used, index_t extra, Tensor<T, Device>* twin) {
        const index_t needed = used + extra;
        if (needed <= storage.numel()) return;
        reallocate(storage, used, std::max({needed, 2 * storage.numel(), index_t{64}}), twin);
    }
    // New (zeroed) storage of `capacity` elements, holding the first `used` of the old.
    static void reallocate(Tensor<T, Device>& storage, index_t used, index_t capacity, Tensor<T, Device>* twin) {
        const auto moved = [&](Tensor<T, Device>& old) {
            Tensor<T, Device> bigger(Shape{capacity});
            if (used) ops::copy(old.cview().narrow(0, 0, used), bigger.view().narrow(0, 0, used));
            old = std::move(bigger);
        };
        moved(storage);
        if (twin) moved(*twin);
    }

    ParameterTable table_;
    Tensor<T, Device> values_;
    Tensor<T, Device> grads_;
    Tensor<T, Device> buffer_values_;
    view_type external_target_;
    BatchStatisticsReducer* batch_statistics_ = nullptr;
};

}  // namespace gcl::nn
