#pragma once
// train::GclObjective: the gradient of GCL's pre-training objective for one two-view batch,
// written into the model's parameter arena, ready for an optimizer step.
//
//   sum over meta labels m of  L_img^m  +  pixel_weight * L_pix^m
//
// L_img^m is SupCon over the 2B image embeddings with m's positives; L_pix^m the pixel-wise
// contrast of S sampled locations per feature map. GradFilter keeps the most discriminating
// pixels (ranked by the closed-form |dL/ds| of their pairs, weighted by the image branch's
// gradient magnitude at their location), and GradMitigator resolves the conflicts between the
// per-label gradients, either over the parameters (K backward passes after one forward) or per
// sample at the encoder output or on the embeddings. See docs/training.md for the choices and why.
//
// The objective is assembled from its parts, each in its own header:
//   gcl_options.hpp          the choices (label space, filter, mitigation level) and the step report
//   label_space.hpp          which part of the embedding each label contrasts; the two contrasts
//   pixel_sampling.hpp       the sampled locations of a step, and their gradients made dense
//   pixel_filter_policy.hpp  what GradFilter keeps of the pixel pairs
//   mitigation_level.hpp     where GradMitigator acts, and the backward pass that follows
//   gradient_rows.hpp        the encoder-output level's per-sample and per-location rows
//   gcl_batch_exchange.hpp   the seam of data-parallel pre-training
//
// GclObjective<T, D> runs on the model's device D (GclObjective<float> is the cpu's): the
// embeddings, the per-label gradients and the mitigation stay on D. Three small steps run on
// the host, each explicitly: the sampled locations are drawn from the seeded generator, the meta
// labels [K, 2B] are read (one copy) to check them and build the positives, and the mitigators
// solve their K x K weights; the locations and the positives go to D by ops::host_to_device.
//
//   nn::ParameterArena<float> arena;
//   nn::PretrainModel<float> model(arena, model_options, seed);
//   train::GclObjective<float> objective(model, arena, {.mitigation = train::Mitigation::parameters});
//   optim::SGD<float> sgd({.learning_rate = 0.01, .momentum = 0.9});
//   for (step ...) {
//       data::TwoViewBatch b = ...;
//       train::GclStepReport r = objective.gradient(b.images.cview(), b.meta.cview(), step);
//       sgd.step(arena);
//   }
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/loss/pixel_contrast.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/finite.hpp"
#include "gcl/ops/transfer.hpp"
#include "gcl/train/gcl_batch_exchange.hpp"
#include "gcl/train/gcl_options.hpp"
#include "gcl/train/gcl_stage.hpp"
#include "gcl/train/label_space.hpp"
#include "gcl/train/mitigation_level.hpp"
#include "gcl/train/pixel_filter_policy.hpp"
#include "gcl/train/pixel_sampling.hpp"

namespace gcl::train {

// The per-label gradients of one batch's losses with respect to the embeddings, before any
// mitigation (GclObjective::embedding_gradients).
template <class T, class D = cpu>
struct EmbeddingGradients {
    Tensor<T, D> image;  // [K, N, width]
    Tensor<T, D> pixel;  // [K, N, C, h, w], zero away from the sampled locations; empty without the pixel contrast
    GclStepReport report;
};

template <class T, class D = cpu>
class GclObjective {
public:
    using value_type = T;
    using device_type = D;

    GclObjective(nn::PretrainModel<T, D>& model, nn::ParameterArena<T, D>& arena, const GclObjectiveOptions& options)
        : model_(&model), arena_(&arena), options_(options) {
        constexpr std::string_view op = "train::GclObjective";
        check(options.temperature > 0, op, "temperature must be positive, got ", options.temperature);
        for (double t : options.image_temperatures)
            check(t > 0, op, "every image temperature must be positive, got ", t);
        check(options.image_temperatures.empty() || options.label_space == LabelSpace::per_label, op,
              "image_temperatures need per_label spaces (a shared space has one temperature)");
        check(options.pixel_weight >= 0, op, "pixel_weight must not be negative, got ", options.pixel_weight);
        check(!options.pixel_contrast || options.pixel_samples >= 1, op, "pixel_samples must be at least 1, got ",
              options.pixel_samples);
        check(options.anchor_ratio > 0 && options.anchor_ratio <= 1, op, "anchor_ratio must be in (0, 1], got ",
              options.anchor_ratio);
    }

    const GclObjectiveOptions& options() const { return options_; }

    // Data-parallel pre-training (GclBatchExchange); nullptr (the default): one process. Not owned.
    void set_batch_exchange(GclBatchExchange<T, D>* exchange) { exchange_ = exchange; }

    // Forward, losses, filter, mitigation and backward for one batch: images [2B, C, H, W] (rows i
    // and B + i are the two views of image i) and meta labels [K, 2B], both on D. Leaves the
    // combined gradient in the arena's own gradient buffer. `step` seeds the location sampling
    // and the projection orders, so a run repeats exactly.
    GclStepReport gradient(ConstView<T, D> images, ConstView<std::int64_t, D> meta, std::uint64_t step)
    {
        GclStage<T, D> st = stage(images, meta, step);
        MitigationContext<T, D> ctx{*model_, *arena_, exchange_, options_.mitigate, dense_, options_.pixel_contrast};
        levels_.run(options_.mitigation, ctx, st, step);
        if (exchange_ && options_.mitigation != Mitigation::parameters) exchange_->sum_gradient(arena_->flat_grads());
        ops::check_finite("train::GclObjective", arena_->flat_grads(), "the combined gradient");
        return std::move(st.report);
    }

    // Forward, losses and filter only: the per-label gradients with respect to the embeddings that
    // gradient() would mitigate. Writes no parameter gradient.
    EmbeddingGradients<T, D> embedding_gradients(ConstView<T, D> images, ConstView<std::int64_t, D> meta,
                                                 std::uint64_t step)
    {
        GclStage<T, D> st = stage(images, meta, step);
        EmbeddingGradients<T, D> out;
        out.image = std::move(st.img.grads);
        if (options_.pixel_contrast) {
            const index_t K = meta.dim(0);
            const Shape& ps = st.pixel_shape;
            out.pixel = Tensor<T, D>(Shape{K, ps[0], ps[1], ps[2], ps[3]});
            for (index_t m = 0; m < K; ++m)
                loss::scatter_pixel_grads<T, D>(st.pix.grads.cview().select(0, m), st.locations.cview(),
                                                out.pixel.view().select(0, m));
        }
        out.report = std::move(st.report);
        return out;
    }

private:
    GclStage<T, D> stage(ConstView<T, D> images, ConstView<std::int64_t, D> meta, std::uint64_t step)
    {
        constexpr std::string_view op = "train::GclObjective::gradient";
        check(images.rank() == 4, op, "images must be [2B, C, H, W], got ", images.shape());
        check(images.dim(0) >= 2 && images.dim(0) % 2 == 0, op, "images must hold two views of B >= 1 images, got ",
              images.dim(0), " rows");
        check(meta.rank() == 2 && meta.dim(1) == images.dim(0) && meta.dim(0) >= 1, op,
              "meta must be [K, 2B] = [K, ", images.dim(0), "] with K >= 1, got ", meta.shape());
        const index_t N = images.dim(0), B = N / 2, K = meta.dim(0);
        // The meta labels on the host: checked here, and the positives are built from them.
        Tensor<std::int64_t> host_meta = ops::device_to_host(meta);
        for (index_t k = 0; k < K; ++k)
            for (index_t i = 0; i < B; ++i)
                check(host_meta(k, i) == host_meta(k, i + B), op, "meta label ", k,
                      " differs between the two views of image ", i, " (", host_meta(k, i), " vs ", host_meta(k, i + B),
                      ")");

        model_->set_training(true);
        model_->set_input_gradient(false);  // the step never reads dL/d(images)
        const auto out = model_->forward(images);
        GclStage<T, D> st;
        st.feature_shape = out.features.shape();
        // The losses see the global batch: with an exchange, the ranks' embeddings gathered.
        Tensor<T, D> global_image, global_pixel;
        ConstView<T, D> image = out.image, pixel = out.pixel;
        Tensor<std::int64_t> labels = std::move(host_meta);  // of the global batch, on the host
        if (exchange_) {
            global_image = exchange_->gather(out.image);
            labels = ops::device_to_host(exchange_->gather_meta(meta).cview());
            image = global_image.cview();
            if (options_.pixel_contrast) {
                global_pixel = exchange_->gather(out.pixel);
                pixel = global_pixel.cview();
            }
        }
        // Per-label gradients on the image embeddings [K, N, width] and on the sampled pixels [K, A, C].
        const LabelSpaces spaces = LabelSpaces::of(options_);
        st.img = spaces.image_contrast(image, labels.cview(), st.report);
        if (options_.pixel_contrast) {
            st.pixel_shape = out.pixel.shape();  // [N, C, h, w]
            st.locations = PixelSampling{.samples = options_.pixel_samples, .seed = options_.seed}.locations<D>(
                st.pixel_shape[2], st.pixel_shape[3], step);
            const PixelFilterPolicy filter = PixelFilterPolicy::of(options_);
            // Anchor weights from the image branch: |d(sum_m L_img^m)/dF| at each sampled location.
            const Tensor<T, D> guidance = filter.needs_guidance() ? image_guidance(st.img, st.locations) : Tensor<T, D>();
            st.pix = spaces.pixel_contrast(pixel, labels.cview(), st.locations, filter, guidance, options_.pixel_weight,
                                           st.report);
            if (options_.pixel_weight != 1.0) {  // the per-label gradients and their sum (the plain-sum level's)
                ops::scale(st.pix.grads.cview(), static_cast<T>(options_.pixel_weight), st.pix.grads.view());
                ops::scale(st.pix.grad_sum.cview(), static_cast<T>(options_.pixel_weight), st.pix.grad_sum.view());
            }
        }
        if (exchange_) keep_own_rows(st);
        return st;
    }

    // Data parallel: the global losses' gradient rows of this rank's samples (image rows, and the
    // S sampled pixels of each of its images).
    void keep_own_rows(GclStage<T, D>& st) {
        st.img.grads = own_rows_per_label(st.img.grads.cview(), 1);
        st.img.grad_sum = own_rows(st.img.grad_sum.cview(), 1);
        if (options_.pixel_contrast) {
            const index_t S = st.locations.dim(0);
            st.pix.grads = own_rows_per_label(st.pix.grads.cview(), S);
            st.pix.grad_sum = own_rows(st.pix.grad_sum.cview(), S);
        }
    }
    // [2B per_sample, width] -> this rank's [2b per_sample, width] (per_sample rows per sample).
    Tensor<T, D> own_rows(ConstView<T, D> global, index_t per_sample) {
        const index_t width = global.numel() / global.dim(0);
        Tensor<T, D> rows = exchange_->local_rows(global.reshape(Shape{global.dim(0) / per_sample, per_sample * width}));
        rows.reshape(Shape{rows.dim(0) * per_sample, width});
        return rows;
    }
    // [K, 2B per_sample, width] -> [K, 2b per_sample, width].
    Tensor<T, D> own_rows_per_label(ConstView<T, D> global, index_t per_sample) {
        const index_t K = global.dim(0);
        Tensor<T, D> out;
        for (index_t k = 0; k < K; ++k) {
            const Tensor<T, D> part = own_rows(global.select(0, k), per_sample);
            if (k == 0) out = Tensor<T, D>(Shape{K, part.dim(0), part.dim(1)});
            ops::copy(part.cview(), out.view().select(0, k));
        }
        return out;
    }

    // GradFilter's anchor weights: |d(sum_m L_img^m)/dF| at each sampled location [A], from the
    // image head's backward pass on this process's rows (gathered over the ranks with an exchange).
    Tensor<T, D> image_guidance(const PerLabelGradients<T, D>& img, const Tensor<index_t, D>& locations)
    {
        if (!exchange_)
            return loss::location_magnitudes<T, D>(model_->image_feature_gradient(img.grad_sum.cview()), locations.cview());
        const Tensor<T, D> own = exchange_->local_rows(img.grad_sum.cview());
        const Tensor<T, D> local =
            loss::location_magnitudes<T, D>(model_->image_feature_gradient(own.cview()), locations.cview());
        const index_t S = locations.dim(0);
        Tensor<T, D> global = exchange_->gather(local.cview().reshape(Shape{local.dim(0) / S, S}));
        global.reshape(Shape{global.numel()});
        return global;
    }

    nn::PretrainModel<T, D>* model_;
    nn::ParameterArena<T, D>* arena_;
    GclObjectiveOptions options_;
    GclBatchExchange<T, D>* exchange_ = nullptr;
    DensePixelGradient<T, D> dense_;
    MitigationLevels<T, D> levels_;  // each level's workspaces, kept between steps
};

}  // namespace gcl::train
