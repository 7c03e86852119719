#pragma once
// Batches as the network sees them: images stacked to (B, 1, H, W), labels to (B, H, W), meta
// labels to a K x B matrix, plain or augmented; and the two-view batch of contrastive
// pre-training, where every slice appears twice under independent augmentations.
//
// Sample i of a batch draws its augmentation from rng.split(i) (two-view: rng.split(i).split(v)
// for view v), so batches are the same with any number of threads.
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/augment.hpp"
#include "gcl/data/meta.hpp"
#include "gcl/data/slice.hpp"

namespace gcl::data {

struct Batch {
    Tensor<float> images;          // (B, 1, H, W)
    Tensor<std::int32_t> labels;   // (B, H, W) class indices; rank 0 unless every slice is labelled
    Tensor<std::int64_t> meta;     // (K, B), rows in MetaSpec order
    std::vector<index_t> indices;  // position of each sample in the data set
};

// Two augmented views of B slices. Rows i and B + i of `images` are the two views of slice
// indices[i]; column i and B + i of `meta` both hold its meta labels, so the other view of an
// image is a positive under every meta label.
struct TwoViewBatch {
    Tensor<float> images;        // (2B, 1, H, W)
    Tensor<std::int64_t> meta;   // (K, 2B)
    std::vector<index_t> indices;
};

namespace detail {

inline void check_batch_indices(const std::vector<Slice>& data, std::span<const index_t> indices, const char* op) {
    check(!indices.empty(), op, "empty batch");
    for (index_t i : indices)
        check(i >= 0 && i < static_cast<index_t>(data.size()), op, "index ", i, " out of range for a data set of ",
              data.size(), " slices");
}

inline std::vector<SliceMeta> batch_meta(const std::vector<Slice>& data, std::span<const index_t> indices) {
    std::vector<SliceMeta> m;
    for (index_t i : indices) m.push_back(data[static_cast<std::size_t>(i)].meta);
    return m;
}

// Checks an augmented batch request; returns the output height and width: the options', or the
// first slice's size, in which case every slice must have it.
inline std::array<index_t, 2> augmented_size(const std::vector<Slice>& data, std::span<const index_t> indices,
                                             const AugmentOptions& options, const char* op) {
    check_batch_indices(data, indices, op);
    check_augment_options(options);
    const Slice& first = data[static_cast<std::size_t>(indices[0])];
    for (index_t i : indices) {
        const Slice& sl = data[static_cast<std::size_t>(i)];
        check(sl.image.rank() == 2 && sl.image.numel() > 0, op, "slice ", i, " has image shape ", sl.image.shape());
        check((options.height > 0 && options.width > 0) || sl.image.shape() == first.image.shape(), op, "slice ", i,
              " has shape ", sl.image.shape(), ", slice ", indices[0], " has ", first.image.shape(),
              "; set AugmentOptions height and width to batch slices of different sizes");
    }
    return {options.height > 0 ? options.height : first.image.dim(0),
            options.width > 0 ? options.width : first.image.dim(1)};
}

}  // namespace detail

// Stacks slices as they are; they must all have the same size.
inline Batch make_batch(const std::vector<Slice>& data, std::span<const index_t> indices, const MetaSpec& spec = {}) {
    constexpr const char* op = "make_batch";
    detail::check_batch_indices(data, indices, op);
    const Shape& s = data[static_cast<std::size_t>(indices[0])].image.shape();
    check(s.rank() == 2, op, "slice images must be (H, W), got ", s);
    const auto b = static_cast<index_t>(indices.size());
    const index_t h = s[0], w = s[1];
    bool labelled = true;
    for (index_t i : indices) {
        const Slice& sl = data[static_cast<std::size_t>(i)];
        check(sl.image.shape() == s, op, "slice ", i, " has shape ", sl.image.shape(), ", slice ", indices[0], " has ", s);
        labelled = labelled && sl.labelled();
    }
    Batch batch;
    batch.indices.assign(indices.begin(), indices.end());
    batch.images = Tensor<float>(Shape{b, 1, h, w});
    if (labelled) batch.labels = Tensor<std::int32_t>(Shape{b, h, w});
    for (index_t k = 0; k < b; ++k) {
        const Slice& sl = data[static_cast<std::size_t>(indices[static_cast<std::size_t>(k)])];
        std::copy(sl.image.data(), sl.image.data() + h * w, batch.images.data() + k * h * w);
        if (labelled) std::copy(sl.label.data(), sl.label.data() + h * w, batch.labels.data() + k * h * w);
    }
    const std::vector<SliceMeta> m = detail::batch_meta(data, indices);
    batch.meta = encode_meta(m, spec);
    return batch;
}

// Stacks augmented slices (labels warped with their images). Output size: options.height /
// width, or the first slice's size; slices may differ in size when the options fix it.
inline Batch augmented_batch(const std::vector<Slice>& data, std::span<const index_t> indices,
                             const AugmentOptions& options, const MetaSpec& spec, const Rng& rng) {
    const std::array<index_t, 2> size = detail::augmented_size(data, indices, options, "augmented_batch");
    const index_t h = size[0], w = size[1];
    const auto b = static_cast<index_t>(indices.size());
    bool labelled = true;
    for (index_t i : indices) labelled = labelled && data[static_cast<std::size_t>(i)].labelled();
    Batch batch;
    batch.indices.assign(indices.begin(), indices.end());
    batch.images = Tensor<float>(Shape{b, 1, h, w});
    if (labelled) batch.labels = Tensor<std::int32_t>(Shape{b, h, w});
    AugmentOptions o = options;
    o.height = h;
    o.width = w;
#pragma omp parallel for schedule(dynamic)
    for (index_t k = 0; k < b; ++k) {
        const Slice& sl = data[static_cast<std::size_t>(indices[static_cast<std::size_t>(k)])];
        Rng sample = rng.split(static_cast<std::uint64_t>(k));
        const Augmented a = augment(sl.image.cview(), labelled ? sl.label.cview() : ConstView<std::uint8_t>(), o, sample);
        std::copy(a.image.data(), a.image.data() + h * w, batch.images.data() + k * h * w);
        if (labelled) std::copy(a.label.data(), a.label.data() + h * w, batch.labels.data() + k * h * w);
    }
    const std::vector<SliceMeta> m = detail::batch_meta(data, indices);
    batch.meta = encode_meta(m, spec);
    return batch;
}

// How the two views of a slice relate geometrically.
enum class ViewGeometry {
    independent,  // each view draws its own crop, flip, rotation and scale
    shared,       // both views share one geometric draw and differ in intensity only, so a pixel
                  // location means the same anatomy in both (what a pixel-wise contrast needs)
};

// The contrastive pre-training batch: two augmentations of every slice.
inline TwoViewBatch two_view_batch(const std::vector<Slice>& data, std::span<const index_t> indices,
                                   const AugmentOptions& options, const MetaSpec& spec, const Rng& rng,
                                   ViewGeometry geometry = ViewGeometry::independent) {
    const std::array<index_t, 2> size = detail::augmented_size(data, indices, options, "two_view_batch");
    const index_t h = size[0], w = size[1];
    const auto b = static_cast<index_t>(indices.size());
    TwoViewBatch batch;
    batch.indices.assign(indices.begin(), indices.end());
    batch.images = Tensor<float>(Shape{2 * b, 1, h, w});
    AugmentOptions o = options;
    o.height = h;
    o.width = w;
#pragma omp parallel for schedule(dynamic)
    for (index_t t = 0; t < 2 * b; ++t) {
        const index_t k = t % b, view = t / b;
        const Slice& sl = data[static_cast<std::size_t>(indices[static_cast<std::size_t>(k)])];
        Rng sample = rng.split(static_cast<std::uint64_t>(k)).split(static_cast<std::uint64_t>(view));
        AugmentDraw d = draw_augment(o, sl.image.dim(0), sl.image.dim(1), h, w, sample);
        if (geometry == ViewGeometry::shared && view == 1) {
            // The geometry of view 0, the intensity changes of this view's own draw.
            Rng first_view = rng.split(static_cast<std::uint64_t>(k)).split(0);
            const AugmentDraw g = draw_augment(o, sl.image.dim(0), sl.image.dim(1), h, w, first_view);
            d.flip_h = g.flip_h;
            d.flip_v = g.flip_v;
            d.angle = g.angle;
            d.scale = g.scale;
            d.offset_r = g.offset_r;
            d.offset_c = g.offset_c;
        }
        const Augmented a = apply_augment(d, sl.image.cview(), ConstView<std::uint8_t>(), h, w, o.fill, sample);
        std::copy(a.image.data(), a.image.data() + h * w, batch.images.data() + t * h * w);
    }
    const std::vector<SliceMeta> once = detail::batch_meta(data, indices);
    std::vector<SliceMeta> m = once;
    m.insert(m.end(), once.begin(), once.end());
    batch.meta = encode_meta(m, spec);
    return batch;
}

}  // namespace gcl::data
