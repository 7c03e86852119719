#pragma once
// Pixel sampling for the pixel-wise contrast: which S locations of an h x w feature map a step
// contrasts (the same for every image of the batch, drawn from the objective's seed and the
// step, so a run repeats exactly), and the sampled pixels' gradients scattered back to a dense
// map for the backward pass.
//
//   train::PixelSampling sampling{.samples = 16, .seed = 0};
//   Tensor<index_t> loc = sampling.locations(h, w, step);           // [min(S, h w)]
//   Tensor<index_t, D> on_device = sampling.locations<D>(h, w, step);
//   train::DensePixelGradient<float> dense;
//   ConstView<float> d = dense(sampled_grads, loc.cview(), Shape{N, C, h, w});
#include <algorithm>
#include <cstdint>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/loss/pixel_contrast.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/transfer.hpp"

namespace gcl::train {

struct PixelSampling {
    index_t samples = 16;     // S locations per feature map (fewer when the map is smaller)
    std::uint64_t seed = 0;

    // The locations of a step on device D. They are drawn on the host (a partial Fisher-Yates
    // shuffle on the seeded generator: sequential, and S values only), then moved to D.
    template <class D = cpu>
    Tensor<index_t, D> locations(index_t height, index_t width, std::uint64_t step) const {
        Rng rng(seed, mix64(step));
        return ops::host_to_device<D>(loss::sample_locations(height, width, std::min(samples, height * width), rng));
    }
};

// Gradients of the A = N S sampled pixels [A, C] scattered into a zeroed [N, C, h, w] map. The
// map is kept between calls (no allocation in a steady state); the returned view is valid until
// the next call.
template <class T, class D = cpu>
class DensePixelGradient {
public:
    // The scatter is a backend::Contrast<D> pass.
    ConstView<T, D> operator()(ConstView<T, D> sampled, ConstView<index_t, D> locations, const Shape& pixel_shape)
    {
        dense_.resize(pixel_shape);
        ops::fill(dense_.view(), T(0));
        loss::scatter_pixel_grads<T, D>(sampled, locations, dense_.view());
        return dense_.cview();
    }

private:
    Tensor<T, D> dense_;
};

}  // namespace gcl::train
