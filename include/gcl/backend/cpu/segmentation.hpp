#pragma once
// CPU passes of the segmentation losses (loss/cross_entropy.hpp, loss/dice.hpp) around the
// per-pixel rules of backend/detail/segmentation_items.hpp. The sums run in double over the
// pixels in order (image by image), so results repeat bit for bit.
//
// prob [N, C, S] is the softmax over the classes in double, targets [N, S] the class of every
// pixel (or the ignore index); class weights and the Dice derivatives are small host arrays.
#include "gcl/backend/detail/segmentation_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct Segmentation<cpu> {
    static BadTarget first_bad_target(ConstView<index_t, cpu> targets, index_t C, index_t ignore_index) {
        for (index_t i = 0; i < targets.numel(); ++i)
            if (!detail::valid_target(targets.data()[i], C, ignore_index)) return {i, targets.data()[i]};
        return {};
    }

    // grad [N, C, S] = w_{y} (p - onehot(y)) at the pixels not ignored (the others are left as
    // they are), and the sums of the loss terms and weights.
    template <class T>
    static CrossEntropySums cross_entropy(ConstView<double, cpu> prob, ConstView<index_t, cpu> targets,
                                          const double* class_weight, index_t ignore_index, TensorView<T, cpu> grad) {
        const index_t N = prob.dim(0), C = prob.dim(1), S = prob.dim(2);
        CrossEntropySums r;
        for (index_t n = 0; n < N; ++n)
            for (index_t s = 0; s < S; ++s) {
                const index_t y = targets.data()[n * S + s];
                if (y == ignore_index) continue;
                ++r.counted;
                const double w = class_weight[y];
                r.weight += w;
                r.weighted_loss -= detail::cross_entropy_pixel(prob.data(), C, S, n, s, y, w, grad.data());
            }
        return r;
    }

    // g = g / divisor, each element in double.
    template <class T>
    static void divide(TensorView<T, cpu> g, double divisor) {
        T* x = g.data();
        for (index_t i = 0; i < g.numel(); ++i) x[i] = static_cast<T>(static_cast<double>(x[i]) / divisor);
    }

    // The soft Dice sums of images first_image.. of a batch: sums [3, G, C] (intersection,
    // sum of p, sum of t) with group first_image + n per image (per_image) or 0; they are added
    // to. Returns the pixels not ignored.
    static index_t dice_sums(ConstView<double, cpu> prob, ConstView<index_t, cpu> targets, index_t ignore_index,
                             bool per_image, index_t first_image, index_t groups, double* sums) {
        const index_t N = prob.dim(0), C = prob.dim(1), S = prob.dim(2);
        double* inter = sums;
        double* sum_p = inter + groups * C;
        double* sum_t = sum_p + groups * C;
        index_t counted = 0;
        for (index_t n = 0; n < N; ++n)
            for (index_t s = 0; s < S; ++s) {
                const index_t y = targets.data()[n * S + s];
                if (y == ignore_index) continue;
                ++counted;
                const double* p = prob.data() + n * C * S + s;
                const index_t g = per_image ? first_image + n : 0;
                for (index_t c = 0; c < C; ++c) sum_p[g * C + c] += p[c * S];
                inter[g * C + y] += p[y * S];
                sum_t[g * C + y] += 1;
            }
        return counted;
    }

    // grad [N, C, S] = the soft Dice gradient at the pixels not ignored (the others are left as
    // they are); pos / neg [G, C] are each group's d dice / d p where t = 1 / t = 0.
    template <class T>
    static void dice_grad(ConstView<double, cpu> prob, ConstView<index_t, cpu> targets, index_t ignore_index,
                          bool per_image, index_t first_image, const double* class_weight, double norm,
                          const double* pos, const double* neg, TensorView<T, cpu> grad) {
        const index_t N = prob.dim(0), C = prob.dim(1), S = prob.dim(2);
        for (index_t n = 0; n < N; ++n)
            for (index_t s = 0; s < S; ++s) {
                const index_t y = targets.data()[n * S + s];
                if (y == ignore_index) continue;
                const index_t g = per_image ? first_image + n : 0;
                detail::dice_pixel_grad(prob.data(), C, S, n, s, y, class_weight, norm, pos + g * C, neg + g * C,
                                        grad.data());
            }
    }
};

}  // namespace gcl::backend
