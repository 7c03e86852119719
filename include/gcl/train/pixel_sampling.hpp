#pragma once
// Pixel sampling for the pixel-wise contrast: which S locations of an h x w feature map a step
// contrasts (the same for every image of the batch, drawn from the objective's seed and the
// step, so a run repeats exactly), and the sampled pixels' gradients scattered back to a dense
// map for the backward pass.
//
//   train::PixelSampling sampling{.samples = 16, .seed = 0};
//   Tensor<index_t> loc = sampling.locations(h, w, step);           // [min(S, h w)]
//   train::DensePixelGradient<float> dense;
//   ConstView<float> d = dense(sampled_grads, loc.cview(), Shape{N, C, h, w});
#include <algorithm>
#include <cstdint>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/loss/pixel_contrast.hpp"
#include "gcl/ops/elementwise.hpp"

namespace gcl::train {

struct PixelSampling {
    index_t samples = 16;     // S locations per feature map (fewer when the map is smaller)
    std::uint64_t seed = 0;

    Tensor<index_t> locations(index_t height, index_t width, std::uint64_t step) const {
        Rng rng(seed, mix64(step));
        return loss::sample_locations(height, width, std::min(samples, height * width), rng);
    }
};

// Gradients of the A = N S sampled pixels [A, C] scattered into a zeroed [N, C, h, w] map. The
// map is kept between calls (no allocation in a steady state); the returned view is valid until
// the next call.
template <class T>
class DensePixelGradient {
public:
    ConstView<T> operator()(ConstView<T> sampled, ConstView<index_t> locations, const Shape& pixel_shape) {
        dense_.resize(pixel_shape);
        ops::fill(dense_.view(), T(0));
        loss::scatter_pixel_grads<T>(sampled, locations, dense_.view());
        return dense_.cview();
    }

private:
    Tensor<T> dense_;
};

}  // namespace gcl::train
