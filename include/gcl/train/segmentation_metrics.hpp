#pragma once
// Overlap metrics of label maps: per-class Dice and the confusion counts behind it.
#include <cstdint>
#include <type_traits>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::train {

// Voxel counts of one class: true positives, false positives, false negatives.
struct ClassCounts {
    std::int64_t true_positive = 0;
    std::int64_t false_positive = 0;
    std::int64_t false_negative = 0;
};

// Counts per class 0..num_classes-1 of two label maps of the same shape (any rank, contiguous).
// A label outside [0, num_classes) is an error, in either map.
template <class L>
std::vector<ClassCounts> class_counts(ConstView<L> prediction, ConstView<L> target, int num_classes) {
    static_assert(std::is_integral_v<L>, "label maps hold integers");
    check_same_shape("class_counts", prediction.shape(), target.shape(), "prediction", "target");
    check(prediction.is_contiguous() && target.is_contiguous(), "class_counts", "label maps must be contiguous");
    check(num_classes >= 1, "class_counts", "num_classes must be at least 1, got ", num_classes);
    std::vector<ClassCounts> counts(static_cast<std::size_t>(num_classes));
    const L* p = prediction.data();
    const L* t = target.data();
    for (index_t i = 0; i < prediction.numel(); ++i) {
        const auto a = static_cast<std::int64_t>(p[i]), b = static_cast<std::int64_t>(t[i]);
        if (a < 0 || a >= num_classes || b < 0 || b >= num_classes)
            fail("class_counts", "label ", (a < 0 || a >= num_classes ? a : b), " at element ", i,
                 " is outside [0, ", num_classes, ")");
        if (a == b) {
            ++counts[a].true_positive;
        } else {
            ++counts[a].false_positive;
            ++counts[b].false_negative;
        }
    }
    return counts;
}

// Dice = 2 TP / (2 TP + FP + FN); `empty_value` when the class is absent from both maps.
inline double dice(const ClassCounts& c, double empty_value = 1.0) {
    const std::int64_t denominator = 2 * c.true_positive + c.false_positive + c.false_negative;
    return denominator == 0 ? empty_value : 2.0 * static_cast<double>(c.true_positive) / static_cast<double>(denominator);
}

// Dice of every class 0..num_classes-1 (index 0 is usually background).
template <class L>
std::vector<double> dice_per_class(ConstView<L> prediction, ConstView<L> target, int num_classes,
                                   double empty_value = 1.0) {
    const std::vector<ClassCounts> counts = class_counts(prediction, target, num_classes);
    std::vector<double> result;
    for (const ClassCounts& c : counts) result.push_back(dice(c, empty_value));
    return result;
}

// Mean Dice over the foreground classes 1..num_classes-1.
inline double mean_foreground_dice(const std::vector<double>& per_class) {
    check(per_class.size() >= 2, "mean_foreground_dice", "needs background plus at least one class, got ",
          per_class.size(), " classes");
    double sum = 0;
    for (std::size_t c = 1; c < per_class.size(); ++c) sum += per_class[c];
    return sum / static_cast<double>(per_class.size() - 1);
}

}  // namespace gcl::train
