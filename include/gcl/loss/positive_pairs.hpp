#pragma once
// Which embeddings are positives of which, under each of K meta labels.
//
// Embeddings belong to images (two augmented views per image in the usual layout). Under meta
// label m, embedding a is a positive of anchor i (a != i) when
//   - i and a are views of the same image (always), or
//   - their images share m's value (a label), fall in the same bin (a binned continuous label),
//     satisfy |s_i - s_a| < delta (a thresholded continuous label), or are marked in a user mask
//     (image x image, rows are anchors, asymmetric allowed).
// A negative label value means "unknown": that image matches no other under m.
//
// The losses take the positives as data (Positives, contract.hpp): positives() gives them for
// the embeddings, pixel_positives(S) for S sampled locations per embedding; keys when every
// label is discrete (labels, bins), masks as soon as one is a threshold or a user mask.
//
//   gcl::loss::PositivePairs pairs(B);             // N = 2B embeddings: views 0 then views 1
//   pairs.add_labels(patient_ids);                 // [B] int64
//   pairs.add_bins(slice_positions, 4);            // [B] in [0, 1] -> 4 partitions
//   pairs.add_threshold(slice_positions, 0.1);     // |s_i - s_j| < 0.1
//
// PositivePairs is a host description of the batch, like the losses' options; the losses that
// take it (supcon, pixel_contrast) run on any device and move its positives there (positives_on).
#include <cmath>
#include <cstdint>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/loss/contract.hpp"
#include "gcl/ops/transfer.hpp"

namespace gcl::loss {

// Positives built on the host (PositivePairs, supcon_label_positives) on device D: moved when D
// is the host, copied once otherwise.
template <class D>
Positives<D> positives_on(Positives<cpu> host) {
    return {.keys = ops::host_to_device<D>(std::move(host.keys)), .masks = ops::host_to_device<D>(std::move(host.masks))};
}

// Bin of each value in [0, 1] among n_bins equal partitions (1.0 falls in the last one).
template <class T>
Tensor<index_t> bin_values(ConstView<T> values, index_t n_bins) {
    check_rank("bin_values", values.shape(), 1, "values");
    check(n_bins >= 1, "bin_values", "n_bins must be at least 1, got ", n_bins);
    Tensor<index_t> bins(values.shape());
    for (index_t i = 0; i < values.dim(0); ++i) {
        const T v = values(i);
        check(std::isfinite(v) && v >= 0 && v <= 1, "bin_values", "value ", i, " is ", v, "; values must lie in [0, 1]");
        bins(i) = std::min<index_t>(static_cast<index_t>(std::floor(static_cast<double>(v) * n_bins)), n_bins - 1);
    }
    return bins;
}

// Image-level mask [B x B]: 1 where |v_i - v_j| < delta.
template <class T>
Tensor<std::uint8_t> threshold_pair_mask(ConstView<T> values, double delta) {
    check_rank("threshold_pair_mask", values.shape(), 1, "values");
    check(delta > 0 && std::isfinite(delta), "threshold_pair_mask", "delta must be positive, got ", delta);
    const index_t B = values.dim(0);
    for (index_t i = 0; i < B; ++i)
        check(std::isfinite(values(i)), "threshold_pair_mask", "value ", i, " is ", values(i));
    Tensor<std::uint8_t> mask(Shape{B, B});
    for (index_t i = 0; i < B; ++i)
        for (index_t j = 0; j < B; ++j)
            mask(i, j) = std::abs(static_cast<double>(values(i)) - static_cast<double>(values(j))) < delta;
    return mask;
}

class PositivePairs {
public:
    // N = 2B embeddings in the SupCon layout: embedding i is a view of image i mod B.
    explicit PositivePairs(index_t images) : images_(images) {
        check(images >= 1, "PositivePairs", "the batch must hold at least one image, got ", images);
        image_of_.resize(static_cast<std::size_t>(2 * images));
        for (index_t i = 0; i < 2 * images; ++i) image_of_[i] = i % images;
    }
    // Any layout: image_of[i] in [0, images) is the image embedding i is a view of.
    PositivePairs(ConstView<index_t> image_of, index_t images) : images_(images) {
        check_rank("PositivePairs", image_of.shape(), 1, "image_of");
        check(images >= 1 && image_of.dim(0) >= 1, "PositivePairs", "the batch must not be empty");
        for (index_t i = 0; i < image_of.dim(0); ++i) {
            check(image_of(i) >= 0 && image_of(i) < images, "PositivePairs", "image_of[", i, "] = ", image_of(i),
                  " is outside [0, ", images, ")");
            image_of_.push_back(image_of(i));
        }
    }

    index_t images() const { return images_; }
    index_t embeddings() const { return static_cast<index_t>(image_of_.size()); }
    index_t labels() const { return static_cast<index_t>(masks_.size()); }
    index_t image_of(index_t i) const { return image_of_[i]; }

    // A discrete meta label: one value per image (negative: unknown).
    PositivePairs& add_labels(ConstView<index_t> values) {
        check(values.rank() == 1 && values.dim(0) == images_, "PositivePairs::add_labels", "values must have shape [",
              images_, "], got ", values.shape());
        Tensor<std::uint8_t> m(Shape{images_, images_});
        for (index_t i = 0; i < images_; ++i)
            for (index_t j = 0; j < images_; ++j) m(i, j) = values(i) >= 0 && values(i) == values(j);
        masks_.push_back(std::move(m));
        // The image's key under this label: its value, or a negative key of its own when unknown.
        std::vector<index_t> keys(static_cast<std::size_t>(images_));
        for (index_t i = 0; i < images_; ++i) keys[static_cast<std::size_t>(i)] = values(i) >= 0 ? values(i) : -1 - i;
        image_keys_.push_back(std::move(keys));
        return *this;
    }
    // A continuous meta label in [0, 1] split into n_bins partitions.
    template <class T>
    PositivePairs& add_bins(ConstView<T> values, index_t n_bins) {
        const Tensor<index_t> bins = bin_values<T>(values, n_bins);
        return add_labels(bins.cview());
    }
    // A continuous meta label thresholded: positives when |v_i - v_j| < delta.
    template <class T>
    PositivePairs& add_threshold(ConstView<T> values, double delta) {
        check(values.rank() == 1 && values.dim(0) == images_, "PositivePairs::add_threshold",
              "values must have shape [", images_, "], got ", values.shape());
        masks_.push_back(threshold_pair_mask<T>(values, delta));
        image_keys_.emplace_back();
        return *this;
    }
    // A user mask, image x image (row: anchor's image), nonzero = positive; asymmetric allowed.
    PositivePairs& add_mask(ConstView<std::uint8_t> mask) {
        check(mask.rank() == 2 && mask.dim(0) == images_ && mask.dim(1) == images_, "PositivePairs::add_mask",
              "mask must have shape [", images_, ", ", images_, "], got ", mask.shape());
        Tensor<std::uint8_t> m(Shape{images_, images_});
        for (index_t i = 0; i < images_; ++i)
            for (index_t j = 0; j < images_; ++j) m(i, j) = mask(i, j) != 0;
        masks_.push_back(std::move(m));
        image_keys_.emplace_back();
        return *this;
    }

    // Whether the images of anchor i and embedding a are positives under label m (same image included).
    bool images_match(index_t m, index_t image_i, index_t image_a) const {
        return image_i == image_a || masks_[m](image_i, image_a) != 0;
    }
    // Whether embedding a is a positive of anchor i under label m.
    bool positive(index_t m, index_t i, index_t a) const {
        return i != a && images_match(m, image_of_[i], image_of_[a]);
    }
    // The embedding-level masks, K x N x N (for inspection and tests).
    Tensor<std::uint8_t> embedding_masks() const {
        const index_t K = labels(), N = embeddings();
        Tensor<std::uint8_t> out(Shape{K, N, N});
        for (index_t m = 0; m < K; ++m)
            for (index_t i = 0; i < N; ++i)
                for (index_t a = 0; a < N; ++a) out(m, i, a) = positive(m, i, a);
        return out;
    }

    // The positives of the N embeddings as data for the losses.
    Positives<cpu> positives() const { return pixel_positives(1); }

    // The positives of N x S sampled pixels, row n * S + s for location s of embedding n: pixel
    // (n, s) and (n', s') are positives when s = s', n != n' and their images match.
    Positives<cpu> pixel_positives(index_t samples) const {
        check(samples >= 1, "PositivePairs::pixel_positives", "at least one location is needed, got ", samples);
        check(labels() >= 1, "PositivePairs::positives", "no meta label was added to the positive pairs");
        const index_t K = labels(), N = embeddings(), A = N * samples;
        bool all_keys = true;
        for (const auto& k : image_keys_) all_keys = all_keys && !k.empty();
        Positives<cpu> p;
        if (all_keys) {
            // Keys are unique per (image key, location): non-negative keys k S + s, negative ones
            // (an unknown label: the image's own) -(image + 1) S + s, disjoint from each other.
            p.keys = Tensor<index_t>(Shape{K, A});
            for (index_t m = 0; m < K; ++m)
                for (index_t n = 0; n < N; ++n) {
                    const index_t key = image_keys_[static_cast<std::size_t>(m)][static_cast<std::size_t>(image_of_[n])];
                    for (index_t s = 0; s < samples; ++s) p.keys(m, n * samples + s) = key * samples + s;
                }
            return p;
        }
        p.masks = Tensor<std::uint8_t>(Shape{K, A, A});
        for (index_t m = 0; m < K; ++m)
            for (index_t i = 0; i < A; ++i)
                for (index_t a = 0; a < A; ++a) {
                    const index_t ni = i / samples, na = a / samples;
                    p.masks(m, i, a) = i % samples == a % samples && ni != na &&
                                       images_match(m, image_of_[ni], image_of_[na]);
                }
        return p;
    }

private:
    index_t images_;
    std::vector<index_t> image_of_;
    std::vector<Tensor<std::uint8_t>> masks_;
    std::vector<std::vector<index_t>> image_keys_;  // per label: the images' keys, empty for a mask label
};

}  // namespace gcl::loss
