// What repeats: the same seeds, thread count and build give the same parameters bit for bit;
// in the portable build (-DGCL_PORTABLE=ON, libm's SSE2 paths through GLIBC_TUNABLES) the
// parameters of a short pre-training equal a checksum committed here, on any x86-64 machine.
#include <catch2/catch.hpp>

#include <cstdio>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "train_fixture.hpp"

using namespace robustness;

namespace {
// Parameters after 6 steps of the tiny pre-training with 2 threads, portable build, GCC 12
// (Debian 12). A change in gcl's arithmetic or orders changes it: re-run this test in the
// portable build, check that the change is intended, and update the value and docs/testing.md.
constexpr std::uint64_t portable_golden = 0xdbc1a9536cf538acull;

std::uint64_t short_run() {
    Run run;
    for (std::uint64_t s = 0; s < 6; ++s) run.step(make_batch(7, s, false), s);
    return checksum(parameters(run.arena));
}
}  // namespace

TEST_CASE("a short pre-training repeats bit for bit, and matches the portable checksum", "[robustness][repeat]") {
#if defined(_OPENMP)
    omp_set_num_threads(2);
#endif
    const std::uint64_t first = short_run();
    CHECK(short_run() == first);
    std::printf("parameter checksum after 6 steps: 0x%016llx\n", static_cast<unsigned long long>(first));
#if defined(GCL_PORTABLE_BUILD) && !defined(GCL_SANITIZED_BUILD)
    CHECK(first == portable_golden);
#else
    WARN("not a portable build: only the repeat within this build is checked (checksum 0x" << std::hex << first << ")");
#endif
}
