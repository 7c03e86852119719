#pragma once
// gcl umbrella header: everything that compiles with a plain C++ compiler.
// The CUDA backend has its own umbrella, gcl/cuda.cuh, for nvcc translation units.

#include "gcl/core/buffer.hpp"
#include "gcl/core/config.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/eigen.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/npy.hpp"
#include "gcl/core/random.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/core/xtensor.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/optim/adam.hpp"
#include "gcl/optim/flat_optimizer.hpp"
#include "gcl/optim/schedule.hpp"
#include "gcl/optim/sgd.hpp"
#include "gcl/testing/gradcheck.hpp"
#include "gcl/testing/tolerance.hpp"
#include "gcl/train/checkpoint.hpp"
#include "gcl/train/checkpoint_state.hpp"
