// gcl_runs.hpp's pipeline on the cpu, compiled once for the programs that share it (gcl_demo,
// gcl_experiment): their own files reach it through make_method_session.
#include "gcl_runs.hpp"

namespace gcl_runs {

std::unique_ptr<MethodSession> make_cpu_session(Method m, const Protocol& p, const Data& d, std::uint64_t seed,
                                                const Job& job) {
    return std::make_unique<MethodSessionOn<gcl::cpu>>(m, p, d, seed, job);
}

}  // namespace gcl_runs
