#pragma once
// gcl's CUDA backend umbrella: include from nvcc translation units only (after or instead of
// gcl/gcl.hpp). Link with gcl::cuda (cudart, cuBLAS, cuDNN).
#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/backend/cuda/activation.cuh"
#include "gcl/backend/cuda/batch_norm.cuh"
#include "gcl/backend/cuda/bias.cuh"
#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/device.cuh"
#include "gcl/backend/cuda/elementwise.cuh"
#include "gcl/backend/cuda/flat_update.cuh"
#include "gcl/backend/cuda/gemm.cuh"
#include "gcl/backend/cuda/handles.cuh"
#include "gcl/backend/cuda/stream.cuh"
#include "gcl/surgery/cuda/filter.cuh"
#include "gcl/surgery/cuda/mitigate.cuh"
#include "gcl/surgery/cuda/mitigate_batched.cuh"
