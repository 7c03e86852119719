#pragma once
// What the data-parallel training tests share: their names, and the unlabelled phantom slices the
// pre-training tests train on.
#include <vector>

#include "gcl/data/phantom.hpp"
#include "gcl/dist/communicator.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/train/checkpoint.hpp"
#include "relative_difference.hpp"

using gcl::index_t;
using gcl::Tensor;
namespace dist = gcl::dist;
namespace nn = gcl::nn;
namespace tr = gcl::train;
using gcl::testing::relative_difference;

inline const std::vector<gcl::data::Slice>& pretrain_slices() {
    static const std::vector<gcl::data::Slice> s =
        gcl::data::phantom_slices({.patients = 4, .slices = 8, .size = 16, .seed = 6, .profile = {}});
    return s;
}
