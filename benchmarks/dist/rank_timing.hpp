#pragma once
// Timing of one data-parallel operation on every rank of an MPI job: the median wall time between
// barriers and the mean bytes this rank sends (the communicator's traffic count), per run.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "gcl/dist/mpi_communicator.hpp"

namespace gcl::bench {

struct RankTiming {
    double median_ms = 0;
    double bytes_sent = 0;   // per run, by this rank
    double collectives = 0;  // per run
};

// `step` run `runs` times after one warm-up run.
template <class Step>
RankTiming measure_on_ranks(dist::MpiCommunicator& comm, int runs, Step&& step) {
    step();
    std::vector<double> ms;
    const dist::Traffic before = comm.traffic();
    for (int s = 0; s < runs; ++s) {
        comm.barrier();
        const auto t0 = std::chrono::steady_clock::now();
        step();
        comm.barrier();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    const dist::Traffic after = comm.traffic();
    return {ms[ms.size() / 2], static_cast<double>(after.bytes_sent - before.bytes_sent) / runs,
            static_cast<double>(after.collectives - before.collectives) / runs};
}

}  // namespace gcl::bench
