#pragma once
// Evaluating a segmentation network on labelled slices the way cardiac MRI papers report it:
// slices are predicted, stacked back into volumes (one per patient, phase and scanner, base to
// apex), and every volume gets a Dice score and an HD95 per class; the report averages them.
//
//   auto report = train::evaluate_segmentation<float>(unet, test_slices, {.classes = 4});
//   report.mean_dice[c], report.mean_hd95[c], report.mean_foreground_dice()
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <tuple>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/slice.hpp"
#include "gcl/train/hausdorff.hpp"
#include "gcl/train/segmentation_metrics.hpp"

namespace gcl::train {

struct EvaluationOptions {
    int classes = 4;
    index_t batch_size = 16;      // slices per forward pass
    double slice_spacing = 10.0;  // mm between the slices of a stack (through-plane HD95)
};

struct VolumeScores {
    std::int64_t patient = 0;
    std::int32_t phase = 0;
    std::int32_t scanner = 0;
    index_t slices = 0;
    std::vector<double> dice;                 // per class (class 0: background)
    std::vector<std::optional<double>> hd95;  // per class, mm; empty where a class is absent from either map
};

struct EvaluationReport {
    std::vector<VolumeScores> volumes;
    std::vector<double> mean_dice, std_dice;  // per class, over volumes
    std::vector<double> mean_hd95;            // per class, over volumes where it is defined
    std::vector<index_t> undefined_hd95;      // per class: volumes without it (class missing from a map)

    double mean_foreground_dice() const { return train::mean_foreground_dice(mean_dice); }
};

// Class indices [N, H, W] from logits [N, C, H, W] (the first maximum wins).
template <class T>
Tensor<std::uint8_t> argmax_classes(ConstView<T> logits) {
    check(logits.rank() == 4 && logits.is_contiguous(), "argmax_classes", "logits must be a contiguous [N, C, H, W], got ",
          logits.shape());
    const index_t N = logits.dim(0), C = logits.dim(1), HW = logits.dim(2) * logits.dim(3);
    check(C >= 1 && C <= 256, "argmax_classes", "needs 1 to 256 classes, got ", C);
    Tensor<std::uint8_t> out(Shape{N, logits.dim(2), logits.dim(3)});
    for (index_t n = 0; n < N; ++n)
        for (index_t p = 0; p < HW; ++p) {
            const T* base = logits.data() + n * C * HW + p;
            index_t best = 0;
            for (index_t c = 1; c < C; ++c)
                if (base[c * HW] > base[best * HW]) best = c;
            out.data()[n * HW + p] = static_cast<std::uint8_t>(best);
        }
    return out;
}

// Predicted class maps [n, H, W] of the given slices, in evaluation mode, `batch_size` at a time.
template <class T, class Net>
Tensor<std::uint8_t> predict_slices(Net& net, const std::vector<data::Slice>& slices, std::span<const index_t> indices,
                                    index_t batch_size = 16) {
    check(!indices.empty(), "predict_slices", "no slices to predict");
    check(batch_size >= 1, "predict_slices", "batch_size must be at least 1, got ", batch_size);
    const Shape first = slices.at(static_cast<std::size_t>(indices[0])).image.shape();
    check(first.rank() == 2, "predict_slices", "slices must be 2D images, got ", first);
    const index_t n = static_cast<index_t>(indices.size()), H = first[0], W = first[1];
    Tensor<std::uint8_t> out(Shape{n, H, W});
    const bool was_training = net.training();
    net.set_training(false);
    for (index_t start = 0; start < n; start += batch_size) {
        const index_t b = std::min(batch_size, n - start);
        Tensor<T> x(Shape{b, 1, H, W});
        for (index_t k = 0; k < b; ++k) {
            const data::Slice& s = slices.at(static_cast<std::size_t>(indices[static_cast<std::size_t>(start + k)]));
            check(s.image.shape() == first, "predict_slices", "slice ", indices[static_cast<std::size_t>(start + k)],
                  " has shape ", s.image.shape(), ", the first has ", first);
            std::transform(s.image.data(), s.image.data() + H * W, x.data() + k * H * W,
                           [](float v) { return static_cast<T>(v); });
        }
        const Tensor<std::uint8_t> classes = argmax_classes<T>(net.forward(x.cview()));
        std::copy(classes.data(), classes.data() + classes.numel(), out.data() + start * H * W);
    }
    net.set_training(was_training);
    return out;
}

template <class T, class Net>
EvaluationReport evaluate_segmentation(Net& net, const std::vector<data::Slice>& slices,
                                       const EvaluationOptions& options = {}) {
    constexpr const char* op = "evaluate_segmentation";
    check(!slices.empty(), op, "no slices to evaluate");
    check(options.classes >= 2, op, "needs at least 2 classes, got ", options.classes);
    check(options.slice_spacing > 0, op, "slice_spacing must be positive, got ", options.slice_spacing);

    // Volumes: (scanner, patient, phase) -> slice indices ordered base to apex.
    std::map<std::tuple<std::int32_t, std::int64_t, std::int32_t>, std::vector<index_t>> volumes;
    for (std::size_t i = 0; i < slices.size(); ++i) {
        const data::Slice& s = slices[i];
        check(s.labelled(), op, "slice ", i, " (patient ", s.meta.patient, ") has no ground truth");
        volumes[{s.meta.scanner, s.meta.patient, static_cast<std::int32_t>(s.meta.phase)}].push_back(
            static_cast<index_t>(i));
    }

    EvaluationReport report;
    const auto C = static_cast<std::size_t>(options.classes);
    for (auto& [key, idx] : volumes) {
        std::sort(idx.begin(), idx.end(), [&](index_t a, index_t b) {
            return slices[static_cast<std::size_t>(a)].meta.slice < slices[static_cast<std::size_t>(b)].meta.slice;
        });
        const Tensor<std::uint8_t> prediction = predict_slices<T>(net, slices, idx, options.batch_size);
        Tensor<std::uint8_t> truth(prediction.shape());
        const index_t HW = prediction.dim(1) * prediction.dim(2);
        for (std::size_t k = 0; k < idx.size(); ++k) {
            const data::Slice& s = slices[static_cast<std::size_t>(idx[k])];
            check(s.label.shape() == s.image.shape(), op, "slice ", idx[k], " has label shape ", s.label.shape(),
                  " but image shape ", s.image.shape());
            std::copy(s.label.data(), s.label.data() + HW, truth.data() + static_cast<index_t>(k) * HW);
        }
        const data::Slice& first = slices[static_cast<std::size_t>(idx[0])];
        VolumeScores v;
        v.scanner = std::get<0>(key);
        v.patient = std::get<1>(key);
        v.phase = std::get<2>(key);
        v.slices = static_cast<index_t>(idx.size());
        v.dice = dice_per_class<std::uint8_t>(prediction.cview(), truth.cview(), options.classes);
        const std::vector<double> spacing{options.slice_spacing, first.spacing[0], first.spacing[1]};
        for (int c = 0; c < options.classes; ++c) {
            const auto d = surface_distance<std::uint8_t>(prediction.cview(), truth.cview(), static_cast<std::uint8_t>(c),
                                                          spacing);
            v.hd95.push_back(d ? std::optional<double>(d->hd95) : std::nullopt);
        }
        report.volumes.push_back(std::move(v));
    }

    report.mean_dice.assign(C, 0.0);
    report.std_dice.assign(C, 0.0);
    report.mean_hd95.assign(C, 0.0);
    report.undefined_hd95.assign(C, 0);
    const double nv = static_cast<double>(report.volumes.size());
    for (std::size_t c = 0; c < C; ++c) {
        double sum = 0, sq = 0, hd = 0;
        index_t defined = 0;
        for (const VolumeScores& v : report.volumes) {
            sum += v.dice[c];
            sq += v.dice[c] * v.dice[c];
            if (v.hd95[c]) {
                hd += *v.hd95[c];
                ++defined;
            }
        }
        report.mean_dice[c] = sum / nv;
        report.std_dice[c] = std::sqrt(std::max(0.0, sq / nv - report.mean_dice[c] * report.mean_dice[c]));
        report.mean_hd95[c] = defined ? hd / static_cast<double>(defined) : std::nan("");
        report.undefined_hd95[c] = static_cast<index_t>(report.volumes.size()) - defined;
    }
    return report;
}

}  // namespace gcl::train
