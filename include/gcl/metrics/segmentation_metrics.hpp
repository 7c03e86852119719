#pragma once
// Overlap metrics of label maps: per-class Dice and the confusion counts behind it.
//
// A class absent from both maps has no Dice (0 / 0). Two conventions are in use and they move a
// mean by several points on small structures, so gcl names them and every report says which:
//   DiceConvention::nnunet        NaN, left out of every mean (nnU-Net's evaluator); the default
//   DiceConvention::empty_is_one  1.0, counted as a perfect score (gcl's earlier default)
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::metrics {

enum class DiceConvention {
    nnunet,        // absent from both maps: NaN, skipped in means
    empty_is_one,  // absent from both maps: 1.0
};

inline std::string_view name(DiceConvention c) {
    return c == DiceConvention::nnunet ? "nnunet" : "empty_is_one";
}

inline std::string_view describe(DiceConvention c) {
    return c == DiceConvention::nnunet ? "a class absent from both maps is NaN and left out of the means (nnU-Net)"
                                       : "a class absent from both maps counts as Dice 1";
}

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
            fail("class_counts", "label ", (a < 0 || a >= num_classes ? a : b), " at element ", i, " of the ",
                 (a < 0 || a >= num_classes ? "prediction" : "target"), " is outside [0, ", num_classes, ")");
        if (a == b) {
            ++counts[a].true_positive;
        } else {
            ++counts[a].false_positive;
            ++counts[b].false_negative;
        }
    }
    return counts;
}

// Dice = 2 TP / (2 TP + FP + FN); for a class absent from both maps, what `convention` says.
inline double dice(const ClassCounts& c, DiceConvention convention = DiceConvention::nnunet) {
    const std::int64_t denominator = 2 * c.true_positive + c.false_positive + c.false_negative;
    if (denominator == 0)
        return convention == DiceConvention::nnunet ? std::numeric_limits<double>::quiet_NaN() : 1.0;
    return 2.0 * static_cast<double>(c.true_positive) / static_cast<double>(denominator);
}

// Dice of every class 0..num_classes-1 (index 0 is usually background).
template <class L>
std::vector<double> dice_per_class(ConstView<L> prediction, ConstView<L> target, int num_classes,
                                   DiceConvention convention = DiceConvention::nnunet) {
    const std::vector<ClassCounts> counts = class_counts(prediction, target, num_classes);
    std::vector<double> result;
    for (const ClassCounts& c : counts) result.push_back(dice(c, convention));
    return result;
}

// Mean of the values that are not NaN; NaN when there are none.
inline double mean_skipping_nan(const double* values, std::size_t n) {
    double sum = 0;
    std::size_t defined = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isnan(values[i])) {
            sum += values[i];
            ++defined;
        }
    return defined ? sum / static_cast<double>(defined) : std::numeric_limits<double>::quiet_NaN();
}

// Mean Dice over the foreground classes 1..num_classes-1, NaN entries (classes without a Dice)
// left out; NaN when no foreground class has one.
inline double mean_foreground_dice(const std::vector<double>& per_class) {
    check(per_class.size() >= 2, "mean_foreground_dice", "needs background plus at least one class, got ",
          per_class.size(), " classes");
    return mean_skipping_nan(per_class.data() + 1, per_class.size() - 1);
}

}  // namespace gcl::metrics
