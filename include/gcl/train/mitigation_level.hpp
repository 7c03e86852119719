#pragma once
// The mitigation levels: where GradMitigator resolves the conflicts between the K per-label
// gradients of one GCL batch, and the backward pass that leaves the combined gradient in the
// arena's own gradient buffer.
//
//   ParameterLevel        g_m = dL_m/dtheta: K backward passes, one K x P mitigation
//   EncoderOutputLevel    g_m = dL_m/dF at the encoder output: K passes through the heads,
//                         per-sample and per-location mitigation, one encoder pass
//   EmbeddingLevel        g_m = dL_m/dz per embedding, mitigated per sample, one backward pass
//   SumLevel              the plain sum of the per-label gradients, one backward pass
//
// Each level is a small class with run(context, stage, step) and its own workspaces (kept
// between steps); MitigationLevels picks one by train::Mitigation. A new level is a new class
// and one case in MitigationLevels::run.
//
// Every level runs on the model's device D: the gradients are rearranged with ops::copy on
// strided views, the mitigators are GradMitigator<T, D> / BatchedGradMitigator<T, D> (their K x K
// weight solves run on the host inside them).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/mitigate_batched.hpp"
#include "gcl/train/gcl_batch_exchange.hpp"
#include "gcl/train/gcl_options.hpp"
#include "gcl/train/gcl_stage.hpp"
#include "gcl/train/gradient_rows.hpp"
#include "gcl/train/pixel_sampling.hpp"

namespace gcl::train {

// What every level works with. Not owning.
template <class T, class D = cpu>
struct MitigationContext {
    nn::PretrainModel<T, D>& model;
    nn::ParameterArena<T, D>& arena;
    GclBatchExchange<T, D>* exchange;  // nullptr: one process
    const surgery::MitigateOptions& options;
    DensePixelGradient<T, D>& dense;
    bool pixel;  // the pixel contrast is on

    // The dense [N, C, h, w] gradient of sampled pixel gradients [A, C].
    ConstView<T, D> dense_pixel(ConstView<T, D> sampled, const GclStage<T, D>& st)
    {
        return dense(sampled, st.locations.cview(), st.pixel_shape);
    }
    // Label m's dense pixel gradient, and the sum over the labels; empty without the pixel contrast.
    ConstView<T, D> pixel_label_grad(const GclStage<T, D>& st, index_t m)
    {
        return pixel ? dense_pixel(st.pix.grads.cview().select(0, m), st) : ConstView<T, D>();
    }
    ConstView<T, D> pixel_sum_grad(const GclStage<T, D>& st)
    {
        return pixel ? dense_pixel(st.pix.grad_sum.cview(), st) : ConstView<T, D>();
    }
    // Data parallel: the global index of each of this rank's rows (empty for one process, where
    // the local index is the global one), as the seeds of the per-sample projection orders.
    std::vector<std::uint64_t> global_rows(index_t rows_per_sample) const {
        return exchange ? exchange->global_rows(rows_per_sample) : std::vector<std::uint64_t>();
    }
    static const std::uint64_t* ids(const std::vector<std::uint64_t>& v) { return v.empty() ? nullptr : v.data(); }
};

template <class T, class D = cpu>
class ParameterLevel {
public:
    // K backward passes after one forward, label m's gradient into row m of G [K, P].
    void run(MitigationContext<T, D>& ctx, GclStage<T, D>& st, std::uint64_t step)
    {
        const index_t K = st.labels();
        grads_.resize(Shape{K, ctx.arena.size()});
        for (index_t m = 0; m < K; ++m) {
            ctx.arena.begin_backward(grads_.view(), m, gcl::WriteMode::overwrite);
            ctx.model.backward(st.img.grads.cview().select(0, m), ctx.pixel_label_grad(st, m));
        }
        ctx.arena.end_backward();
        const surgery::MitigateReport r =
            ctx.exchange ? ctx.exchange->mitigate(grads_.cview(), ctx.arena.flat_grads(), ctx.options, step)
                         : surgery::GradMitigator<T, D>(ctx.options)({grads_.cview(), ctx.arena.flat_grads(), step});
        st.report.conflicting_pairs = r.conflicting_pairs;
        st.report.projections = r.projections;
        if (!r.gram.empty()) st.report.label_cosines = gram_cosines(r.gram.data(), K);
    }

private:
    Tensor<T, D> grads_;  // K x P per-label parameter gradients
};

// Mitigation at the encoder output F [N, C, h, w]: K passes through the heads alone give
// dL_m/dF per label (the heads' parameter gradients add up over the labels in the arena); the
// image branch's are mitigated per sample (vectors of C h w), the pixel branch's per location
// (vectors of C, where the pixel loss reaches F), and one encoder pass takes their sum.
template <class T, class D = cpu>
class EncoderOutputLevel {
public:
    void run(MitigationContext<T, D>& ctx, GclStage<T, D>& st, std::uint64_t step)
    {
        const index_t K = st.labels();
        const Shape& fs = st.feature_shape;
        const index_t N = fs[0], C = fs[1], HW = fs[2] * fs[3], F = C * HW;
        const bool pixel = ctx.pixel;
        feature_image_.resize(Shape{N, K, F});
        if (pixel) feature_pixel_.resize(Shape{N * HW, K, C});
        per_label_feature_.resize(Shape{K, N * F});  // the whole dL_m/dF, for the cosines

        ctx.arena.begin_backward(gcl::WriteMode::overwrite);
        for (index_t m = 0; m < K; ++m) {
            const ConstView<T, D> d_pixel = ctx.pixel_label_grad(st, m);
            const auto g = ctx.model.heads_backward(st.img.grads.cview().select(0, m), d_pixel);
            label_rows_by_sample<T, D>(g.features_from_image, m, feature_image_.view());
            ops::copy(g.features.reshape(Shape{N * F}), per_label_feature_.view().select(0, m));
            if (pixel) label_rows_by_location<T, D>(g.features_from_pixel, m, feature_pixel_.view());
        }
        GclStepReport& report = st.report;
        combined_image_.resize(Shape{N, F});
        const std::vector<std::uint64_t> image_ids = ctx.global_rows(1);
        const surgery::MitigateReport ri = surgery::BatchedGradMitigator<T, D>(ctx.options)(
            {feature_image_.cview(), combined_image_.view(), step, ctx.ids(image_ids)});
        report.conflicting_pairs = ri.conflicting_pairs;
        report.projections = ri.projections;
        d_features_.resize(fs);
        ops::copy(combined_image_.cview().reshape(fs), d_features_.view());
        if (pixel) {
            combined_pixel_.resize(Shape{N * HW, C});
            // The locations' projection orders come from another step stream than the images'.
            const std::vector<std::uint64_t> location_ids = ctx.global_rows(HW);
            const surgery::MitigateReport rp = surgery::BatchedGradMitigator<T, D>(ctx.options)(
                {feature_pixel_.cview(), combined_pixel_.view(), mix64(step + 1), ctx.ids(location_ids)});
            report.conflicting_pairs += rp.conflicting_pairs;
            report.projections += rp.projections;
            pixel_features_.resize(fs);
            add_location_rows<T, D>(combined_pixel_.cview(), d_features_.view(), pixel_features_.view());
        }
        ctx.model.encoder_backward(d_features_.cview());
        ctx.arena.end_backward();
        report.label_cosines = gram_cosines(row_gram<T, D>(per_label_feature_.cview()).data(), K);
    }

private:
    // Per-label dL/dF by sample [N, K, C h w] and by location [N h w, K, C], the whole per-label
    // dL/dF [K, N C h w], the combined rows, the pixel rows as a map, and dL/dF for the encoder pass.
    Tensor<T, D> feature_image_, feature_pixel_, per_label_feature_, combined_image_, combined_pixel_, pixel_features_,
        d_features_;
};

template <class T, class D = cpu>
class EmbeddingLevel {
public:
    void run(MitigationContext<T, D>& ctx, GclStage<T, D>& st, std::uint64_t step)
    {
        const PerLabelGradients<T, D>& img = st.img;
        const PerLabelGradients<T, D>& pix = st.pix;
        const index_t N = img.grads.dim(1);
        Tensor<T, D> d_image(Shape{N, img.grads.dim(2)});
        const std::vector<std::uint64_t> image_ids = ctx.global_rows(1);
        const surgery::MitigateReport ri = surgery::BatchedGradMitigator<T, D>(ctx.options)(
            {img.grads.cview().transpose(0, 1), d_image.view(), step, ctx.ids(image_ids)});
        st.report.conflicting_pairs = ri.conflicting_pairs;
        st.report.projections = ri.projections;
        ConstView<T, D> d_pixel;
        if (ctx.pixel) {
            Tensor<T, D> combined(Shape{pix.grads.dim(1), pix.grads.dim(2)});
            // The pixels' projection orders come from another step stream than the images'.
            const std::vector<std::uint64_t> pixel_ids = ctx.global_rows(st.locations.dim(0));
            const surgery::MitigateReport rp = surgery::BatchedGradMitigator<T, D>(ctx.options)(
                {pix.grads.cview().transpose(0, 1), combined.view(), mix64(step + 1), ctx.ids(pixel_ids)});
            st.report.conflicting_pairs += rp.conflicting_pairs;
            st.report.projections += rp.projections;
            d_pixel = ctx.dense_pixel(combined.cview(), st);
        }
        ctx.arena.begin_backward(gcl::WriteMode::overwrite);
        ctx.model.backward(d_image.cview(), d_pixel);
        ctx.arena.end_backward();
    }
};

template <class T, class D = cpu>
class SumLevel {
public:
    void run(MitigationContext<T, D>& ctx, GclStage<T, D>& st, std::uint64_t)
    {
        const ConstView<T, D> d_pixel = ctx.pixel_sum_grad(st);
        ctx.arena.begin_backward(gcl::WriteMode::overwrite);
        ctx.model.backward(st.img.grad_sum.cview(), d_pixel);
        ctx.arena.end_backward();
    }
};

template <class T, class D = cpu>
class MitigationLevels {
public:
    void run(Mitigation level, MitigationContext<T, D>& ctx, GclStage<T, D>& st, std::uint64_t step)
    {
        switch (level) {
            case Mitigation::parameters: return parameters_.run(ctx, st, step);
            case Mitigation::representation: return encoder_output_.run(ctx, st, step);
            case Mitigation::embeddings: return embeddings_.run(ctx, st, step);
            case Mitigation::none: return sum_.run(ctx, st, step);
        }
    }

private:
    ParameterLevel<T, D> parameters_;
    EncoderOutputLevel<T, D> encoder_output_;
    EmbeddingLevel<T, D> embeddings_;
    SumLevel<T, D> sum_;
};

}  // namespace gcl::train
