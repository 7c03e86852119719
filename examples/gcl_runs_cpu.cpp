// gcl_runs.hpp's pre-training and fine-tuning on the cpu, instantiated once for the programs that
// share them (gcl_demo, gcl_experiment): the build compiles this file into both and defines
// GCL_RUNS_CPU_COMPILED for them, so that their own files do not instantiate the pipeline again.
#include "gcl_runs.hpp"

namespace gcl_runs {

template Pretraining pretrain<gcl::cpu>(Method, const Protocol&, const Data&, std::uint64_t,
                                        nn::PretrainModel<float, gcl::cpu>&, nn::ParameterArena<float, gcl::cpu>&,
                                        std::int64_t, const Job&);
template Finetuning finetune<gcl::cpu>(const std::string&, const Protocol&, const Data&, index_t, std::uint64_t,
                                       const nn::ParameterArena<float, gcl::cpu>*, bool, const Job&,
                                       std::vector<gcl::Tensor<std::uint8_t>>*);

}  // namespace gcl_runs
