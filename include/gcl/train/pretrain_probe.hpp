#pragma once
// train::probe_meta_labels: checks a pre-training by how well the frozen image embeddings of
// held-out slices predict each meta label (metrics::knn_probe), one probe per label.
//
// A falling loss is not enough: a collapsed embedding part (all similarities equal) is a fixed
// point of SupCon, so a label can stay at log(2B - 1) while the others learn. The probe reads
// the embedding each label's loss contrasts: its own part in per-label spaces (re-normalised),
// the whole embedding in a shared one.
//
// Splits (the images are never augmented; the model runs in evaluation mode):
//   patient:         within every patient, slices with an even index are the references and odd
//                    ones the queries; chance is about 1 / patients.
//   any other label: the first half of the patients (by id) are the references, the others the
//                    queries, so the label must be recognised across patients.
//
//   auto probe = train::probe_meta_labels<float>(model, held_out, spec, LabelSpace::per_label);
//   probe.accuracy[m], probe.chance[m]
//
// The model runs on its device D: each batch of slices goes there once and its embeddings come
// back to the host, where the k-NN probe (host code: a small [N, D] problem) runs.
#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/data/meta.hpp"
#include "gcl/data/slice.hpp"
#include "gcl/metrics/knn_probe.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/ops/transfer.hpp"
#include "gcl/train/gcl_options.hpp"

namespace gcl::train {

struct MetaProbeOptions {
    index_t k = 5;        // neighbours that vote
    index_t batch = 32;   // slices per forward pass
};

struct MetaProbeResult {
    std::vector<std::string> labels;  // [K] meta label names, in MetaSpec order
    std::vector<double> accuracy;     // [K]
    std::vector<double> chance;       // [K]
};

// The image embeddings [N, D] of the slices, in evaluation mode, without augmentation. Leaves
// the model in the training mode it was in. On the host whatever the model's device.
template <class T, class D>
Tensor<T> embed_images(nn::PretrainModel<T, D>& model, const std::vector<data::Slice>& slices, index_t batch = 32) {
    constexpr std::string_view op = "train::embed_images";
    check(!slices.empty(), op, "no slices to embed");
    check(batch >= 1, op, "batch must be at least 1, got ", batch);
    const Shape& s = slices.front().image.shape();
    check(s.rank() == 2, op, "slice images must be (H, W), got ", s);
    const bool was_training = model.training();
    model.set_training(false);
    const auto N = static_cast<index_t>(slices.size());
    Tensor<T> out;
    for (index_t first = 0; first < N; first += batch) {
        const index_t n = std::min(batch, N - first);
        Tensor<T> x(Shape{n, 1, s[0], s[1]});
        for (index_t i = 0; i < n; ++i) {
            const data::Slice& sl = slices[static_cast<std::size_t>(first + i)];
            check(sl.image.shape() == s, op, "slice ", first + i, " has shape ", sl.image.shape(), ", slice 0 has ", s);
            std::copy(sl.image.data(), sl.image.data() + sl.image.numel(), x.data() + i * sl.image.numel());
        }
        const Tensor<T> z = ops::device_to_host(model.forward(ops::host_to_device<D>(std::move(x)).cview()).image);
        if (out.empty()) out = Tensor<T>(Shape{N, z.dim(1)});
        std::copy(z.data(), z.data() + z.numel(), out.data() + first * z.dim(1));
    }
    model.set_training(was_training);
    return out;
}

template <class T, class Device>
MetaProbeResult probe_meta_labels(nn::PretrainModel<T, Device>& model, const std::vector<data::Slice>& slices,
                                  const data::MetaSpec& spec, LabelSpace space, const MetaProbeOptions& options = {}) {
    constexpr std::string_view op = "train::probe_meta_labels";
    check(!spec.labels.empty(), op, "no meta labels to probe");
    std::set<std::int64_t> patient_ids;
    for (const data::Slice& sl : slices) patient_ids.insert(sl.meta.patient);
    check(patient_ids.size() >= 2, op, "needs slices of at least two patients, got ", patient_ids.size());
    const std::vector<std::int64_t> ids(patient_ids.begin(), patient_ids.end());
    const std::int64_t first_query_patient = ids[ids.size() / 2];

    const Tensor<T> z = embed_images(model, slices, options.batch);
    const auto K = static_cast<index_t>(spec.labels.size());
    const index_t N = z.dim(0), D = z.dim(1);
    check(space == LabelSpace::shared || D % K == 0, op, "per-label spaces need the embedding width (", D,
          ") to be a multiple of the number of meta labels (", K, ")");
    const index_t width = space == LabelSpace::shared ? D : D / K;

    MetaProbeResult result;
    for (index_t m = 0; m < K; ++m) {
        const data::MetaLabel label = spec.labels[static_cast<std::size_t>(m)];
        std::vector<index_t> ref, qry;
        for (index_t n = 0; n < N; ++n) {
            const data::SliceMeta& meta = slices[static_cast<std::size_t>(n)].meta;
            const bool is_query = label == data::MetaLabel::patient ? meta.slice % 2 == 1
                                                                    : meta.patient >= first_query_patient;
            (is_query ? qry : ref).push_back(n);
        }
        check(!ref.empty() && !qry.empty(), op, "the split for ", data::meta_label_name(label),
              " leaves no references or no queries (", slices.size(), " slices)");
        const auto gather = [&](const std::vector<index_t>& rows, Tensor<T>& emb, Tensor<std::int64_t>& lab) {
            const auto R = static_cast<index_t>(rows.size());
            emb = Tensor<T>(Shape{R, width});
            lab = Tensor<std::int64_t>(Shape{R});
            const index_t offset = space == LabelSpace::shared ? 0 : m * width;
            for (index_t r = 0; r < R; ++r) {
                const index_t n = rows[static_cast<std::size_t>(r)];
                for (index_t j = 0; j < width; ++j) emb(r, j) = z(n, offset + j);
                lab(r) = data::meta_value(slices[static_cast<std::size_t>(n)].meta, label, spec.position_partitions);
            }
        };
        Tensor<T> ref_z, qry_z;
        Tensor<std::int64_t> ref_l, qry_l;
        gather(ref, ref_z, ref_l);
        gather(qry, qry_z, qry_l);
        const metrics::KnnProbeResult r = metrics::knn_probe<T>(
            ref_z.cview(), ref_l.cview(), qry_z.cview(), qry_l.cview(),
            {.k = std::min<index_t>(options.k, static_cast<index_t>(ref.size()))});
        result.labels.emplace_back(data::meta_label_name(label));
        result.accuracy.push_back(r.accuracy);
        result.chance.push_back(r.chance);
    }
    return result;
}

}  // namespace gcl::train
