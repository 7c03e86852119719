// gcl_runs.hpp's pipeline on cuda: the nvcc translation unit that instantiates the pre-training,
// fine-tuning and evaluation for gcl::cuda. The build compiles it into gcl_demo and
// gcl_experiment where CUDA is enabled (examples/CMakeLists.txt, which then defines
// GCL_RUNS_WITH_CUDA), so that their own files stay plain C++ and reach the device path through
// the two functions below.
#include "gcl/cuda.cuh"
#include "gcl_runs.hpp"

namespace gcl_runs {

int cuda_devices() { return gcl::cuda_device_count(); }

std::unique_ptr<MethodSession> make_cuda_session(Method m, const Protocol& p, const Data& d, std::uint64_t seed,
                                                 const Job& job) {
    return std::make_unique<MethodSessionOn<gcl::cuda>>(m, p, d, seed, job);
}

}  // namespace gcl_runs
