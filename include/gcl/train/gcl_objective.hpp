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
//   gcl_batch_exchange.hpp   the seam of data-parallel pre-training
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
template <class T>
struct EmbeddingGradients {
    Tensor<T> image;  // [K, N, D]
    Tensor<T> pixel;  // [K, N, C, h, w], zero away from the sampled locations; empty without the pixel contrast
    GclStepReport report;
};

template <class T>
class GclObjective {
public:
    GclObjective(nn::PretrainModel<T>& model, nn::ParameterArena<T, cpu>& arena, const GclObjectiveOptions& options)
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
    void set_batch_exchange(GclBatchExchange<T>* exchange) { exchange_ = exchange; }

    // Forward, losses, filter, mitigation and backward for one batch: images [2B, C, H, W] (rows i
    // and B + i are the two views of image i) and meta labels [K, 2B]. Leaves the combined gradient
    // in the arena's own gradient buffer. `step` seeds the location sampling and the projection
    // orders, so a run repeats exactly.
    GclStepReport gradient(ConstView<T> images, ConstView<std::int64_t> meta, std::uint64_t step) {
        GclStage<T> st = stage(images, meta, step);
        MitigationContext<T> ctx{*model_, *arena_, exchange_, options_.mitigate, dense_, options_.pixel_contrast};
        levels_.run(options_.mitigation, ctx, st, step);
        if (exchange_ && options_.mitigation != Mitigation::parameters) exchange_->sum_gradient(arena_->flat_grads());
        ops::check_finite("train::GclObjective", arena_->flat_grads(), "the combined gradient");
        return std::move(st.report);
    }

    // Forward, losses and filter only: the per-label gradients with respect to the embeddings that
    // gradient() would mitigate. Writes no parameter gradient.
    EmbeddingGradients<T> embedding_gradients(ConstView<T> images, ConstView<std::int64_t> meta, std::uint64_t step) {
        GclStage<T> st = stage(images, meta, step);
        EmbeddingGradients<T> out;
        out.image = std::move(st.img.grads);
        if (options_.pixel_contrast) {
            const index_t K = meta.dim(0);
            const Shape& ps = st.pixel_shape;
            out.pixel = Tensor<T>(Shape{K, ps[0], ps[1], ps[2], ps[3]});
            for (index_t m = 0; m < K; ++m)
                loss::scatter_pixel_grads<T>(st.pix.grads.cview().select(0, m), st.locations.cview(),
                                             out.pixel.view().select(0, m));
        }
        out.report = std::move(st.report);
        return out;
    }

private:
    GclStage<T> stage(ConstView<T> images, ConstView<std::int64_t> meta, std::uint64_t step) {
        constexpr std::string_view op = "train::GclObjective::gradient";
        check(images.rank() == 4, op, "images must be [2B, C, H, W], got ", images.shape());
        check(images.dim(0) >= 2 && images.dim(0) % 2 == 0, op, "images must hold two views of B >= 1 images, got ",
              images.dim(0), " rows");
        check(meta.rank() == 2 && meta.dim(1) == images.dim(0) && meta.dim(0) >= 1, op,
              "meta must be [K, 2B] = [K, ", images.dim(0), "] with K >= 1, got ", meta.shape());
        const index_t N = images.dim(0), B = N / 2, K = meta.dim(0);
        for (index_t k = 0; k < K; ++k)
            for (index_t i = 0; i < B; ++i)
                check(meta(k, i) == meta(k, i + B), op, "meta label ", k, " differs between the two views of image ", i,
                      " (", meta(k, i), " vs ", meta(k, i + B), ")");

        model_->set_training(true);
        model_->set_input_gradient(false);  // the step never reads dL/d(images)
        const auto out = model_->forward(images);
        GclStage<T> st;
        st.feature_shape = out.features.shape();
        // The losses see the global batch: with an exchange, the ranks' embeddings gathered.
        Tensor<T> global_image, global_pixel;
        Tensor<std::int64_t> global_meta;
        ConstView<T> image = out.image, pixel = out.pixel;
        ConstView<std::int64_t> labels = meta;
        if (exchange_) {
            global_image = exchange_->gather(out.image);
            global_meta = exchange_->gather_meta(meta);
            image = global_image.cview();
            labels = global_meta.cview();
            if (options_.pixel_contrast) {
                global_pixel = exchange_->gather(out.pixel);
                pixel = global_pixel.cview();
            }
        }
        // Per-label gradients on the image embeddings [K, N, D] and on the sampled pixels [K, A, C].
        const LabelSpaces spaces = LabelSpaces::of(options_);
        st.img = spaces.image_contrast(image, labels, st.report);
        if (options_.pixel_contrast) {
            st.pixel_shape = out.pixel.shape();  // [N, C, h, w]
            st.locations = PixelSampling{.samples = options_.pixel_samples, .seed = options_.seed}.locations(
                st.pixel_shape[2], st.pixel_shape[3], step);
            const PixelFilterPolicy filter = PixelFilterPolicy::of(options_);
            // Anchor weights from the image branch: |d(sum_m L_img^m)/dF| at each sampled location.
            const Tensor<T> guidance = filter.needs_guidance() ? image_guidance(st.img, st.locations) : Tensor<T>();
            st.pix = spaces.pixel_contrast(pixel, labels, st.locations, filter, guidance, options_.pixel_weight, st.report);
            if (options_.pixel_weight != 1.0)
                ops::scale(st.pix.grads.cview(), static_cast<T>(options_.pixel_weight), st.pix.grads.view());
        }
        if (exchange_) keep_own_rows(st);
        return st;
    }

    // Data parallel: the global losses' gradient rows of this rank's samples (image rows, and the
    // S sampled pixels of each of its images).
    void keep_own_rows(GclStage<T>& st) {
        const auto own = [&](const Tensor<T>& global, index_t per_row) {  // [2B per_row, width] -> [2b per_row, width]
            const index_t width = global.numel() / global.dim(0);
            Tensor<T> rows = exchange_->local_rows(ConstView<T>(global.data(), Shape{global.dim(0) / per_row, per_row * width}));
            rows.reshape(Shape{rows.dim(0) * per_row, width});
            return rows;
        };
        const auto own_per_label = [&](const Tensor<T>& global, index_t per_row) {  // [K, 2B per_row, width]
            const index_t K = global.dim(0), width = global.dim(2);
            std::vector<Tensor<T>> parts;
            for (index_t k = 0; k < K; ++k) parts.push_back(own(Tensor<T>::copy_of(global.cview().select(0, k)), per_row));
            Tensor<T> out(Shape{K, parts[0].dim(0), width});
            for (index_t k = 0; k < K; ++k) std::copy(parts[k].data(), parts[k].data() + parts[k].numel(), out.data() + k * parts[k].numel());
            return out;
        };
        st.img.grads = own_per_label(st.img.grads, 1);
        st.img.grad_sum = own(st.img.grad_sum, 1);
        if (options_.pixel_contrast) {
            const index_t S = st.locations.dim(0);
            st.pix.grads = own_per_label(st.pix.grads, S);
            st.pix.grad_sum = own(st.pix.grad_sum, S);
        }
    }

    // GradFilter's anchor weights: |d(sum_m L_img^m)/dF| at each sampled location [A], from the
    // image head's backward pass on this process's rows (gathered over the ranks with an exchange).
    Tensor<T> image_guidance(const PerLabelGradients<T>& img, const Tensor<index_t>& locations) {
        if (!exchange_)
            return loss::location_magnitudes<T>(model_->image_feature_gradient(img.grad_sum.cview()), locations.cview());
        const Tensor<T> own = exchange_->local_rows(img.grad_sum.cview());
        const Tensor<T> local =
            loss::location_magnitudes<T>(model_->image_feature_gradient(own.cview()), locations.cview());
        const index_t S = locations.dim(0);
        Tensor<T> global = exchange_->gather(ConstView<T>(local.data(), Shape{local.dim(0) / S, S}));
        global.reshape(Shape{global.numel()});
        return global;
    }

    nn::PretrainModel<T>* model_;
    nn::ParameterArena<T, cpu>* arena_;
    GclObjectiveOptions options_;
    GclBatchExchange<T>* exchange_ = nullptr;
    DensePixelGradient<T> dense_;
    MitigationLevels<T> levels_;  // each level's workspaces, kept between steps
};

}  // namespace gcl::train
