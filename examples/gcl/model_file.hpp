#pragma once
// The model files the `gcl` program writes and reads: a gcl checkpoint holding the parameters
// and buffers (train/checkpoint_state.hpp names) plus a text entry "gcl/model", a JSON
// description of the network and of the input it was trained on, so that finetune, predict and
// evaluate rebuild the same network and prepare images the same way:
//
//   {"format": 1, "kind": "pretrain" | "segmentation", "classes": 4,
//    "encoder": {"in_channels": 1, "depth": 3, "base_width": 16, ...},
//    "heads": {"image_hidden": 128, "image_out": 96, "pixel_hidden": 64, "pixel_out": 48},
//    "input": {"spacing_mm": 1.5, "size": 128}}
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

#include "gcl/core/error.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/train/checkpoint.hpp"
#include "gcl/train/checkpoint_state.hpp"

namespace gcl_cli {

inline constexpr const char* model_entry = "gcl/model";
inline constexpr int model_format = 1;

struct ModelFile {
    std::string kind;  // "pretrain": encoder + heads; "segmentation": a U-Net
    gcl::nn::UNetEncoderOptions encoder{.in_channels = 1, .depth = 3, .base_width = 16};
    int classes = gcl::data::cls::count;
    gcl::index_t image_hidden = 128, image_out = 96, pixel_hidden = 64, pixel_out = 48;
    std::optional<double> spacing = 1.5;  // mm per pixel the slices were resampled to; empty: native
    gcl::index_t size = 128;              // slices were cropped / padded to size x size

    gcl::nn::UNetOptions unet() const {
        return {.in_channels = encoder.in_channels,
                .classes = classes,
                .depth = encoder.depth,
                .base_width = encoder.base_width,
                .negative_slope = encoder.negative_slope,
                .conv_bias = encoder.conv_bias,
                .bn_momentum = encoder.bn_momentum,
                .bn_eps = encoder.bn_eps};
    }
    gcl::nn::PretrainModelOptions pretrain_model() const {
        return {.encoder = encoder,
                .image_hidden = image_hidden,
                .image_out = image_out,
                .pixel_hidden = pixel_hidden,
                .pixel_out = pixel_out};
    }
};

inline nlohmann::json to_json(const ModelFile& m) {
    return {{"format", model_format},
            {"kind", m.kind},
            {"classes", m.classes},
            {"encoder",
             {{"in_channels", m.encoder.in_channels},
              {"depth", m.encoder.depth},
              {"base_width", m.encoder.base_width},
              {"negative_slope", m.encoder.negative_slope},
              {"conv_bias", m.encoder.conv_bias},
              {"bn_momentum", m.encoder.bn_momentum},
              {"bn_eps", m.encoder.bn_eps}}},
            {"heads",
             {{"image_hidden", m.image_hidden},
              {"image_out", m.image_out},
              {"pixel_hidden", m.pixel_hidden},
              {"pixel_out", m.pixel_out}}},
            {"input", {{"spacing_mm", m.spacing ? nlohmann::json(*m.spacing) : nlohmann::json(nullptr)}, {"size", m.size}}}};
}

inline ModelFile model_file_from_json(const nlohmann::json& j, const std::string& source) {
    constexpr const char* op = "read_model";
    try {
        ModelFile m;
        gcl::check(j.at("format").get<int>() == model_format, op, source, " has model format ",
                   j.at("format").dump(), "; this gcl reads format ", model_format);
        m.kind = j.at("kind").get<std::string>();
        m.classes = j.at("classes").get<int>();
        const auto& e = j.at("encoder");
        m.encoder.in_channels = e.at("in_channels").get<gcl::index_t>();
        m.encoder.depth = e.at("depth").get<int>();
        m.encoder.base_width = e.at("base_width").get<gcl::index_t>();
        m.encoder.negative_slope = e.at("negative_slope").get<double>();
        m.encoder.conv_bias = e.at("conv_bias").get<bool>();
        m.encoder.bn_momentum = e.at("bn_momentum").get<double>();
        m.encoder.bn_eps = e.at("bn_eps").get<double>();
        const auto& h = j.at("heads");
        m.image_hidden = h.at("image_hidden").get<gcl::index_t>();
        m.image_out = h.at("image_out").get<gcl::index_t>();
        m.pixel_hidden = h.at("pixel_hidden").get<gcl::index_t>();
        m.pixel_out = h.at("pixel_out").get<gcl::index_t>();
        const auto& in = j.at("input");
        if (!in.at("spacing_mm").is_null()) m.spacing = in.at("spacing_mm").get<double>();
        else m.spacing.reset();
        m.size = in.at("size").get<gcl::index_t>();
        gcl::check(m.classes >= 2 && m.classes <= 255 && m.encoder.depth >= 1 && m.encoder.base_width >= 1 &&
                       m.size >= 0 && (!m.spacing || *m.spacing > 0),
                   op, source, " describes an invalid model: ", j.dump());
        return m;
    } catch (const nlohmann::json::exception& e) {
        gcl::fail(op, source, ": its model description is not what gcl writes (", e.what(), ")");
    }
}

// Writes the arena's parameters and buffers with the model's description, atomically.
template <class T>
void write_model(const std::filesystem::path& path, const gcl::nn::ParameterArena<T>& arena, const ModelFile& model) {
    gcl::train::CheckpointWriter writer;
    gcl::train::add_parameters(writer, arena);
    writer.add_text(model_entry, to_json(model).dump(2));
    writer.write(path);
}

// Reads a model file's description and checks that it is of the expected kind.
inline ModelFile read_model_file(const gcl::train::Checkpoint& checkpoint, const std::string& expected_kind) {
    constexpr const char* op = "read_model";
    gcl::check(checkpoint.contains(model_entry), op, checkpoint.source(),
               " is a gcl checkpoint without a model description; models come from gcl pretrain or gcl finetune");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(checkpoint.text(model_entry));
    } catch (const nlohmann::json::exception& e) {
        gcl::fail(op, checkpoint.source(), ": its model description is not JSON (", e.what(), ")");
    }
    ModelFile m = model_file_from_json(j, checkpoint.source());
    gcl::check(m.kind == expected_kind, op, checkpoint.source(), " holds a ", m.kind, " model, expected a ",
               expected_kind, " model (", expected_kind == "pretrain" ? "from gcl pretrain" : "from gcl finetune", ")");
    return m;
}

}  // namespace gcl_cli
