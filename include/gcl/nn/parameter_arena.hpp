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
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gcl/core/device.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/core/write_mode.hpp"
#include "gcl/nn/batch_statistics.hpp"

namespace gcl::nn {

// What an optimizer needs to know about one parameter.
struct ParameterOptions {
    bool weight_decay = true;  // optimizers apply weight decay (biases and norm affines often opt out)
    bool trainable = true;     // optimizers update it (false: frozen, e.g. while fine-tuning a head)
};

// Stable names for registered entries; they index the arena that issued them.
struct ParamHandle {
    std::size_t index = static_cast<std::size_t>(-1);
    friend bool operator==(ParamHandle, ParamHandle) = default;
};
struct BufferHandle {
    std::size_t index = static_cast<std::size_t>(-1);
    friend bool operator==(BufferHandle, BufferHandle) = default;
};

struct ParameterInfo {
    std::string name;
    Shape shape;
    index_t offset = 0;  // first element in the flat parameter (and gradient) vector
    ParameterOptions options;
    index_t numel() const { return shape.numel(); }
};

struct BufferInfo {
    std::string name;
    Shape shape;
    index_t offset = 0;  // first element in the flat buffer vector
    index_t numel() const { return shape.numel(); }
};

// The host arena is defined here; a device arena specialises this template in its backend.
template <class T, class Device = cpu>
class ParameterArena;

template <class T>
class ParameterArena<T, cpu> {
    static_assert(std::is_floating_point_v<T>, "gcl::nn::ParameterArena holds float or double parameters");

public:
    using value_type = T;
    using device_type = cpu;
    using view_type = TensorView<T, cpu>;
    using const_view_type = TensorView<const T, cpu>;

    static constexpr std::size_t max_name_length = 1024;

    ParameterArena() = default;

    // ---- registration ----

    // Registers a zero-initialised parameter. Names are unique across parameters and buffers.
    ParamHandle add_parameter(std::string name, const Shape& shape, ParameterOptions options = {}) {
        check_new_name("ParameterArena::add_parameter", name);
        const index_t offset = parameter_size_;
        grow(values_, parameter_size_, shape.numel(), &grads_);
        parameter_size_ += shape.numel();
        const ParamHandle handle{params_.size()};
        param_index_.emplace(name, handle.index);
        params_.push_back(ParameterInfo{std::move(name), shape, offset, options});
        target_kind_ = TargetKind::none;  // P changed: a target chosen before no longer fits
        return handle;
    }

    // Registers zero-initialised non-trainable state: saved by checkpoints, skipped by optimizers.
    BufferHandle add_buffer(std::string name, const Shape& shape) {
        check_new_name("ParameterArena::add_buffer", name);
        const index_t offset = buffer_size_;
        grow(buffer_values_, buffer_size_, shape.numel(), nullptr);
        buffer_size_ += shape.numel();
        const BufferHandle handle{buffers_.size()};
        buffer_index_.emplace(name, handle.index);
        buffers_.push_back(BufferInfo{std::move(name), shape, offset});
        return handle;
    }

    // Reserves room for this many elements, so that registering up to them moves nothing.
    void reserve(index_t parameter_elements, index_t buffer_elements = 0) {
        check(parameter_elements >= 0 && buffer_elements >= 0, "ParameterArena::reserve", "negative capacity");
        if (parameter_elements > values_.numel()) reallocate(values_, parameter_size_, parameter_elements, &grads_);
        if (buffer_elements > buffer_values_.numel())
            reallocate(buffer_values_, buffer_size_, buffer_elements, nullptr);
    }

    // ---- sizes and metadata ----

    index_t size() const { return parameter_size_; }  // P: number of parameter elements
    index_t buffer_size() const { return buffer_size_; }
    std::size_t parameter_count() const { return params_.size(); }
    std::size_t buffer_count() const { return buffers_.size(); }
    const std::vector<ParameterInfo>& parameters() const { return params_; }
    const std::vector<BufferInfo>& buffers() const { return buffers_; }
    const ParameterInfo& info(ParamHandle h) const { return params_[checked(h)]; }
    const BufferInfo& info(BufferHandle h) const { return buffers_[checked(h)]; }

    std::optional<ParamHandle> find_parameter(std::string_view name) const {
        const auto it = param_index_.find(std::string(name));
        if (it == param_index_.end()) return std::nullopt;
        return ParamHandle{it->second};
    }
    std::optional<BufferHandle> find_buffer(std::string_view name) const {
        const auto it = buffer_index_.find(std::string(name));
        if (it == buffer_index_.end()) return std::nullopt;
        return BufferHandle{it->second};
    }
    ParamHandle parameter(std::string_view name) const {
        const auto h = find_parameter(name);
        if (!h) fail("ParameterArena::parameter", "no parameter named '", name, "'");
        return *h;
    }
    BufferHandle buffer(std::string_view name) const {
        const auto h = find_buffer(name);
        if (!h) fail("ParameterArena::buffer", "no buffer named '", name, "'");
        return *h;
    }

    // ---- named access ----

    view_type value(ParamHandle h) {
        const ParameterInfo& p = params_[checked(h)];
        return view_type(values_.data() + p.offset, p.shape);
    }
    const_view_type value(ParamHandle h) const {
        const ParameterInfo& p = params_[checked(h)];
        return const_view_type(values_.data() + p.offset, p.shape);
    }
    view_type value(std::string_view name) { return value(parameter(name)); }
    const_view_type value(std::string_view name) const { return value(parameter(name)); }

    // The parameter's slice of the arena's own gradient buffer (what optimizers read by default).
    view_type grad(ParamHandle h) {
        const ParameterInfo& p = params_[checked(h)];
        return view_type(grads_.data() + p.offset, p.shape);
    }
    const_view_type grad(ParamHandle h) const {
        const ParameterInfo& p = params_[checked(h)];
        return const_view_type(grads_.data() + p.offset, p.shape);
    }
    view_type grad(std::string_view name) { return grad(parameter(name)); }
    const_view_type grad(std::string_view name) const { return grad(parameter(name)); }

    view_type buffer_value(BufferHandle h) {
        const BufferInfo& b = buffers_[checked(h)];
        return view_type(buffer_values_.data() + b.offset, b.shape);
    }
    const_view_type buffer_value(BufferHandle h) const {
        const BufferInfo& b = buffers_[checked(h)];
        return const_view_type(buffer_values_.data() + b.offset, b.shape);
    }
    view_type buffer_value(std::string_view name) { return buffer_value(buffer(name)); }
    const_view_type buffer_value(std::string_view name) const { return buffer_value(buffer(name)); }

    // ---- flat views (optimizers, gradient surgery, parameter averaging) ----

    view_type flat_values() { return view_type(values_.data(), Shape{parameter_size_}); }
    const_view_type flat_values() const { return const_view_type(values_.data(), Shape{parameter_size_}); }
    view_type flat_grads() { return view_type(grads_.data(), Shape{parameter_size_}); }
    const_view_type flat_grads() const { return const_view_type(grads_.data(), Shape{parameter_size_}); }
    view_type flat_buffers() { return view_type(buffer_values_.data(), Shape{buffer_size_}); }
    const_view_type flat_buffers() const { return const_view_type(buffer_values_.data(), Shape{buffer_size_}); }

    // Sets the arena's own gradient buffer to zero.
    void zero_grad() { std::fill_n(grads_.data(), parameter_size_, T(0)); }

    // ---- gradient target: where the next backward pass writes ----

    // Starts a backward pass into the arena's own gradient buffer.
    void begin_backward(WriteMode mode = WriteMode::overwrite) {
        target_kind_ = TargetKind::own;
        external_target_ = view_type();
        start_pass(mode);
    }

    // Starts a backward pass into `target`: P contiguous elements owned by the caller, which must
    // outlive the pass.
    void begin_backward(view_type target, WriteMode mode) {
        check(target.is_contiguous() && target.numel() == parameter_size_, "ParameterArena::begin_backward",
              "the gradient target must be contiguous with P = ", parameter_size_, " elements, got shape ",
              target.shape(), target.is_contiguous() ? "" : " (not contiguous)");
        target_kind_ = TargetKind::external;
        external_target_ = target.reshape(Shape{parameter_size_});
        start_pass(mode);
    }

    // Starts a backward pass into row `row` of a K x P matrix (one row per loss).
    void begin_backward(view_type matrix, index_t row, WriteMode mode) {
        check(matrix.rank() == 2 && matrix.dim(1) == parameter_size_, "ParameterArena::begin_backward",
              "the gradient matrix must be K x P with P = ", parameter_size_, ", got shape ", matrix.shape());
        check(row >= 0 && row < matrix.dim(0), "ParameterArena::begin_backward", "row ", row,
              " out of range for a gradient matrix of shape ", matrix.shape());
        begin_backward(matrix.select(0, row), mode);
    }

    // Starts K = matrix.dim(0) backward passes at once: pass k writes into row k of the K x P
    // matrix (zeroed first in overwrite mode). Layers reach row k through grad_target(h, k).
    void begin_stacked_backward(view_type matrix, WriteMode mode) {
        check(matrix.rank() == 2 && matrix.dim(1) == parameter_size_ && matrix.dim(0) >= 1 && matrix.is_contiguous(),
              "ParameterArena::begin_stacked_backward", "the gradient matrix must be a contiguous K x P with P = ",
              parameter_size_, " and K >= 1, got shape ", matrix.shape());
        target_kind_ = TargetKind::stacked;
        external_target_ = matrix;
        mode_ = mode;
        if (mode == WriteMode::overwrite) std::fill_n(matrix.data(), matrix.numel(), T(0));
    }

    // How many passes the current target takes: K after begin_stacked_backward, else 1.
    index_t target_passes() const { return target_kind_ == TargetKind::stacked ? external_target_.dim(0) : 1; }

    // The parameter's slice of pass `pass`'s target (pass 0 is the only one of a single pass).
    view_type grad_target(ParamHandle h, index_t pass) {
        const ParameterInfo& p = params_[checked(h)];
        check(in_backward(), "ParameterArena::grad_target", no_pass_message(), " (parameter '", p.name, "')");
        check(pass >= 0 && pass < target_passes(), "ParameterArena::grad_target", "pass ", pass,
              " out of range: the current target takes ", target_passes(), " passes (parameter '", p.name, "')");
        if (target_kind_ != TargetKind::stacked) return grad_target(h);
        return view_type(external_target_.data() + pass * parameter_size_ + p.offset, p.shape);
    }

    // Ends the current pass: writing a gradient raises gcl::Error until the next begin_backward.
    void end_backward() {
        target_kind_ = TargetKind::none;
        external_target_ = view_type();
    }

    bool in_backward() const { return target_kind_ != TargetKind::none; }
    WriteMode grad_mode() const { return mode_; }

    // The whole current gradient target, flat (P elements).
    view_type flat_grad_target() {
        check(in_backward(), "ParameterArena::flat_grad_target", no_pass_message());
        if (target_kind_ == TargetKind::stacked)
            fail("ParameterArena::flat_grad_target", "the current target is a stack of ", external_target_.dim(0),
                 " passes (begin_stacked_backward)");
        return target_kind_ == TargetKind::own ? flat_grads() : external_target_;
    }

    // The parameter's slice of the current gradient target. Layers *add* to it (never assign):
    // overwrite mode has already zeroed it when the pass began.
    view_type grad_target(ParamHandle h) {
        const ParameterInfo& p = params_[checked(h)];
        check(in_backward(), "ParameterArena::grad_target", no_pass_message(), " (parameter '", p.name, "')");
        if (target_kind_ == TargetKind::stacked)
            fail("ParameterArena::grad_target", "the current target is a stack of ", external_target_.dim(0),
                 " passes: layers write pass k into grad_target(h, k) (parameter '", p.name, "')");
        T* base = target_kind_ == TargetKind::own ? grads_.data() : external_target_.data();
        return view_type(base + p.offset, p.shape);
    }

    // Adds a layer's gradient contribution for one parameter into the current target.
    void accumulate_grad(ParamHandle h, const_view_type contribution) {
        view_type target = grad_target(h);
        const ParameterInfo& p = params_[h.index];
        check_same_shape("ParameterArena::accumulate_grad", contribution.shape(), p.shape, "contribution",
                         "parameter '" + p.name + "'");
        T* out = target.data();
        if (contribution.is_contiguous()) {
            const T* in = contribution.data();
            const index_t n = p.numel();
            for (index_t i = 0; i < n; ++i) out[i] += in[i];
        } else {
            const Tensor<T, cpu> packed = Tensor<T, cpu>::copy_of(contribution);
            const index_t n = p.numel();
            for (index_t i = 0; i < n; ++i) out[i] += packed.data()[i];
        }
    }

    // Synchronised batch norm (batch_statistics.hpp): the reducer every batch norm layer on this
    // arena passes its per-channel sums to; nullptr (the default) keeps the statistics local.
    // Not owned; it must outlive the layers' training passes.
    void set_batch_statistics_reducer(BatchStatisticsReducer* reducer) { batch_statistics_ = reducer; }
    BatchStatisticsReducer* batch_statistics_reducer() const { return batch_statistics_; }

private:
    enum class TargetKind { none, own, external, stacked };

    void check_new_name(std::string_view op, const std::string& name) const {
        check(!name.empty(), op, "a parameter or buffer needs a name");
        check(name.size() <= max_name_length, op, "name of ", name.size(), " characters exceeds ", max_name_length);
        check(name.find('\0') == std::string::npos, op, "name contains a NUL character");
        check(!param_index_.contains(name) && !buffer_index_.contains(name), op, "the name '", name,
              "' is already registered");
    }

    std::size_t checked(ParamHandle h) const {
        check(h.index < params_.size(), "ParameterArena", "invalid parameter handle ", h.index, " (the arena has ",
              params_.size(), " parameters)");
        return h.index;
    }
    std::size_t checked(BufferHandle h) const {
        check(h.index < buffers_.size(), "ParameterArena", "invalid buffer handle ", h.index, " (the arena has ",
              buffers_.size(), " buffers)");
        return h.index;
    }

    static std::string no_pass_message() {
        return "no backward pass has begun: call begin_backward(...) before writing gradients";
    }

    void start_pass(WriteMode mode) {
        mode_ = mode;
        if (mode == WriteMode::overwrite) {
            view_type t = flat_grad_target();
            std::fill_n(t.data(), parameter_size_, T(0));
        }
    }

    // Makes room for `extra` more elements after the first `used` (capacity doubles, so building
    // a model of P elements copies O(P) elements in all).
    static void grow(Tensor<T, cpu>& storage, index_t used, index_t extra, Tensor<T, cpu>* twin) {
        const index_t needed = used + extra;
        if (needed <= storage.numel()) return;
        reallocate(storage, used, std::max({needed, 2 * storage.numel(), index_t{64}}), twin);
    }
    static void reallocate(Tensor<T, cpu>& storage, index_t used, index_t capacity, Tensor<T, cpu>* twin) {
        Tensor<T, cpu> bigger(Shape{capacity});
        if (used) std::memcpy(bigger.data(), storage.data(), static_cast<std::size_t>(used) * sizeof(T));
        storage = std::move(bigger);
        if (twin) {
            Tensor<T, cpu> twin_bigger(Shape{capacity});
            if (used) std::memcpy(twin_bigger.data(), twin->data(), static_cast<std::size_t>(used) * sizeof(T));
            *twin = std::move(twin_bigger);
        }
    }

    Tensor<T, cpu> values_;
    Tensor<T, cpu> grads_;
    Tensor<T, cpu> buffer_values_;
    index_t parameter_size_ = 0;
    index_t buffer_size_ = 0;
    std::vector<ParameterInfo> params_;
    std::vector<BufferInfo> buffers_;
    std::unordered_map<std::string, std::size_t> param_index_;
    std::unordered_map<std::string, std::size_t> buffer_index_;

    TargetKind target_kind_ = TargetKind::none;
    view_type external_target_;
    WriteMode mode_ = WriteMode::overwrite;
    BatchStatisticsReducer* batch_statistics_ = nullptr;
};

}  // namespace gcl::nn
