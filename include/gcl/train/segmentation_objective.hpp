#pragma once
// train::SegmentationObjective: the fine-tuning loss of a segmentation network, cross-entropy
// plus soft Dice, and its gradient written into the network's parameter arena.
//
//   nn::UNet<float> unet(arena, {.in_channels = 1, .classes = 4, .depth = 4, .base_width = 16}, seed);
//   train::SegmentationObjective<float> objective({.dice_weight = 1.0});
//   optim::Adam<float> adam(arena.size(), {.lr = 1e-3});
//   auto r = objective.gradient(unet, arena, batch.images.cview(), batch.labels.cview());
//   adam.step(arena);
//
// Data parallel (dist/data_parallel_segmentation.hpp): with a SegmentationBatchExchange set, the
// batch is this rank's share of a global batch; the losses' partial sums (cross-entropy's weighted
// sums, Dice's per-class sums) are summed over the ranks before the loss and its gradient are
// formed, so every rank reports the global batch's loss and holds its share of the gradient, and
// the exchange sums the ranks' parameter gradients: the single-process gradient of the global batch.
//
// SegmentationObjective<T, D> runs on the network's device D (D = gcl::cpu by default): logits,
// losses and gradients stay on D. The labels are class indices on the host (a batch is built
// there); they are converted to index_t once and moved to D with ops::host_to_device.
#include <concepts>
#include <cstdint>
#include <span>
#include <type_traits>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/loss/cross_entropy.hpp"
#include "gcl/loss/dice.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/transfer.hpp"
#include "gcl/train/training_state.hpp"

namespace gcl::train {

struct SegmentationObjectiveOptions {
    double cross_entropy_weight = 1.0;
    double dice_weight = 1.0;
    loss::CrossEntropyOptions cross_entropy = {};
    // Dice over the foreground classes by default: set class_weights to include the background.
    loss::DiceOptions dice = {};
    bool dice_without_background = true;  // when dice.class_weights is empty: weight 0 for class 0
};

struct SegmentationStepReport {
    double loss = 0;
    double cross_entropy = 0;
    double dice_loss = 0;
};

// Which images of a global batch of `total` this rank holds: [first, first + count).
struct BatchShare {
    index_t first = 0, count = 0, total = 0;
};

// The seam of data-parallel fine-tuning (dist::DataParallelSegmentation implements it over a
// communicator); checkpoints go through its CheckpointRanks side. The gradient is on the
// objective's device D (dist/data_parallel_segmentation.hpp implements the cpu's).
template <class T, class D = cpu>
class SegmentationBatchExchange : public CheckpointRanks {
public:
    // This rank's images of a global batch of `global_images` (every rank draws the same one).
    virtual BatchShare share(index_t global_images) = 0;
    // In place: every rank ends with the sum over the ranks (the losses' partial sums).
    virtual void sum(std::span<double> values) = 0;
    // This rank's share of the parameter gradient -> the sum over the ranks.
    virtual void sum_gradient(TensorView<T, D> grad) = 0;
};

template <class T, class D = cpu>
class SegmentationObjective {
public:
    using value_type = T;
    using device_type = D;

    explicit SegmentationObjective(const SegmentationObjectiveOptions& options = {}) : options_(options) {
        check(options.cross_entropy_weight >= 0 && options.dice_weight >= 0 &&
                  options.cross_entropy_weight + options.dice_weight > 0,
              "train::SegmentationObjective", "loss weights must be non-negative and not both zero, got ",
              options.cross_entropy_weight, " and ", options.dice_weight);
    }

    // Data-parallel fine-tuning (SegmentationBatchExchange); nullptr (the default): one process. Not owned.
    void set_batch_exchange(SegmentationBatchExchange<T, D>* exchange) { exchange_ = exchange; }

    // Loss of logits [N, C, H, W] (on D) against labels [N, H, W] (on the host); the gradient goes
    // to `d_logits`. With an exchange, the N images are `share` of the global batch and the loss
    // is the global one.
    template <class L>
    SegmentationStepReport loss(ConstView<T, D> logits, ConstView<L> labels, Tensor<T, D>& d_logits,
                                BatchShare share = {}) {
        static_assert(std::is_integral_v<L>, "labels are class indices");
        check(labels.is_contiguous(), "train::SegmentationObjective", "labels must be contiguous");
        if constexpr (std::same_as<D, cpu>) {
            targets_.resize(labels.shape());
            for (index_t i = 0; i < labels.numel(); ++i) targets_.data()[i] = static_cast<index_t>(labels.data()[i]);
        } else {
            Tensor<index_t> host(labels.shape());
            for (index_t i = 0; i < labels.numel(); ++i) host.data()[i] = static_cast<index_t>(labels.data()[i]);
            targets_ = ops::host_to_device<D>(std::move(host));
        }

        if (!exchange_) share = {.first = 0, .count = logits.dim(0), .total = logits.dim(0)};
        check(share.count == logits.dim(0), "train::SegmentationObjective", "the share holds ", share.count,
              " images, the logits ", logits.shape());
        const auto sum_over_ranks = [&](std::span<double> sums) {
            if (exchange_) exchange_->sum(sums);
        };

        SegmentationStepReport r;
        d_logits.resize(logits.shape());
        ops::fill(d_logits.view(), T(0));
        if (options_.cross_entropy_weight > 0) {
            loss::CrossEntropyPartial<T, D> part =
                loss::cross_entropy_sums<T, D>(logits, targets_.cview(), options_.cross_entropy);
            sum_over_ranks(part.sums);
            const loss::SegmentationLoss<T, D> ce = loss::cross_entropy_from_sums<T, D>(std::move(part));
            r.cross_entropy = ce.loss;
            ops::axpy(static_cast<T>(options_.cross_entropy_weight), ce.grad.cview(), d_logits.view());
        }
        if (options_.dice_weight > 0) {
            loss::DiceOptions dice = options_.dice;
            if (dice.class_weights.empty() && options_.dice_without_background) {
                dice.class_weights.assign(static_cast<std::size_t>(logits.dim(1)), 1.0);
                dice.class_weights[0] = 0.0;
            }
            loss::DicePartial<T, D> part =
                loss::dice_sums<T, D>(logits, targets_.cview(), dice, share.first, share.total);
            sum_over_ranks(part.sums);
            const loss::SegmentationLoss<T, D> d = loss::dice_from_sums<T, D>(part, dice);
            r.dice_loss = d.loss;
            ops::axpy(static_cast<T>(options_.dice_weight), d.grad.cview(), d_logits.view());
        }
        r.loss = options_.cross_entropy_weight * r.cross_entropy + options_.dice_weight * r.dice_loss;
        return r;
    }

    // Forward in training mode, loss, and backward into the arena's own gradient buffer.
    // With an exchange: the images are `share` of the global batch, and the arena ends with the
    // gradient summed over the ranks.
    template <class Net, class L>
    SegmentationStepReport gradient(Net& net, nn::ParameterArena<T, D>& arena, ConstView<T, D> images,
                                    ConstView<L> labels, BatchShare share = {}) {
        check(!labels.empty(), "train::SegmentationObjective", "the batch has no labels (an unlabelled slice?)");
        net.set_training(true);
        // The step never reads dL/d(images): nets that can skip it (nn::UNet) do.
        if constexpr (requires { net.set_input_gradient(false); }) net.set_input_gradient(false);
        const ConstView<T, D> logits = net.forward(images);
        const SegmentationStepReport r = loss(logits, labels, d_logits_, share);
        arena.begin_backward(gcl::WriteMode::overwrite);
        net.backward(d_logits_.cview());
        arena.end_backward();
        if (exchange_) exchange_->sum_gradient(arena.flat_grads());
        return r;
    }

private:
    SegmentationObjectiveOptions options_;
    Tensor<index_t, D> targets_;
    Tensor<T, D> d_logits_;
    SegmentationBatchExchange<T, D>* exchange_ = nullptr;
};

}  // namespace gcl::train
