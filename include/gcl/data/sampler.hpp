#pragma once
// A batch sampler that guarantees positives: in every batch, every image shares its value with
// at least one other image under each chosen meta label, so no anchor of a supervised
// contrastive loss is left without a positive.
//
// How: a batch is P patients times m images ("per patient"). Call a *cell* the values of the
// chosen meta labels other than patient (e.g. position partition and phase). One patient (the
// anchor) fixes a plan of m cells, taken round-robin over its cells in random order; the other
// patients must have images in the same cells, and each patient contributes one image per
// planned cell. Then every image shares its patient with m - 1 others and its cell with the same
// cell of the other P - 1 patients. When B is not a multiple of m, the last patient takes the
// first B mod m cells of the plan (never a single image when patient is chosen).
//
// Batch `step` is a pure function of (seed, step): Rng(seed).split(step) drives it.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <utility>
#include <span>
#include <string>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/random.hpp"
#include "gcl/data/meta.hpp"
#include "gcl/data/slice.hpp"

namespace gcl::data {

struct SamplerOptions {
    index_t batch_size = 32;
    // Meta labels under which every image must have a positive.
    std::vector<MetaLabel> positives{MetaLabel::patient, MetaLabel::position, MetaLabel::phase};
    int position_partitions = 4;
    index_t per_patient = 0;  // images per patient; 0 chooses from the batch size and the cells
    std::uint64_t seed = 0;
};

class BatchSampler {
public:
    BatchSampler(std::span<const SliceMeta> meta, SamplerOptions options) : options_(std::move(options)) {
        constexpr const char* op = "BatchSampler";
        const index_t b = options_.batch_size;
        check(b >= 4, op, "batch size must be at least 4 (two patients of two images), got ", b);
        check(options_.position_partitions >= 1, op, "position_partitions must be at least 1, got ",
              options_.position_partitions);
        check(static_cast<index_t>(meta.size()) >= b, op, "the data set has ", meta.size(),
              " images, fewer than the batch size ", b);
        patient_chosen_ = std::find(options_.positives.begin(), options_.positives.end(), MetaLabel::patient) !=
                          options_.positives.end();
        for (MetaLabel m : options_.positives)
            if (m != MetaLabel::patient) cell_labels_.push_back(m);

        std::map<std::int64_t, std::size_t> by_id;
        for (std::size_t i = 0; i < meta.size(); ++i) {
            auto [it, inserted] = by_id.try_emplace(meta[i].patient, patients_.size());
            if (inserted) patients_.push_back(Patient{meta[i].patient, {}});
            Patient& p = patients_[it->second];
            p.cells[cell_of(meta[i])].push_back(static_cast<index_t>(i));
        }
        check(patients_.size() >= 2, op, "the data set has ", patients_.size(),
              " patient(s); a batch needs at least two to hold negatives");

        std::vector<index_t> cell_counts;
        for (const Patient& p : patients_) cell_counts.push_back(static_cast<index_t>(p.cells.size()));
        std::nth_element(cell_counts.begin(), cell_counts.begin() + static_cast<std::ptrdiff_t>(cell_counts.size() / 2),
                         cell_counts.end());
        const index_t typical_cells = cell_counts[cell_counts.size() / 2];
        per_patient_ = options_.per_patient > 0 ? options_.per_patient : choose_per_patient(b, typical_cells);
        const index_t m = per_patient_, rest = b % m;
        check(m >= (patient_chosen_ ? 2 : 1) && m <= b / 2, op, "per_patient must be in [", patient_chosen_ ? 2 : 1,
              ", ", b / 2, "] for batch size ", b, ", got ", m);
        check(!(patient_chosen_ && rest == 1), op, "batch size ", b, " with ", m,
              " images per patient leaves one patient with a single image, which has no positive under patient");
        patients_per_batch_ = b / m + (rest > 0 ? 1 : 0);
        check(patients_per_batch_ <= static_cast<index_t>(patients_.size()), op, "a batch needs ", patients_per_batch_,
              " patients, the data set has ", patients_.size());
        // Fail now, with the reason, rather than at the first batch.
        (void)batch(0);
    }

    // The data-set indices of batch `step` (in random order).
    std::vector<index_t> batch(std::uint64_t step) const {
        Rng rng = Rng(options_.seed).split(step);
        const std::vector<index_t> order = random_permutation(static_cast<index_t>(patients_.size()), rng);
        const index_t m = per_patient_, b = options_.batch_size;
        for (index_t a = 0; a < static_cast<index_t>(order.size()); ++a) {
            const Patient& anchor = patients_[static_cast<std::size_t>(order[static_cast<std::size_t>(a)])];
            const std::vector<Key> plan = make_plan(anchor, m, rng);
            if (plan.empty()) continue;
            std::map<Key, index_t> need;
            for (const Key& k : plan) ++need[k];
            std::vector<const Patient*> chosen{&anchor};
            for (index_t j = 0; j < static_cast<index_t>(order.size()) && static_cast<index_t>(chosen.size()) < patients_per_batch_; ++j) {
                if (j == a) continue;
                const Patient& p = patients_[static_cast<std::size_t>(order[static_cast<std::size_t>(j)])];
                if (holds(p, need)) chosen.push_back(&p);
            }
            if (static_cast<index_t>(chosen.size()) < patients_per_batch_) continue;

            std::vector<index_t> out;
            for (std::size_t pi = 0; pi < chosen.size(); ++pi) {
                const index_t take = std::min<index_t>(m, b - static_cast<index_t>(out.size()));
                std::map<Key, index_t> want;
                for (index_t t = 0; t < take; ++t) ++want[plan[static_cast<std::size_t>(t)]];
                for (const auto& [key, count] : want) {
                    const std::vector<index_t>& pool = chosen[pi]->cells.at(key);
                    const std::vector<index_t> perm = random_permutation(static_cast<index_t>(pool.size()), rng);
                    for (index_t t = 0; t < count; ++t) out.push_back(pool[static_cast<std::size_t>(perm[static_cast<std::size_t>(t)])]);
                }
            }
            const std::vector<index_t> shuffle = random_permutation(static_cast<index_t>(out.size()), rng);
            std::vector<index_t> shuffled;
            for (index_t s : shuffle) shuffled.push_back(out[static_cast<std::size_t>(s)]);
            return shuffled;
        }
        fail("BatchSampler", "cannot build a batch of ", b, " (", patients_per_batch_, " patients x ", m,
             " images) in which every image has a positive under ", labels_text(), ": no ", patients_per_batch_,
             " patients share ", m, " images in the same ", cell_labels_.empty() ? "stack" : "cells (" + cells_text() + ")",
             ". Use a smaller batch, fewer images per patient, fewer position partitions or fewer meta labels");
    }

    index_t per_patient() const { return per_patient_; }
    index_t patients_per_batch() const { return patients_per_batch_; }
    const SamplerOptions& options() const { return options_; }

private:
    using Key = std::vector<std::int64_t>;
    struct Patient {
        std::int64_t id;
        std::map<Key, std::vector<index_t>> cells;
    };

    Key cell_of(const SliceMeta& m) const {
        Key k;
        for (MetaLabel l : cell_labels_) k.push_back(meta_value(m, l, options_.position_partitions));
        return k;
    }

    // The number of images per patient closest to max(cells, 4) that puts at least three patients
    // in a batch (or as many as there are), needs no more patients than there are, and leaves the
    // last patient at least half as many images as the others, preferring an exact split; never
    // one image per patient, nor a single image left for patient positives. With two patients,
    // patient is a binary label within the batch: its loss can only fall from log(2B - 1) to
    // log(B - 1), and on the phantom it stayed above log(2B - 1) - 0.5 (docs/training.md).
    index_t choose_per_patient(index_t b, index_t cells) const {
        const index_t target = std::max<index_t>(cells, 4);
        const auto patients = static_cast<index_t>(patients_.size());
        const index_t min_patients = std::min<index_t>(3, patients);
        index_t best = 0;
        std::pair<index_t, bool> best_score{b, true};
        for (index_t m = 2; m <= b / 2; ++m) {
            if (patient_chosen_ && b % m == 1) continue;
            const index_t needed = (b + m - 1) / m;
            if (needed > patients || needed < min_patients) continue;
            if (b % m != 0 && 2 * (b % m) < m) continue;
            const std::pair<index_t, bool> score{std::abs(m - target), b % m != 0};
            if (best == 0 || score < best_score) {
                best = m;
                best_score = score;
            }
        }
        return best > 0 ? best : std::min<index_t>(target, b / 2);
    }

    // m cells, round-robin over the anchor's cells in random order, each used at most as often as
    // the anchor has images in it; empty when the anchor has fewer than m images.
    std::vector<Key> make_plan(const Patient& anchor, index_t m, Rng& rng) const {
        std::vector<Key> keys;
        for (const auto& [key, images] : anchor.cells) keys.push_back(key);
        const std::vector<index_t> perm = random_permutation(static_cast<index_t>(keys.size()), rng);
        std::vector<Key> plan;
        for (index_t round = 0; static_cast<index_t>(plan.size()) < m; ++round) {
            bool any = false;
            for (index_t i : perm) {
                const Key& k = keys[static_cast<std::size_t>(i)];
                if (static_cast<index_t>(anchor.cells.at(k).size()) > round && static_cast<index_t>(plan.size()) < m) {
                    plan.push_back(k);
                    any = true;
                }
            }
            if (!any) return {};
        }
        return plan;
    }

    static bool holds(const Patient& p, const std::map<Key, index_t>& need) {
        for (const auto& [key, count] : need) {
            const auto it = p.cells.find(key);
            if (it == p.cells.end() || static_cast<index_t>(it->second.size()) < count) return false;
        }
        return true;
    }

    std::string labels_text() const {
        std::string s;
        for (MetaLabel m : options_.positives) s += (s.empty() ? "" : ", ") + std::string(meta_label_name(m));
        return s.empty() ? "no meta label" : s;
    }
    std::string cells_text() const {
        std::string s;
        for (MetaLabel m : cell_labels_) s += (s.empty() ? "" : ", ") + std::string(meta_label_name(m));
        return s;
    }

    SamplerOptions options_;
    bool patient_chosen_ = false;
    std::vector<MetaLabel> cell_labels_;
    std::vector<Patient> patients_;
    index_t per_patient_ = 0;
    index_t patients_per_batch_ = 0;
};

}  // namespace gcl::data
