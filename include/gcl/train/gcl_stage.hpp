#pragma once
// What one GCL forward pass and its losses leave for the mitigation: the per-label gradients on
// the image and the pixel embeddings, the sampled locations and the shapes to scatter them back.
// Every tensor lives on the device D of the model.
#include <utility>
#include <vector>

#include "gcl/core/shape.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/train/gcl_options.hpp"

namespace gcl::train {

// Per-label losses and gradients with respect to one set of embeddings [rows, width].
template <class T, class D = cpu>
struct PerLabelGradients {
    std::vector<double> losses;  // [K], on the host
    Tensor<T, D> grads;          // [K, rows, width]
    Tensor<T, D> grad_sum;       // [rows, width]
};

template <class T, class D = cpu>
struct GclStage {
    PerLabelGradients<T, D> img, pix;
    Tensor<index_t, D> locations;  // [S] sampled locations (flat indices into h x w)
    Shape pixel_shape;             // [N, C, h, w] of the pixel embeddings
    Shape feature_shape;           // [N, C, h, w] of the encoder output F
    GclStepReport report;
    index_t labels() const { return static_cast<index_t>(img.losses.size()); }
};

}  // namespace gcl::train
