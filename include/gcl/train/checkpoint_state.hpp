#pragma once
// What a training checkpoint holds: a model's parameters and buffers (from its ParameterArena)
// and an optimizer's state, under these names:
//   param/<parameter name>            every parameter, with its shape
//   buffer/<buffer name>              every buffer (batch-norm running statistics, ...)
//   <prefix>/algorithm                the optimizer ("sgd", "adam", "adamw") as text
//   <prefix>/step                     steps taken (int64 scalar)
//   <prefix>/<state>/<parameter>      each state buffer, per parameter (e.g. optim/exp_avg/conv1.weight)
// Loading checks every name, dtype and shape before it changes anything, so a mismatched
// checkpoint raises gcl::Error and leaves the model and optimizer as they were.
//
// Every function takes an arena and an optimizer of any device D. The file is the same whatever
// the device: on the cpu the writer reads the arena's memory in place, elsewhere it owns host
// copies (ops::device_to_host) and loading copies each tensor to the device; a checkpoint saved
// from cuda loads on the cpu and the other way round.
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/ops/transfer.hpp"
#include "gcl/optim/flat_optimizer.hpp"
#include "gcl/train/checkpoint.hpp"

namespace gcl::train {

inline constexpr std::string_view parameter_prefix = "param/";
inline constexpr std::string_view buffer_prefix = "buffer/";
inline constexpr std::string_view default_optimizer_prefix = "optim";

enum class LoadMode {
    strict,   // every parameter and buffer of the arena is in the checkpoint, and nothing else is
    partial,  // load those present (e.g. a pre-trained encoder into a larger model), skip the rest
};

// Which arena entries a partial load filled and which it left alone.
struct LoadReport {
    std::vector<std::string> loaded;
    std::vector<std::string> missing;
};

namespace detail {
// Adds a view of device D's memory: in place on the cpu (it must stay unchanged until write()),
// as an owned host copy on any other device.
template <class T, class D>
void add_values(CheckpointWriter& writer, std::string name, TensorView<const T, D> values) {
    if constexpr (std::same_as<D, cpu>) {
        writer.add_view(std::move(name), values);
    } else {
        writer.add(std::move(name), ops::device_to_host(values));
    }
}
// Copies the checkpoint's tensor `entry` (dtype T, the destination's shape) into memory of device D.
template <class T, class D>
void load_values(const Checkpoint& checkpoint, std::string_view entry, TensorView<T, D> destination) {
    if constexpr (std::same_as<D, cpu>) {
        checkpoint.copy_to<T>(entry, destination);
    } else {
        const Tensor<T, D> values = ops::host_to_device<D>(checkpoint.get<T>(entry, destination.shape()));
        ops::copy(values.cview(), destination);
    }
}
}  // namespace detail

// ---- parameters and buffers ----

// Adds every parameter and buffer of `arena`. On the cpu without copying them: the arena must
// stay alive and unchanged until write() returns; on another device as host copies.
template <class T, class D>
void add_parameters(CheckpointWriter& writer, const nn::ParameterArena<T, D>& arena) {
    for (std::size_t i = 0; i < arena.parameter_count(); ++i)
        detail::add_values(writer, std::string(parameter_prefix) + arena.parameters()[i].name,
                           arena.value(nn::ParamHandle{i}));
    for (std::size_t i = 0; i < arena.buffer_count(); ++i)
        detail::add_values(writer, std::string(buffer_prefix) + arena.buffers()[i].name,
                           arena.buffer_value(nn::BufferHandle{i}));
}

// Checks that `checkpoint` can be loaded into `arena` in `mode`; changes nothing.
template <class T, class D>
LoadReport check_parameters(const Checkpoint& checkpoint, const nn::ParameterArena<T, D>& arena,
                            LoadMode mode = LoadMode::strict) {
    LoadReport report;
    const auto visit = [&](const std::string& entry, const Shape& shape) {
        if (checkpoint.contains(entry)) {
            checkpoint.check_entry<T>(entry, shape);
            report.loaded.push_back(entry);
        } else if (mode == LoadMode::strict) {
            fail("load_parameters", checkpoint.source(), " has no tensor '", entry, "' (shape ", shape,
                 ") that the model needs");
        } else {
            report.missing.push_back(entry);
        }
    };
    for (const nn::ParameterInfo& p : arena.parameters()) visit(std::string(parameter_prefix) + p.name, p.shape);
    for (const nn::BufferInfo& b : arena.buffers()) visit(std::string(buffer_prefix) + b.name, b.shape);
    if (mode == LoadMode::strict) {
        for (const Checkpoint::EntryInfo& e : checkpoint.entries()) {
            if (e.name.starts_with(parameter_prefix)) {
                check(arena.find_parameter(std::string_view(e.name).substr(parameter_prefix.size())).has_value(),
                      "load_parameters", checkpoint.source(), " holds '", e.name, "' which the model does not have");
            } else if (e.name.starts_with(buffer_prefix)) {
                check(arena.find_buffer(std::string_view(e.name).substr(buffer_prefix.size())).has_value(),
                      "load_parameters", checkpoint.source(), " holds '", e.name, "' which the model does not have");
            }
        }
    }
    return report;
}

// Loads parameters and buffers by name. All names, dtypes and shapes are checked first.
template <class T, class D>
LoadReport load_parameters(const Checkpoint& checkpoint, nn::ParameterArena<T, D>& arena,
                           LoadMode mode = LoadMode::strict) {
    LoadReport report = check_parameters(checkpoint, arena, mode);
    for (std::size_t i = 0; i < arena.parameter_count(); ++i) {
        const std::string entry = std::string(parameter_prefix) + arena.parameters()[i].name;
        if (checkpoint.contains(entry)) detail::load_values(checkpoint, entry, arena.value(nn::ParamHandle{i}));
    }
    for (std::size_t i = 0; i < arena.buffer_count(); ++i) {
        const std::string entry = std::string(buffer_prefix) + arena.buffers()[i].name;
        if (checkpoint.contains(entry)) detail::load_values(checkpoint, entry, arena.buffer_value(nn::BufferHandle{i}));
    }
    return report;
}

// ---- optimizer state ----

namespace detail {
inline std::string join(std::string_view prefix, std::string_view a) { return std::string(prefix) + "/" + std::string(a); }
inline std::string join(std::string_view prefix, std::string_view a, std::string_view b) {
    return join(prefix, a) + "/" + std::string(b);
}
// Whether the checkpoint holds any entry of the given state buffers (an optimizer saved before
// its first step holds none).
inline bool holds_state(const Checkpoint& checkpoint, const std::vector<std::string_view>& names,
                        std::string_view prefix) {
    for (const Checkpoint::EntryInfo& e : checkpoint.entries())
        for (std::string_view s : names)
            if (e.name.starts_with(join(prefix, s) + "/")) return true;
    return false;
}
}  // namespace detail

// Adds the optimizer's algorithm, step count and state, split per parameter of `arena` (the
// parameters it steps). On the cpu without copying the state: the optimizer must stay alive and
// unchanged until write() returns; on another device as host copies.
template <class T, class Rule, class D>
void add_optimizer(CheckpointWriter& writer, const optim::FlatOptimizer<T, Rule, D>& optimizer,
                   const nn::ParameterArena<T, D>& arena, std::string_view prefix = default_optimizer_prefix) {
    check(optimizer.size() == 0 || optimizer.size() == arena.size(), "add_optimizer", "the optimizer's state covers ",
          optimizer.size(), " elements but the model has P = ", arena.size());
    writer.add_text(detail::join(prefix, "algorithm"), Rule::name);
    writer.add_scalar<std::int64_t>(detail::join(prefix, "step"), optimizer.step_count());
    for (const optim::NamedState<const T, D>& s : optimizer.state())
        for (const nn::ParameterInfo& p : arena.parameters())
            detail::add_values(writer, detail::join(prefix, s.name, p.name),
                               TensorView<const T, D>(s.values.data() + p.offset, p.shape));
}

// Checks that `checkpoint` holds state this optimizer can load for `arena`; changes nothing.
template <class T, class Rule, class D>
void check_optimizer(const Checkpoint& checkpoint, const optim::FlatOptimizer<T, Rule, D>& optimizer,
                     const nn::ParameterArena<T, D>& arena, std::string_view prefix = default_optimizer_prefix) {
    const std::string algorithm = checkpoint.text(detail::join(prefix, "algorithm"));
    check(algorithm == Rule::name, "load_optimizer", checkpoint.source(), " holds state of '", algorithm,
          "' but the optimizer is '", Rule::name, "'");
    const auto steps = checkpoint.scalar<std::int64_t>(detail::join(prefix, "step"));
    check(steps >= 0, "load_optimizer", checkpoint.source(), " has a negative step count ", steps);
    const std::vector<std::string_view> names = optimizer.state_names();
    if (steps == 0 && !detail::holds_state(checkpoint, names, prefix)) return;
    for (std::string_view s : names)
        for (const nn::ParameterInfo& p : arena.parameters()) {
            const std::string entry = detail::join(prefix, s, p.name);
            check(checkpoint.contains(entry), "load_optimizer", checkpoint.source(), " has no optimizer state '", entry,
                  "'");
            checkpoint.check_entry<T>(entry, p.shape);
        }
}

// Loads the optimizer's step count and state for the parameters of `arena`. Checked first.
template <class T, class Rule, class D>
void load_optimizer(const Checkpoint& checkpoint, optim::FlatOptimizer<T, Rule, D>& optimizer,
                    const nn::ParameterArena<T, D>& arena, std::string_view prefix = default_optimizer_prefix) {
    check_optimizer(checkpoint, optimizer, arena, prefix);
    const auto steps = checkpoint.scalar<std::int64_t>(detail::join(prefix, "step"));
    if (steps == 0 && !detail::holds_state(checkpoint, optimizer.state_names(), prefix)) {
        optimizer.reset();
        return;
    }
    optimizer.resize(arena.size());
    for (const optim::NamedState<T, D>& s : optimizer.state())
        for (const nn::ParameterInfo& p : arena.parameters())
            detail::load_values(checkpoint, detail::join(prefix, s.name, p.name),
                                TensorView<T, D>(s.values.data() + p.offset, p.shape));
    optimizer.set_step_count(steps);
}

// ---- one file with everything ----

// Writes parameters, buffers and optimizer state to `path` atomically.
template <class T, class Rule, class D>
void save_training_state(const std::filesystem::path& path, const nn::ParameterArena<T, D>& arena,
                         const optim::FlatOptimizer<T, Rule, D>& optimizer) {
    CheckpointWriter writer;
    add_parameters(writer, arena);
    add_optimizer(writer, optimizer, arena);
    writer.write(path);
}

// Loads parameters, buffers and optimizer state; if anything does not match, nothing changes.
template <class T, class Rule, class D>
void load_training_state(const Checkpoint& checkpoint, nn::ParameterArena<T, D>& arena,
                         optim::FlatOptimizer<T, Rule, D>& optimizer) {
    check_parameters(checkpoint, arena, LoadMode::strict);
    check_optimizer(checkpoint, optimizer, arena);
    load_parameters(checkpoint, arena, LoadMode::strict);
    load_optimizer(checkpoint, optimizer, arena);
}

template <class T, class Rule, class D>
void load_training_state(const std::filesystem::path& path, nn::ParameterArena<T, D>& arena,
                         optim::FlatOptimizer<T, Rule, D>& optimizer) {
    load_training_state(Checkpoint::read(path), arena, optimizer);
}

}  // namespace gcl::train
