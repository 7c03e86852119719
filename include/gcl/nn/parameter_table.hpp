#pragma once
// ParameterTable: the device-independent bookkeeping of a ParameterArena (parameter_arena.hpp).
// It knows every registered parameter and buffer (name, shape, offset, options), looks them up
// by name and handle, and tracks the state of the gradient target (which kind of target the
// current backward pass writes, its mode, how many passes it takes). It owns no elements: the
// arena keeps those in tensors of its device and asks the table where they go.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/write_mode.hpp"

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

// Where the current backward pass writes: nowhere (no pass), the arena's own gradient buffer, a
// caller's P-element vector, or the K rows of a caller's K x P matrix (one per stacked pass).
enum class GradTargetKind { none, own, external, stacked };

class ParameterTable {
public:
    static constexpr std::size_t max_name_length = 1024;

    // ---- registration (the arena grows its storage to the new sizes) ----

    ParamHandle add_parameter(std::string name, const Shape& shape, ParameterOptions options) {
        check_new_name("ParameterArena::add_parameter", name);
        const index_t offset = parameter_size_;
        parameter_size_ += shape.numel();
        const ParamHandle handle{params_.size()};
        param_index_.emplace(name, handle.index);
        params_.push_back(ParameterInfo{std::move(name), shape, offset, options});
        end_pass();  // P changed: a target chosen before no longer fits
        return handle;
    }

    BufferHandle add_buffer(std::string name, const Shape& shape) {
        check_new_name("ParameterArena::add_buffer", name);
        const index_t offset = buffer_size_;
        buffer_size_ += shape.numel();
        const BufferHandle handle{buffers_.size()};
        buffer_index_.emplace(name, handle.index);
        buffers_.push_back(BufferInfo{std::move(name), shape, offset});
        return handle;
    }

    // ---- sizes and metadata ----

    index_t size() const { return parameter_size_; }
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

    // ---- the gradient target's state ----

    // A pass begins into a target of `kind` taking `passes` passes (K for a stacked target).
    void begin_pass(GradTargetKind kind, WriteMode mode, index_t passes = 1) {
        target_kind_ = kind;
        mode_ = mode;
        target_passes_ = passes;
    }
    void end_pass() {
        target_kind_ = GradTargetKind::none;
        target_passes_ = 1;
    }

    GradTargetKind target_kind() const { return target_kind_; }
    bool in_backward() const { return target_kind_ != GradTargetKind::none; }
    WriteMode grad_mode() const { return mode_; }
    index_t target_passes() const { return target_kind_ == GradTargetKind::stacked ? target_passes_ : 1; }

    // The parameter's entry, once a single (not stacked) pass has begun: what grad_target(h) checks.
    const ParameterInfo& single_pass_parameter(ParamHandle h) const {
        const ParameterInfo& p = params_[checked(h)];
        check(in_backward(), "ParameterArena::grad_target", no_pass_message(), " (parameter '", p.name, "')");
        if (target_kind_ == GradTargetKind::stacked)
            fail("ParameterArena::grad_target", "the current target is a stack of ", target_passes_,
                 " passes: layers write pass k into grad_target(h, k) (parameter '", p.name, "')");
        return p;
    }

    // The parameter's entry, once a pass has begun and `pass` is one of its passes: what
    // grad_target(h, pass) checks.
    const ParameterInfo& pass_parameter(ParamHandle h, index_t pass) const {
        const ParameterInfo& p = params_[checked(h)];
        check(in_backward(), "ParameterArena::grad_target", no_pass_message(), " (parameter '", p.name, "')");
        check(pass >= 0 && pass < target_passes(), "ParameterArena::grad_target", "pass ", pass,
              " out of range: the current target takes ", target_passes(), " passes (parameter '", p.name, "')");
        return p;
    }

    // Checks that a single pass has begun: what flat_grad_target() checks.
    void check_single_pass() const {
        check(in_backward(), "ParameterArena::flat_grad_target", no_pass_message());
        if (target_kind_ == GradTargetKind::stacked)
            fail("ParameterArena::flat_grad_target", "the current target is a stack of ", target_passes_,
                 " passes (begin_stacked_backward)");
    }

    // Throws unless `name` may name a new parameter or buffer.
    void check_new_name(std::string_view op, const std::string& name) const {
        check(!name.empty(), op, "a parameter or buffer needs a name");
        check(name.size() <= max_name_length, op, "name of ", name.size(), " characters exceeds ", max_name_length);
        check(name.find('\0') == std::string::npos, op, "name contains a NUL character");
        check(!param_index_.contains(name) && !buffer_index_.contains(name), op, "the name '", name,
              "' is already registered");
    }

private:
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

    index_t parameter_size_ = 0;
    index_t buffer_size_ = 0;
    std::vector<ParameterInfo> params_;
    std::vector<BufferInfo> buffers_;
    std::unordered_map<std::string, std::size_t> param_index_;
    std::unordered_map<std::string, std::size_t> buffer_index_;

    GradTargetKind target_kind_ = GradTargetKind::none;
    WriteMode mode_ = WriteMode::overwrite;
    index_t target_passes_ = 1;
};

}  // namespace gcl::nn
