// gcl_runs.hpp's pipeline on cuda: the nvcc translation unit that instantiates the pre-training,
// fine-tuning and evaluation for gcl::cuda. The build compiles it into gcl_demo and
// gcl_experiment where CUDA is enabled (examples/CMakeLists.txt, which then defines
// GCL_RUNS_WITH_CUDA), so that their own files stay plain C++ and reach the device path through
// the functions below. Under mpirun it trains data-parallel over NCCL, one rank per GPU, where
// the build found NCCL (GCL_RUNS_WITH_NCCL).
#include "gcl/cuda.cuh"
#include "gcl_runs.hpp"
#ifdef GCL_RUNS_WITH_NCCL
#include "gcl/dist/nccl_communicator.cuh"
#endif

namespace gcl_runs {

int cuda_devices() { return gcl::cuda_device_count(); }

#ifdef GCL_RUNS_WITH_NCCL
bool cuda_data_parallel() { return true; }

namespace {
// The job's GPUs: made on first use, on this rank's GPU (its rank among the ranks of its node), and
// kept by the job. Every rank makes it at the same point (before its first model), so the NCCL
// bootstrap is collective.
gcl::dist::NcclCommunicator& job_gpus(const Job& job) {
    std::shared_ptr<void>& held = job.device_communicator();
    if (!held) {
        gcl::dist::MpiCommunicator& world = job.communicator();
        const gcl::dist::MpiCommunicator node = world.split_node();
        const int local_rank = node.rank(), local_size = node.size();
        const int devices = cuda_devices();
        gcl::check(local_size <= devices, "gcl_runs", "--device cuda under mpirun: ", local_size,
                   " ranks on this node share ", devices, " GPU(s); start at most one rank per GPU");
        held = std::make_shared<gcl::dist::NcclCommunicator>(world, local_rank);
    }
    return *static_cast<gcl::dist::NcclCommunicator*>(held.get());
}
}  // namespace

template <>
struct DataParallelOn<gcl::cuda> {
    static ParallelTraining pretraining(const Job& job, nn::ParameterArena<float, gcl::cuda>& arena,
                                        tr::GclPretrainer<float, gcl::cuda>& pretrainer, index_t global_batch) {
        return attach_data_parallel<gcl::dist::DataParallelGcl<float, gcl::dist::NcclCommunicator>>(
            job_gpus(job), arena, pretrainer, global_batch);
    }
    static ParallelTraining finetuning(const Job& job, nn::ParameterArena<float, gcl::cuda>& arena,
                                       tr::SegmentationTrainer<float, nn::UNet<float, gcl::cuda>>& trainer,
                                       index_t global_batch) {
        return attach_data_parallel<gcl::dist::DataParallelSegmentation<float, gcl::dist::NcclCommunicator>>(
            job_gpus(job), arena, trainer, global_batch);
    }
};
#else
bool cuda_data_parallel() { return false; }

#ifdef GCL_RUNS_WITH_MPI
// No NCCL: check_device refuses --device cuda under mpirun before anything trains.
template <>
struct DataParallelOn<gcl::cuda> {
    [[noreturn]] static ParallelTraining refuse() {
        gcl::fail("gcl_runs", no_nccl_message);
    }
    template <class... Args>
    static ParallelTraining pretraining(Args&&...) { refuse(); }
    template <class... Args>
    static ParallelTraining finetuning(Args&&...) { refuse(); }
};
#endif
#endif

std::unique_ptr<MethodSession> make_cuda_session(Method m, const Protocol& p, const Data& d, std::uint64_t seed,
                                                 const Job& job) {
#ifdef GCL_RUNS_WITH_NCCL
    if (job.size() > 1) job_gpus(job);  // this rank's GPU made current before its model is made
#endif
    return std::make_unique<MethodSessionOn<gcl::cuda>>(m, p, d, seed, job);
}

}  // namespace gcl_runs
