#pragma once
// The choices of GCL's pre-training objective (train::GclObjective) and what one gradient
// computation reports. Every part of the objective (label spaces, pixel sampling, the pixel
// filter policy, the mitigation levels) reads its options from here.
#include <cmath>
#include <cstdint>
#include <vector>

#include "gcl/core/shape.hpp"
#include "gcl/surgery/filter_options.hpp"
#include "gcl/surgery/mitigate_options.hpp"

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

}  // namespace gcl::train
