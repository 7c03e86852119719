#pragma once
// The devices on which GCL's contrasts run today. Every part of the objective is a template over
// the device; the parts that compute, filter or scatter the contrasts (the label spaces, the
// pixel filter policy, the dense pixel gradient, the mitigation levels that read it and
// GclObjective::gradient) need the contrast families backend::Contrast<D> (gather, scatter, pair
// passes), backend::Softmax<D> and backend::Normalize<D>, which exist for the cpu only, and the
// anchor guidance reads loss::location_magnitudes, a host loop. Those members are constrained on
// this concept; a device joins it when it has the three families and location_magnitudes is a
// template over the device.
// The rest (the stage, the pixel sampling, the levels' data movement, the exchange of rows) is
// unconstrained and compiles for every device.
#include <concepts>

#include "gcl/core/device.hpp"

namespace gcl::train {

template <class D>
concept ContrastDevice = std::same_as<D, cpu>;

}  // namespace gcl::train
