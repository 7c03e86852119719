#pragma once
// What one GCL forward pass and its losses leave for the mitigation: the per-label gradients on
// the image and the pixel embeddings, the sampled locations and the shapes to scatter them back.
#include <utility>
#include <vector>

#include "gcl/core/shape.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/train/gcl_options.hpp"

namespace gcl::train {

// Per-label losses and gradients with respect to one set of embeddings [rows, D].
template <class T>
struct PerLabelGradients {
    std::vector<double> losses;  // [K]
    Tensor<T> grads;             // [K, rows, D]
    Tensor<T> grad_sum;          // [rows, D]
};

template <class T>
struct GclStage {
    PerLabelGradients<T> img, pix;
    Tensor<index_t> locations;  // [S] sampled locations (flat indices into h x w)
    Shape pixel_shape;          // [N, C, h, w] of the pixel embeddings
    Shape feature_shape;        // [N, C, h, w] of the encoder output F
    GclStepReport report;
    index_t labels() const { return static_cast<index_t>(img.losses.size()); }
};

}  // namespace gcl::train
