#pragma once
// Evaluating a segmentation network on labelled slices the way cardiac MRI papers report it:
// slices are predicted, stacked back into volumes (one per patient, phase and scanner, base to
// apex), and every volume gets a Dice score, an HD95 and an ASSD per class; the report averages
// them. The Dice convention and the HD95 / ASSD definitions are options (segmentation_metrics.hpp,
// hausdorff.hpp) and the report carries them: print `report.conventions()` beside its figures.
//
//   auto report = metrics::evaluate_segmentation<float>(unet, test_slices, {.classes = 4});
//   report.mean_dice[c], report.mean_hd95[c], report.mean_foreground_dice(), report.conventions()
//
// The network runs on its own device (Net::device_type; a net without one is a host net): each
// batch of slices goes there once and its logits come back to the host, where the class maps are
// formed and scored. Dice, HD95 and ASSD are host code on purpose: they sort, search and stack
// whole volumes, a small share of an evaluation against the forward passes.
#include <algorithm>
#include <concepts>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "gcl/core/device.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/slice.hpp"
#include "gcl/metrics/hausdorff.hpp"
#include "gcl/metrics/segmentation_metrics.hpp"
#include "gcl/ops/transfer.hpp"

namespace gcl::metrics {

struct EvaluationOptions {
    int classes = 4;
    index_t batch_size = 16;      // slices per forward pass
    double slice_spacing = 10.0;  // mm between the slices of a stack (through-plane distances)
    DiceConvention dice = DiceConvention::nnunet;
    Hd95Definition hd95 = Hd95Definition::medpy;
    AssdDefinition assd = AssdDefinition::pooled;
};

struct VolumeScores {
    std::int64_t patient = 0;
    std::int32_t phase = 0;
    std::int32_t scanner = 0;
    index_t slices = 0;
    std::vector<double> dice;                 // per class (class 0: background); NaN where undefined
    std::vector<std::optional<double>> hd95;  // per class, mm; empty where a class is absent from either map
    std::vector<std::optional<double>> assd;  // per class, mm; likewise
};

struct EvaluationReport {
    DiceConvention dice_convention = DiceConvention::nnunet;
    Hd95Definition hd95_definition = Hd95Definition::medpy;
    AssdDefinition assd_definition = AssdDefinition::pooled;
    std::vector<VolumeScores> volumes;
    std::vector<double> mean_dice, std_dice;  // per class, over the volumes where Dice is defined
    std::vector<index_t> undefined_dice;      // per class: volumes without a Dice (always 0 for empty_is_one)
    std::vector<double> mean_hd95;            // per class, over volumes where it is defined
    std::vector<index_t> undefined_hd95;      // per class: volumes without it (class missing from a map)
    std::vector<double> mean_assd;            // per class, over volumes where it is defined

    // Mean over foreground classes of mean_dice, classes without any Dice left out.
    double mean_foreground_dice() const { return metrics::mean_foreground_dice(mean_dice); }

    // One line naming the conventions behind the figures; print it with them.
    std::string conventions() const {
        std::string s = "Dice: ";
        s.append(name(dice_convention)).append(" (").append(describe(dice_convention)).append("); HD95: ");
        s.append(name(hd95_definition)).append(" (").append(describe(hd95_definition)).append("); ASSD: ");
        s.append(name(assd_definition)).append(" (").append(describe(assd_definition)).append(")");
        return s;
    }
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

namespace detail {
// The device a network runs on: its device_type (every gcl layer has one), else the host.
template <class Net>
struct net_device {
    using type = cpu;
};
template <class Net>
    requires requires { typename Net::device_type; }
struct net_device<Net> {
    using type = typename Net::device_type;
};
}  // namespace detail
template <class Net>
using net_device_t = typename detail::net_device<Net>::type;

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
        Tensor<std::uint8_t> classes;
        if constexpr (std::same_as<net_device_t<Net>, cpu>) {
            classes = argmax_classes<T>(net.forward(x.cview()));
        } else {  // the batch to the network's device, its logits back for the class maps
            const auto x_device = ops::host_to_device<net_device_t<Net>>(std::move(x));
            classes = argmax_classes<T>(ops::device_to_host(net.forward(x_device.cview())).cview());
        }
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
    report.dice_convention = options.dice;
    report.hd95_definition = options.hd95;
    report.assd_definition = options.assd;
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
        v.dice = dice_per_class<std::uint8_t>(prediction.cview(), truth.cview(), options.classes, options.dice);
        const std::vector<double> spacing{options.slice_spacing, first.spacing[0], first.spacing[1]};
        for (int c = 0; c < options.classes; ++c) {
            const auto d = surface_distance<std::uint8_t>(prediction.cview(), truth.cview(), static_cast<std::uint8_t>(c),
                                                          spacing);
            v.hd95.push_back(d ? std::optional<double>(d->hd95(options.hd95)) : std::nullopt);
            v.assd.push_back(d ? std::optional<double>(d->assd(options.assd)) : std::nullopt);
        }
        report.volumes.push_back(std::move(v));
    }

    const double nan = std::numeric_limits<double>::quiet_NaN();
    report.mean_dice.assign(C, nan);
    report.std_dice.assign(C, nan);
    report.undefined_dice.assign(C, 0);
    report.mean_hd95.assign(C, nan);
    report.undefined_hd95.assign(C, 0);
    report.mean_assd.assign(C, nan);
    const auto volume_count = static_cast<index_t>(report.volumes.size());
    for (std::size_t c = 0; c < C; ++c) {
        double sum = 0, sq = 0, hd = 0, as = 0;
        index_t with_dice = 0, with_distance = 0;
        for (const VolumeScores& v : report.volumes) {
            if (!std::isnan(v.dice[c])) {
                sum += v.dice[c];
                sq += v.dice[c] * v.dice[c];
                ++with_dice;
            }
            if (v.hd95[c]) {
                hd += *v.hd95[c];
                as += *v.assd[c];
                ++with_distance;
            }
        }
        if (with_dice) {
            const double n = static_cast<double>(with_dice);
            report.mean_dice[c] = sum / n;
            report.std_dice[c] = std::sqrt(std::max(0.0, sq / n - report.mean_dice[c] * report.mean_dice[c]));
        }
        report.undefined_dice[c] = volume_count - with_dice;
        if (with_distance) {
            report.mean_hd95[c] = hd / static_cast<double>(with_distance);
            report.mean_assd[c] = as / static_cast<double>(with_distance);
        }
        report.undefined_hd95[c] = volume_count - with_distance;
    }
    return report;
}

}  // namespace gcl::metrics

// The evaluation entry points under their earlier names, for programs written against gcl::train.
namespace gcl::train {
using metrics::EvaluationOptions;
using metrics::EvaluationReport;
using metrics::evaluate_segmentation;
}  // namespace gcl::train
