#pragma once
// Copying weights between models by name: a pre-trained encoder into a U-Net.
//
//   nn::ParameterArena<float> pretrain_arena, unet_arena;
//   nn::PretrainModel<float> pretrain(pretrain_arena, {...}, seed);   // "encoder.*", "image_head.*", ...
//   nn::UNet<float> unet(unet_arena, {...}, seed);                    // "encoder.*", "decoder.*"
//   ... pre-train ...
//   auto report = nn::transfer_parameters(pretrain_arena, unet_arena, {.source_prefix = "encoder."});
//   // report.copied: every encoder parameter and buffer; report.missing: the decoder's
//   std::cout << report.summary();
//
// Every parameter (and, by default, buffer: batch-norm running statistics) of the source whose
// name starts with source_prefix is looked up in the target under the same name, or with the
// prefix replaced by target_prefix when one is given. Parameters go to parameters and buffers to
// buffers. All matches are checked before anything is copied: a shape mismatch, or a name that
// is a parameter on one side and a buffer on the other, raises gcl::Error listing every such
// entry, and the target is left unchanged. Values are converted when the element types differ.
//
// A checkpoint holds the same names (docs/checkpoints.md): load it into the model it was saved
// from (train::load_parameters) and transfer from that arena, or load it straight into the
// U-Net with train::load_parameters(checkpoint, arena, train::LoadMode::partial).
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/transfer.hpp"

namespace gcl::nn {

struct TransferOptions {
    std::string source_prefix = {};                           // only source entries whose names start with this
    std::optional<std::string> target_prefix = std::nullopt;  // replaces source_prefix in the target's names
    bool buffers = true;                                      // also copy buffers (batch-norm running statistics)
};

struct TransferReport {
    std::vector<std::string> copied;   // target names that received values
    std::vector<std::string> skipped;  // selected source names with no counterpart in the target
    std::vector<std::string> missing;  // target names (under the target prefix) that received nothing

    // "copied 36 entries, skipped 8 (image_head.fc1.weight, ...), 24 left as they were (decoder.up0.weight, ...)"
    std::string summary(std::size_t max_names = 8) const {
        std::ostringstream out;
        const auto list = [&](const std::vector<std::string>& names) {
            out << " (";
            for (std::size_t i = 0; i < names.size() && i < max_names; ++i) out << (i ? ", " : "") << names[i];
            if (names.size() > max_names) out << ", ...";
            out << ")";
        };
        out << "copied " << copied.size() << " entries";
        out << ", skipped " << skipped.size();
        if (!skipped.empty()) list(skipped);
        out << ", " << missing.size() << " left as they were";
        if (!missing.empty()) list(missing);
        return out.str();
    }
};

namespace detail {
// to = from, converted to the target's element type. The same element type copies through
// ops::copy on any device. A conversion runs element by element on the host (no backend family
// converts between element types yet): off the host, through a host copy of each parameter, once
// per transfer, not per step.
template <class S, class T, class Device>
void copy_converted(TensorView<const S, Device> from, TensorView<T, Device> to) {
    if (from.numel() == 0) return;
    if constexpr (std::is_same_v<S, T>) {
        ops::copy(from, to);
    } else if constexpr (std::is_same_v<Device, cpu>) {
        const index_t n = from.numel();
        for (index_t i = 0; i < n; ++i) to.data()[i] = static_cast<T>(from.data()[i]);
    } else {
        const Tensor<S> host = ops::device_to_host(from);
        Tensor<T> converted(host.shape());
        copy_converted<S, T, cpu>(host.cview(), converted.view());
        ops::copy(ops::host_to_device<Device>(std::move(converted)).cview(), to);
    }
}
}  // namespace detail

// Both arenas on one device; the element types may differ (see copy_converted).
template <class S, class T, class Device>
TransferReport transfer_parameters(const ParameterArena<S, Device>& source, ParameterArena<T, Device>& target,
                                   const TransferOptions& options = {}) {
    constexpr std::string_view op = "nn::transfer_parameters";
    const std::string& from_prefix = options.source_prefix;
    const std::string to_prefix = options.target_prefix.value_or(from_prefix);
    const auto target_name = [&](const std::string& source_name) {
        return to_prefix + source_name.substr(from_prefix.size());
    };

    struct Copy {
        bool parameter;
        std::size_t from, to;
    };
    std::vector<Copy> copies;
    std::vector<std::string> problems;
    TransferReport report;
    std::vector<bool> filled_params(target.parameter_count(), false), filled_buffers(target.buffer_count(), false);

    const auto match = [&](const std::string& name, const Shape& shape, bool is_parameter, std::size_t index) {
        if (!name.starts_with(from_prefix)) return;
        const std::string to = target_name(name);
        const auto p = target.find_parameter(to);
        const auto b = target.find_buffer(to);
        if (!p && !b) {
            report.skipped.push_back(name);
            return;
        }
        if (is_parameter != p.has_value()) {
            problems.push_back("'" + name + "' is a " + (is_parameter ? "parameter" : "buffer") +
                               " in the source but '" + to + "' is a " + (is_parameter ? "buffer" : "parameter") +
                               " in the target");
            return;
        }
        const Shape& to_shape = p ? target.info(*p).shape : target.info(*b).shape;
        if (!(to_shape == shape)) {
            problems.push_back("'" + name + "' has shape " + shape.str() + " in the source but '" + to +
                               "' has shape " + to_shape.str() + " in the target");
            return;
        }
        const std::size_t to_index = p ? p->index : b->index;
        copies.push_back({is_parameter, index, to_index});
        (is_parameter ? filled_params : filled_buffers)[to_index] = true;
        report.copied.push_back(to);
    };
    for (std::size_t i = 0; i < source.parameter_count(); ++i)
        match(source.parameters()[i].name, source.parameters()[i].shape, true, i);
    if (options.buffers)
        for (std::size_t i = 0; i < source.buffer_count(); ++i)
            match(source.buffers()[i].name, source.buffers()[i].shape, false, i);

    if (!problems.empty()) {
        std::ostringstream msg;
        msg << problems.size() << " entr" << (problems.size() == 1 ? "y does" : "ies do")
            << " not fit; nothing was copied: ";
        for (std::size_t i = 0; i < problems.size(); ++i) msg << (i ? "; " : "") << problems[i];
        fail(op, msg.str());
    }

    for (const Copy& c : copies) {
        if (c.parameter)
            detail::copy_converted<S, T, Device>(source.value(ParamHandle{c.from}), target.value(ParamHandle{c.to}));
        else
            detail::copy_converted<S, T, Device>(source.buffer_value(BufferHandle{c.from}),
                                         target.buffer_value(BufferHandle{c.to}));
    }
    for (std::size_t i = 0; i < target.parameter_count(); ++i)
        if (!filled_params[i] && target.parameters()[i].name.starts_with(to_prefix))
            report.missing.push_back(target.parameters()[i].name);
    if (options.buffers)
        for (std::size_t i = 0; i < target.buffer_count(); ++i)
            if (!filled_buffers[i] && target.buffers()[i].name.starts_with(to_prefix))
                report.missing.push_back(target.buffers()[i].name);
    return report;
}

}  // namespace gcl::nn
