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
// sample on the embeddings (one backward pass). See docs/training.md for the choices and why.
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
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gcl/train/training_state.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/loss/pixel_contrast.hpp"
#include "gcl/loss/positive_pairs.hpp"
#include "gcl/loss/supcon.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/finite.hpp"
#include "gcl/ops/normalize.hpp"
#include "gcl/surgery/filter.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/mitigate_batched.hpp"

namespace gcl::train {

// Where GradMitigator acts.
enum class Mitigation {
    none,            // plain sum of the per-label gradients (the baseline without surgery)
    parameters,      // g_m = dL_m/dtheta over all parameters: K backward passes, one K x P mitigation
    representation,  // g_m = dL_m/dF at the encoder output F: K passes through the heads, per-sample (image
                     // branch) and per-location (pixel branch) mitigation, one encoder backward pass
    embeddings,      // g_m = dL_m/dz per embedding (image and pixel), mitigated per sample, one backward pass;
                     // meets conflicts only in a shared label space (per-label parts are orthogonal)
};

// Which embedding space each meta label's contrast uses.
enum class LabelSpace {
    shared,     // every label contrasts the whole embedding (one space for all perspectives)
    per_label,  // the embedding is cut into K equal parts, label m contrasts part m (each re-normalised)
};

// What GradFilter selects among the sampled pixels.
enum class PixelFilter {
    none,     // every pixel pair takes part
    anchors,  // the anchors (pixels) whose pairs carry the largest gradient, all pairs of each kept anchor
    pairs,    // the largest pairs per anchor or globally (FilterOptions' rule), other pairs dropped
};

inline const char* to_string(Mitigation m) {
    switch (m) {
        case Mitigation::none: return "none";
        case Mitigation::parameters: return "parameters";
        case Mitigation::representation: return "representation";
        case Mitigation::embeddings: return "embeddings";
    }
    return "?";
}
inline const char* to_string(LabelSpace s) { return s == LabelSpace::shared ? "shared" : "per_label"; }
inline const char* to_string(PixelFilter f) {
    switch (f) {
        case PixelFilter::none: return "none";
        case PixelFilter::anchors: return "anchors";
        case PixelFilter::pairs: return "pairs";
    }
    return "?";
}

struct GclObjectiveOptions {
    // 0.5: a label whose positives are half the batch (cardiac phase) can only fall from log(2B - 1)
    // to about log(B - 1); at 0.1 getting there needs the positives' similarities within a few
    // hundredths of each other, at 0.5 a clear margin to the negatives is enough (docs/training.md).
    double temperature = 0.5;
    // Image-contrast temperature per meta label, in the order of the labels (per_label spaces
    // only); empty: `temperature` for every label.
    std::vector<double> image_temperatures = {};
    Mitigation mitigation = Mitigation::parameters;
    surgery::MitigateOptions mitigate = {};  // reduction, seed of the projection orders, eps
    // per_label (default): with contradicting meta labels a single space has no good minimum (the
    // summed losses are lowest when all similarities are equal), so each label gets its own part
    // of the embedding and the contradiction moves to the shared encoder, where GradMitigator acts.
    LabelSpace label_space = LabelSpace::per_label;
    bool pixel_contrast = true;
    double pixel_weight = 1.0;   // weight of every pixel loss against the image losses
    index_t pixel_samples = 16;  // S locations per feature map (memory grows with (2B S)^2)
    // GradFilter on the pixel contrast. `anchors` (the default) ranks every sampled pixel by the
    // summed magnitude of its pair gradients |dL/ds| (times the image guidance) and keeps the top
    // `anchor_ratio` of them with all their pairs: the exact gradient of the pixel loss over the
    // kept anchors. `pairs` applies filter_options to the pair matrix itself; dropping some of an
    // anchor's pairs breaks the balance between its positives' pull and its negatives' push, and
    // with few pairs kept the pixel embeddings collapse.
    PixelFilter filter = PixelFilter::anchors;
    double anchor_ratio = 0.5;
    surgery::FilterOptions filter_options = {.rule = surgery::FilterRule::top_k_per_anchor, .k = 64};
    bool image_guidance = true;  // filter scores weighted by |d(sum_m L_img^m)/dF| at each anchor
    std::uint64_t seed = 0;      // location sampling
};

// What one gradient computation saw.
struct GclStepReport {
    std::vector<double> image_losses;  // [K] L_img^m
    std::vector<double> pixel_losses;  // [K] L_pix^m (empty without the pixel contrast)
    double total = 0;                  // sum_m L_img^m + pixel_weight L_pix^m
    index_t conflicting_pairs = 0;     // gradient pairs in conflict before mitigation (summed over samples and locations
                                       // at the representation and embedding levels)
    index_t projections = 0;           // projections applied
    index_t kept_pairs = 0;            // pixel pairs kept by the filter
    index_t candidate_pairs = 0;       // pixel pairs it chose from
    std::vector<index_t> image_anchors_without_positives;  // [K]
    // Cosine between the per-label gradients, pairs (0, 1), (0, 2), ..., (K - 2, K - 1): over all
    // parameters at the parameter level, over the whole encoder output at the representation
    // level; empty at the other levels.
    std::vector<double> label_cosines;
};

// The per-label gradients of one batch's losses with respect to the embeddings, before any
// mitigation (GclObjective::embedding_gradients).
template <class T>
struct EmbeddingGradients {
    Tensor<T> image;  // [K, N, D]
    Tensor<T> pixel;  // [K, N, C, h, w], zero away from the sampled locations; empty without the pixel contrast
    GclStepReport report;
};

// Cosines of the rows of a K x K Gram matrix, in GclStepReport::label_cosines order.
inline std::vector<double> gram_cosines(const double* gram, index_t K) {
    std::vector<double> out;
    for (index_t i = 0; i < K; ++i)
        for (index_t j = i + 1; j < K; ++j) {
            const double d = std::sqrt(gram[i * K + i] * gram[j * K + j]);
            out.push_back(d > 0 ? gram[i * K + j] / d : 0.0);
        }
    return out;
}

// The seam of data-parallel pre-training (dist/data_parallel_gcl.hpp implements it over a
// communicator). With an exchange set, the objective's batch is this rank's share of a global
// batch: the exchange assembles the global embeddings and meta labels, so the losses, GradFilter's
// ranking and every anchor's positives and negatives are the global batch's; the objective keeps
// the gradient rows of its own samples, and the exchange combines the ranks' parameter gradients.
// "Rows" are the leading dimension of a [2b, ...] tensor: the rank's b images' first views, then
// their second views; the global [2B, ...] is in the single process's order.
// Checkpoints go through its CheckpointRanks side (training_state.hpp).
template <class T>
class GclBatchExchange : public CheckpointRanks {
public:
    // This rank's rows [2b, ...] -> the global batch's [2B, ...].
    virtual Tensor<T> gather(ConstView<T> local) = 0;
    // This rank's meta labels [K, 2b] -> the global batch's [K, 2B].
    virtual Tensor<std::int64_t> gather_meta(ConstView<std::int64_t> local) = 0;
    // This rank's rows of a global [2B, ...] (and columns of global meta labels [K, 2B]).
    virtual Tensor<T> local_rows(ConstView<T> global) = 0;
    virtual Tensor<std::int64_t> local_meta(ConstView<std::int64_t> global) = 0;
    // Parameter level: this rank's per-label gradients [K, P] (its samples' share of the global
    // losses' gradients) -> GradMitigator on their sum over the ranks, written to out [P].
    virtual surgery::MitigateReport mitigate(ConstView<T> local_grads, TensorView<T> out,
                                             const surgery::MitigateOptions& options, std::uint64_t step) = 0;
    // The other levels: this rank's share of the combined gradient -> the sum over the ranks.
    virtual void sum_gradient(TensorView<T> grad) = 0;
    // The global index of each of this rank's [2b rows_per_sample] rows (rows_per_sample rows per
    // sample, e.g. its h w locations): what seeds their per-sample projection orders.
    virtual std::vector<std::uint64_t> global_rows(index_t rows_per_sample) = 0;
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
        Stage st = stage(images, meta, step);
        GclStepReport& report = st.report;
        const index_t K = meta.dim(0), N = images.dim(0);
        const PerLabel& img = st.img;
        PerLabel& pix = st.pix;
        const bool pixel = options_.pixel_contrast;

        switch (options_.mitigation) {
            case Mitigation::parameters: {
                // K backward passes after one forward, label m's gradient into row m of G [K, P].
                grads_.resize(Shape{K, arena_->size()});
                for (index_t m = 0; m < K; ++m) {
                    arena_->begin_backward(grads_.view(), m, gcl::WriteMode::overwrite);
                    const ConstView<T> d_pixel = pixel ? dense_pixel_grad(pix.grads.cview().select(0, m), st)
                                                       : ConstView<T>();
                    model_->backward(img.grads.cview().select(0, m), d_pixel);
                }
                arena_->end_backward();
                const surgery::MitigateReport r =
                    exchange_ ? exchange_->mitigate(grads_.cview(), arena_->flat_grads(), options_.mitigate, step)
                              : surgery::mitigate<T>(grads_.cview(), arena_->flat_grads(), options_.mitigate, step);
                report.conflicting_pairs = r.conflicting_pairs;
                report.projections = r.projections;
                if (!r.gram.empty()) report.label_cosines = gram_cosines(r.gram.data(), K);
                break;
            }
            case Mitigation::representation: {
                encoder_output_mitigation(st, step);
                break;
            }
            case Mitigation::embeddings: {
                Tensor<T> d_image(Shape{N, img.grads.dim(2)});
                const std::vector<std::uint64_t> image_ids = global_rows(1);
                const surgery::MitigateReport ri = surgery::mitigate_batched<T>(
                    img.grads.cview().transpose(0, 1), d_image.view(), options_.mitigate, step, ids(image_ids));
                report.conflicting_pairs = ri.conflicting_pairs;
                report.projections = ri.projections;
                ConstView<T> d_pixel;
                if (pixel) {
                    Tensor<T> combined(Shape{pix.grads.dim(1), pix.grads.dim(2)});
                    // The pixels' projection orders come from another step stream than the images'.
                    const std::vector<std::uint64_t> pixel_ids = global_rows(st.locations.dim(0));
                    const surgery::MitigateReport rp =
                        surgery::mitigate_batched<T>(pix.grads.cview().transpose(0, 1), combined.view(),
                                                     options_.mitigate, mix64(step + 1), ids(pixel_ids));
                    report.conflicting_pairs += rp.conflicting_pairs;
                    report.projections += rp.projections;
                    d_pixel = dense_pixel_grad(combined.cview(), st);
                }
                arena_->begin_backward(gcl::WriteMode::overwrite);
                model_->backward(d_image.cview(), d_pixel);
                arena_->end_backward();
                break;
            }
            case Mitigation::none: {
                const ConstView<T> d_pixel = pixel ? dense_pixel_grad(pix.grad_sum.cview(), st) : ConstView<T>();
                arena_->begin_backward(gcl::WriteMode::overwrite);
                model_->backward(img.grad_sum.cview(), d_pixel);
                arena_->end_backward();
                break;
            }
        }
        if (exchange_ && options_.mitigation != Mitigation::parameters) exchange_->sum_gradient(arena_->flat_grads());
        ops::check_finite("train::GclObjective", arena_->flat_grads(), "the combined gradient");
        return report;
    }

    // Forward, losses and filter only: the per-label gradients with respect to the embeddings that
    // gradient() would mitigate. Writes no parameter gradient.
    EmbeddingGradients<T> embedding_gradients(ConstView<T> images, ConstView<std::int64_t> meta, std::uint64_t step) {
        Stage st = stage(images, meta, step);
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
    // Per-label losses and gradients with respect to one set of embeddings [rows, D].
    struct PerLabel {
        std::vector<double> losses;  // [K]
        Tensor<T> grads;             // [K, rows, D]
        Tensor<T> grad_sum;          // [rows, D]
    };

    // What one forward pass and the losses leave for the mitigation.
    struct Stage {
        PerLabel img, pix;
        Tensor<index_t> locations;  // [S] sampled locations (flat indices into h x w)
        Shape pixel_shape;          // [N, C, h, w] of the pixel embeddings
        Shape feature_shape;        // [N, C, h, w] of the encoder output F
        GclStepReport report;
    };

    Stage stage(ConstView<T> images, ConstView<std::int64_t> meta, std::uint64_t step) {
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
        const auto out = model_->forward(images);
        Stage st;
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
        st.img = image_contrast(image, labels, st.report);
        if (options_.pixel_contrast) {
            st.pixel_shape = out.pixel.shape();  // [N, C, h, w]
            Rng rng(options_.seed, mix64(step));
            st.locations = loss::sample_locations(st.pixel_shape[2], st.pixel_shape[3],
                                                  std::min(options_.pixel_samples, st.pixel_shape[2] * st.pixel_shape[3]),
                                                  rng);
            st.pix = pixel_contrast(pixel, labels, st.locations, st.img, st.report);
            if (options_.pixel_weight != 1.0)
                ops::scale(st.pix.grads.cview(), static_cast<T>(options_.pixel_weight), st.pix.grads.view());
        }
        if (exchange_) keep_own_rows(st);
        return st;
    }

    // Data parallel: the global losses' gradient rows of this rank's samples (image rows, and the
    // S sampled pixels of each of its images).
    void keep_own_rows(Stage& st) {
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

    // Data parallel: the global index of each of this rank's rows (empty for one process, where
    // the local index is the global one), as the seeds of the per-sample projection orders.
    std::vector<std::uint64_t> global_rows(index_t rows_per_sample) const {
        return exchange_ ? exchange_->global_rows(rows_per_sample) : std::vector<std::uint64_t>();
    }
    static const std::uint64_t* ids(const std::vector<std::uint64_t>& v) { return v.empty() ? nullptr : v.data(); }

    // GradFilter's anchor weights: |d(sum_m L_img^m)/dF| at each sampled location [A], from the
    // image head's backward pass on this process's rows (gathered over the ranks with an exchange).
    Tensor<T> image_guidance(const PerLabel& img, const Tensor<index_t>& locations) {
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

    // Mitigation at the encoder output F [N, C, h, w]: K passes through the heads alone give
    // dL_m/dF per label (the heads' parameter gradients add up over the labels in the arena); the
    // image branch's are mitigated per sample (vectors of C h w), the pixel branch's per location
    // (vectors of C, where the pixel loss reaches F), and one encoder pass takes their sum.
    void encoder_output_mitigation(Stage& st, std::uint64_t step) {
        const index_t K = static_cast<index_t>(st.img.losses.size());
        const Shape& fs = st.feature_shape;
        const index_t N = fs[0], C = fs[1], HW = fs[2] * fs[3], F = C * HW;
        const bool pixel = options_.pixel_contrast;
        feature_image_.resize(Shape{N, K, F});
        if (pixel) feature_pixel_.resize(Shape{N * HW, K, C});
        per_label_feature_.resize(Shape{K, N * F});  // the whole dL_m/dF, for the cosines

        arena_->begin_backward(gcl::WriteMode::overwrite);
        for (index_t m = 0; m < K; ++m) {
            const ConstView<T> d_pixel = pixel ? dense_pixel_grad(st.pix.grads.cview().select(0, m), st) : ConstView<T>();
            const auto g = model_->heads_backward(st.img.grads.cview().select(0, m), d_pixel);
            T* whole = per_label_feature_.data() + m * N * F;
            for (index_t n = 0; n < N; ++n) {
                const T* gi = g.features_from_image.data() + n * F;
                std::copy(gi, gi + F, feature_image_.data() + (n * K + m) * F);
            }
            std::copy(g.features.data(), g.features.data() + N * F, whole);
            if (pixel)
                for (index_t n = 0; n < N; ++n)
                    for (index_t c = 0; c < C; ++c) {
                        const T* gp = g.features_from_pixel.data() + (n * C + c) * HW;
                        for (index_t p = 0; p < HW; ++p) feature_pixel_((n * HW + p), m, c) = gp[p];
                    }
        }
        GclStepReport& report = st.report;
        combined_image_.resize(Shape{N, F});
        const std::vector<std::uint64_t> image_ids = global_rows(1);
        const surgery::MitigateReport ri = surgery::mitigate_batched<T>(feature_image_.cview(), combined_image_.view(),
                                                                        options_.mitigate, step, ids(image_ids));
        report.conflicting_pairs = ri.conflicting_pairs;
        report.projections = ri.projections;
        d_features_.resize(fs);
        std::copy(combined_image_.data(), combined_image_.data() + N * F, d_features_.data());
        if (pixel) {
            combined_pixel_.resize(Shape{N * HW, C});
            // The locations' projection orders come from another step stream than the images'.
            const std::vector<std::uint64_t> location_ids = global_rows(HW);
            const surgery::MitigateReport rp = surgery::mitigate_batched<T>(
                feature_pixel_.cview(), combined_pixel_.view(), options_.mitigate, mix64(step + 1), ids(location_ids));
            report.conflicting_pairs += rp.conflicting_pairs;
            report.projections += rp.projections;
            for (index_t n = 0; n < N; ++n)
                for (index_t c = 0; c < C; ++c)
                    for (index_t p = 0; p < HW; ++p) d_features_(n, c, p / fs[3], p % fs[3]) += combined_pixel_(n * HW + p, c);
        }
        model_->encoder_backward(d_features_.cview());
        arena_->end_backward();

        std::vector<double> gram(static_cast<std::size_t>(K * K));
        for (index_t i = 0; i < K; ++i)
            for (index_t j = i; j < K; ++j) {
                double q = 0;
                const T* a = per_label_feature_.data() + i * N * F;
                const T* b = per_label_feature_.data() + j * N * F;
                for (index_t e = 0; e < N * F; ++e) q += static_cast<double>(a[e]) * static_cast<double>(b[e]);
                gram[static_cast<std::size_t>(i * K + j)] = gram[static_cast<std::size_t>(j * K + i)] = q;
            }
        report.label_cosines = gram_cosines(gram.data(), K);
    }

    index_t part_size(index_t width, index_t K, const char* what) const {
        if (options_.label_space == LabelSpace::shared) return width;
        check(width % K == 0, "train::GclObjective", "per-label spaces need the ", what, " width (", width,
              ") to be a multiple of the number of meta labels (", K, ")");
        return width / K;
    }

    // A contiguous copy of channels [first, first + count) of [rows, width] or [N, width, h, w].
    static Tensor<T> columns(ConstView<T> x, index_t first, index_t count) {
        return Tensor<T>::copy_of(x.narrow(1, first, count));
    }

    PerLabel image_contrast(ConstView<T> z, ConstView<std::int64_t> meta, GclStepReport& report) {
        const index_t K = meta.dim(0), N = z.dim(0), D = z.dim(1);
        const Tensor<std::int64_t> labels = Tensor<std::int64_t>::copy_of(meta);
        PerLabel r;
        if (options_.label_space == LabelSpace::shared) {
            loss::ContrastResult<T> c =
                loss::supcon<T>(z, labels.cview(), {.temperature = options_.temperature, .normalize = false});
            for (index_t m = 0; m < K; ++m) r.losses.push_back(static_cast<double>(c.losses(m)));
            report.image_anchors_without_positives = c.anchors_without_positives;
            r.grads = std::move(c.grads);
            r.grad_sum = std::move(c.grad_sum);
        } else {
            const index_t d = part_size(D, K, "image embedding");
            const std::vector<double>& taus = options_.image_temperatures;
            check(taus.empty() || static_cast<index_t>(taus.size()) == K, "train::GclObjective", "image_temperatures has ",
                  taus.size(), " values for ", K, " meta labels");
            r.grads = Tensor<T>(Shape{K, N, D});
            r.grad_sum = Tensor<T>(Shape{N, D});
            Tensor<T> unit(Shape{N, d}), grad(Shape{N, d});
            for (index_t m = 0; m < K; ++m) {
                const Tensor<T> part = columns(z, m * d, d);
                ops::l2_normalize_forward(part.cview(), unit.view(), 1);
                const Tensor<std::int64_t> row = Tensor<std::int64_t>::copy_of(labels.cview().narrow(0, m, 1));
                const loss::ContrastResult<T> c =
                    loss::supcon<T>(unit.cview(), row.cview(),
                                    {.temperature = taus.empty() ? options_.temperature : taus[static_cast<std::size_t>(m)],
                                     .normalize = false});
                ops::l2_normalize_backward(c.grads.cview().select(0, 0), part.cview(), grad.view(), 1);
                r.losses.push_back(static_cast<double>(c.losses(0)));
                report.image_anchors_without_positives.push_back(c.anchors_without_positives[0]);
                for (index_t n = 0; n < N; ++n)
                    for (index_t j = 0; j < d; ++j) {
                        r.grads(m, n, m * d + j) = grad(n, j);
                        r.grad_sum(n, m * d + j) = grad(n, j);
                    }
            }
        }
        report.image_losses = r.losses;
        for (double l : r.losses) report.total += l;
        return r;
    }

    PerLabel pixel_contrast(ConstView<T> features, ConstView<std::int64_t> meta, const Tensor<index_t>& locations,
                            const PerLabel& img, GclStepReport& report) {
        const index_t K = meta.dim(0), N = features.dim(0), C = features.dim(1), B = N / 2;
        const index_t S = locations.dim(0), A = N * S;
        std::vector<Tensor<index_t>> values;
        for (index_t m = 0; m < K; ++m) {
            values.emplace_back(Shape{B});
            for (index_t i = 0; i < B; ++i) values[m](i) = meta(m, i);
        }
        // Anchor weights from the image branch: |d(sum_m L_img^m)/dF| at each sampled location.
        Tensor<T> guidance;
        if (options_.filter != PixelFilter::none && options_.image_guidance)
            guidance = image_guidance(img, locations);

        PerLabel r;
        r.grads = Tensor<T>(Shape{K, A, C});
        r.grad_sum = Tensor<T>(Shape{A, C});
        const bool shared = options_.label_space == LabelSpace::shared;
        const index_t c = part_size(C, K, "pixel embedding");
        // One contrast for all labels in a shared space, one per label (on its channels) otherwise.
        for (index_t group = 0; group < (shared ? 1 : K); ++group) {
            loss::PositivePairs pairs(B);
            for (index_t m = (shared ? 0 : group); m < (shared ? K : group + 1); ++m) pairs.add_labels(values[m].cview());
            // A label's own channels, re-normalised at every location.
            Tensor<T> part, unit;
            if (!shared) {
                part = columns(features, group * c, c);
                unit.resize(part.shape());
                ops::l2_normalize_forward(part.cview(), unit.view(), 1);
            }
            const loss::ContrastResult<T> result = loss::pixel_contrast<T>(
                shared ? features : unit.cview(), locations.cview(), pairs,
                {.temperature = options_.temperature, .normalize = false,
                 .keep_pair_grads = options_.filter != PixelFilter::none});
            Tensor<T> grads;  // [labels in this group, A, c]
            if (options_.filter != PixelFilter::none) {
                const Tensor<std::uint8_t> mask = filter_mask(result, guidance, report);
                const Tensor<T> masked = loss::masked_pair_grads(result, mask.cview());
                grads = loss::contrast_backward<T>(result, masked.cview());
            } else {
                grads = result.grads;
            }
            if (!shared) {  // through the re-normalisation, pixel by pixel
                const Tensor<T> raw = loss::gather_pixels<T>(part.cview(), locations.cview());
                ops::l2_normalize_backward(grads.cview().select(0, 0), raw.cview(), grads.view().select(0, 0), 1);
            }
            for (index_t k = 0; k < grads.dim(0); ++k) {
                const index_t m = shared ? k : group;
                r.losses.push_back(static_cast<double>(result.losses(k)));
                const index_t offset = shared ? 0 : group * c;
                for (index_t a = 0; a < A; ++a)
                    for (index_t j = 0; j < grads.dim(2); ++j) {
                        r.grads(m, a, offset + j) = grads(k, a, j);
                        r.grad_sum(a, offset + j) += grads(k, a, j);
                    }
            }
        }
        report.pixel_losses = r.losses;
        for (double l : r.losses) report.total += options_.pixel_weight * l;
        return r;
    }

    // The A x A mask of the pixel pairs GradFilter keeps for one contrast.
    Tensor<std::uint8_t> filter_mask(const loss::ContrastResult<T>& pix, const Tensor<T>& guidance, GclStepReport& report) {
        const Tensor<T> magnitudes = loss::pair_grad_magnitudes(pix);  // |sum_m dL_m/ds|, A x A
        const index_t A = magnitudes.dim(0);
        const ConstView<T> anchor_weights = guidance.empty() ? ConstView<T>() : guidance.cview();
        report.candidate_pairs += A * A;
        if (options_.filter == PixelFilter::pairs) {
            surgery::FilterResult kept = surgery::filter_pairs<T>(magnitudes.cview(), options_.filter_options, anchor_weights);
            report.kept_pairs += kept.indices.dim(0);
            return std::move(kept.mask);
        }
        // Anchors: each scored by the summed magnitude of its pair gradients; GradFilter ranks the
        // A x 1 scores globally (times the guidance weights) and keeps the top anchor_ratio.
        Tensor<T> scores(Shape{A, 1});
        for (index_t i = 0; i < A; ++i) {
            double sum = 0;
            for (index_t a = 0; a < A; ++a) sum += static_cast<double>(magnitudes(i, a));
            scores(i, 0) = static_cast<T>(sum);
        }
        const surgery::FilterResult kept = surgery::filter_pairs<T>(
            scores.cview(), {.rule = surgery::FilterRule::top_ratio_global, .ratio = options_.anchor_ratio},
            anchor_weights);
        Tensor<std::uint8_t> mask(Shape{A, A});
        for (index_t i = 0; i < A; ++i)
            if (kept.mask(i, 0)) std::fill(mask.data() + i * A, mask.data() + (i + 1) * A, std::uint8_t{1});
        report.kept_pairs += kept.indices.dim(0) * A;
        return mask;
    }

    // Gradients of the A = N S sampled pixels [A, C] scattered into a zeroed [N, C, h, w] map.
    ConstView<T> dense_pixel_grad(ConstView<T> sampled, const Stage& st) {
        dense_.resize(st.pixel_shape);
        ops::fill(dense_.view(), T(0));
        loss::scatter_pixel_grads<T>(sampled, st.locations.cview(), dense_.view());
        return dense_.cview();
    }

    nn::PretrainModel<T>* model_;
    nn::ParameterArena<T, cpu>* arena_;
    GclObjectiveOptions options_;
    GclBatchExchange<T>* exchange_ = nullptr;
    Tensor<T> grads_;  // K x P per-label parameter gradients
    Tensor<T> dense_;
    // Encoder-output mitigation: per-label dL/dF by sample [N, K, C h w] and by location [N h w, K, C],
    // the whole per-label dL/dF [K, N C h w], the combined rows and dL/dF for the encoder pass.
    Tensor<T> feature_image_, feature_pixel_, per_label_feature_, combined_image_, combined_pixel_, d_features_;
};

}  // namespace gcl::train
