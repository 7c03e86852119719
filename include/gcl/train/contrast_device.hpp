#pragma once
// The devices on which GCL's whole objective runs today. Every part of the objective is a
// template over the device; the parts that compute, filter or scatter the contrasts (the label
// spaces, the pixel filter policy, the dense pixel gradient, the mitigation levels that read it
// and GclObjective::gradient) are constrained on this concept. The contrast families
// (backend::Contrast, Softmax, Normalize) exist for cuda as well; what keeps cuda out is the
// anchor guidance, loss::location_magnitudes, still a host loop. A device joins here when
// location_magnitudes is a template over the device and a whole GCL step on it is tested
// against the cpu's.
// The rest (the stage, the pixel sampling, the levels' data movement, the exchange of rows) is
// unconstrained and compiles for every device.
#include <concepts>

#include "gcl/core/device.hpp"

namespace gcl::train {

template <class D>
concept ContrastDevice = std::same_as<D, cpu>;

}  // namespace gcl::train
