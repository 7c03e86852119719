// gcl_demo's pipeline on cuda: the nvcc translation unit that instantiates gcl_runs.hpp's
// pre-training, fine-tuning and evaluation for gcl::cuda. The build compiles it into gcl_demo
// where CUDA is enabled (examples/CMakeLists.txt, which then defines GCL_RUNS_WITH_CUDA), so that
// gcl_demo.cpp stays a plain C++ file and reaches the device path through the two functions below.
#include "gcl/cuda.cuh"
#include "gcl_runs.hpp"

namespace gcl_runs {

int cuda_devices() { return gcl::cuda_device_count(); }

MethodRun run_method_on_cuda(Method m, const Protocol& p, const Data& d, index_t labelled, std::uint64_t seed,
                             const Job& job) {
    return run_method_on<gcl::cuda>(m, p, d, labelled, seed, job);
}

}  // namespace gcl_runs
