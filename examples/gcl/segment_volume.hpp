#pragma once
// Segmenting one ACDC image volume with a fine-tuned U-Net and handing the label map back on the
// file's own voxel grid: the slices are prepared exactly as for training (normalised, resampled
// to the model's spacing, cropped or padded to its size), predicted, and the predictions undo
// the crop / pad and the resampling (nearest neighbour), so the result has the input's shape and
// is written with the input's affine.
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <vector>

#include "gcl/data/acdc.hpp"
#include "gcl/data/nifti.hpp"
#include "gcl/data/resample.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/train/checkpoint_state.hpp"
#include "gcl/metrics/evaluate.hpp"
#include "model_file.hpp"

namespace gcl_cli {

// A fine-tuned U-Net loaded from a model file of gcl finetune.
struct LoadedUNet {
    ModelFile model;
    gcl::nn::ParameterArena<float> arena;
    gcl::nn::UNet<float> unet;

    explicit LoadedUNet(const std::filesystem::path& path) : LoadedUNet(gcl::train::Checkpoint::read(path)) {}
    explicit LoadedUNet(const gcl::train::Checkpoint& checkpoint)
        : model(read_model_file(checkpoint, "segmentation")), unet(arena, model.unet(), 0) {
        gcl::train::load_parameters(checkpoint, arena);
    }
};

struct SegmentedVolume {
    gcl::data::NiftiHeader header;      // the input image's
    gcl::Tensor<std::uint8_t> labels;   // header.shape(): the input's grid
    gcl::data::Volume prepared;         // the model's view: (slices, size, size), with ground truth when present
    gcl::Tensor<std::uint8_t> prepared_labels;  // the prediction on the model's grid
};

inline std::filesystem::path acdc_image_path(const std::filesystem::path& root, std::int64_t patient,
                                             gcl::data::Phase phase, bool gt) {
    const gcl::data::AcdcInfo info =
        gcl::data::read_acdc_info(root / gcl::data::acdc_patient_name(patient) / "Info.cfg");
    return root / gcl::data::acdc_patient_name(patient) / gcl::data::acdc_frame_file(patient, info.frame(phase), gt);
}

inline SegmentedVolume segment_volume(LoadedUNet& net, const std::filesystem::path& root, std::int64_t patient,
                                      gcl::data::Phase phase, gcl::index_t batch_size = 16) {
    namespace gd = gcl::data;
    const ModelFile& model = net.model;
    SegmentedVolume out;
    gd::AcdcOptions o;
    o.spacing = model.spacing;
    o.size = model.size;
    o.labels = std::filesystem::exists(acdc_image_path(root, patient, phase, true));
    out.prepared = gd::load_acdc_volume(root, patient, phase, o);
    out.header = gd::read_nifti_header(acdc_image_path(root, patient, phase, false));

    const std::vector<gd::Slice> slices = gd::volume_slices(out.prepared);
    std::vector<gcl::index_t> order(slices.size());
    std::iota(order.begin(), order.end(), gcl::index_t{0});
    out.prepared_labels = gcl::metrics::predict_slices<float>(net.unet, slices, order, batch_size);

    // Back to the file's grid: the same geometry load_acdc_volume used, undone.
    const gcl::index_t nx = out.header.dim[0], ny = out.header.dim[1], nz = out.header.dim[2];
    const std::array<double, 2> native{std::abs(out.header.pixdim[2]), std::abs(out.header.pixdim[1])};
    const std::array<double, 2> target = model.spacing ? std::array<double, 2>{*model.spacing, *model.spacing} : native;
    const bool same_grid = target == native;
    const gcl::index_t rh = same_grid ? ny : gd::resampled_extent(ny, native[0], target[0]);
    const gcl::index_t rw = same_grid ? nx : gd::resampled_extent(nx, native[1], target[1]);
    out.labels = gcl::Tensor<std::uint8_t>(gcl::Shape{nz, ny, nx});
    for (gcl::index_t k = 0; k < nz; ++k) {
        const gcl::Tensor<std::uint8_t> resampled =
            model.size > 0 ? gd::crop_or_pad<std::uint8_t>(out.prepared_labels.cview().select(0, k), rh, rw)
                           : gcl::Tensor<std::uint8_t>::copy_of(out.prepared_labels.cview().select(0, k));
        gcl::TensorView<std::uint8_t> slice = out.labels.view().select(0, k);
        if (same_grid)
            std::copy(resampled.data(), resampled.data() + resampled.numel(), slice.data());
        else
            gd::warp_label<std::uint8_t>(resampled.cview(), slice, gd::spacing_warp(target, native, {rh, rw}, {ny, nx}));
    }
    out.labels.reshape(out.header.shape());
    return out;
}

// Writes a label map on the input's grid with the input's affine (sform and qform).
inline void write_label_volume(const std::filesystem::path& path, const SegmentedVolume& v) {
    gcl::data::NiftiWriteOptions o;
    o.affine = v.header.affine();
    o.description = "gcl prediction";
    gcl::data::write_nifti<std::uint8_t>(path, v.labels.cview(), o);
}

}  // namespace gcl_cli
