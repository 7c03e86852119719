#pragma once
// The per-pixel rules of the segmentation losses (loss/cross_entropy.hpp, loss/dice.hpp), shared
// by the CPU loops (backend/cpu/segmentation.hpp) and the CUDA kernels: prob is the softmax over
// the classes in double, [N, C, S] (S pixels per image), so class c of pixel s of image n is
// prob[(n C + c) S + s].
#include <cmath>

#include "gcl/core/config.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::backend::detail {

// Whether t names a class in [0, C) or is the ignore index.
GCL_HOST_DEVICE inline bool valid_target(index_t t, index_t C, index_t ignore_index) {
    return t == ignore_index || (t >= 0 && t < C);
}

// Cross-entropy at pixel s of image n with target y of weight w: writes the unnormalised
// gradient w (p_c - [c = y]) for every class into grad (shaped like prob) and returns
// w log p_y (p_y floored at 1e-300), which the loss subtracts.
template <class T>
GCL_HOST_DEVICE inline double cross_entropy_pixel(const double* prob, index_t C, index_t S, index_t n, index_t s,
                                                  index_t y, double w, T* grad) {
    const double* p = prob + n * C * S + s;
    T* g = grad + n * C * S + s;
    for (index_t c = 0; c < C; ++c) g[c * S] = static_cast<T>(w * (p[c * S] - (c == y ? 1.0 : 0.0)));
    const double py = p[y * S];
    return w * log(py < 1e-300 ? 1e-300 : py);
}

// dL/dp_c of the soft Dice loss at a pixel of target y in a group whose per-class derivatives
// d dice / d p are pos (where t = 1) and neg (t = 0): -w_c / norm times the one for t_c.
GCL_HOST_DEVICE inline double dice_probability_grad(index_t c, index_t y, const double* class_weight, double norm,
                                                    const double* pos, const double* neg) {
    return -class_weight[c] / norm * (c == y ? pos[c] : neg[c]);
}

// The soft Dice gradient at pixel s of image n (target y, group's derivatives pos / neg [C]),
// through the softmax: grad_c = p_c (dL/dp_c - sum_k p_k dL/dp_k).
template <class T>
GCL_HOST_DEVICE inline void dice_pixel_grad(const double* prob, index_t C, index_t S, index_t n, index_t s, index_t y,
                                            const double* class_weight, double norm, const double* pos,
                                            const double* neg, T* grad) {
    const double* p = prob + n * C * S + s;
    double pdp = 0;
    for (index_t c = 0; c < C; ++c) pdp += p[c * S] * dice_probability_grad(c, y, class_weight, norm, pos, neg);
    T* g = grad + n * C * S + s;
    for (index_t c = 0; c < C; ++c)
        g[c * S] = static_cast<T>(p[c * S] * (dice_probability_grad(c, y, class_weight, norm, pos, neg) - pdp));
}

}  // namespace gcl::backend::detail
