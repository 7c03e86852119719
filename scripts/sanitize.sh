#!/usr/bin/env bash
# Builds every CPU test with AddressSanitizer + UndefinedBehaviorSanitizer and runs it: the CI's
# sanitizer stage. CUDA, examples and benchmarks are off; the fuzz tests are left to the normal
# build (run_fuzz.sh instruments them itself) and package_consumer installs uninstrumented files.
# The data-parallel tests (dist/, under mpirun) are left to the normal build as well: Open MPI's
# plugins keep allocations past MPI_Finalize that LeakSanitizer cannot tell from gcl's, and their
# program instantiates the whole pre-training twice, a seventh of this stage's compile time.
# GCL_SANITIZE_MPI=1 builds and runs them here too, with leak detection off.
# Tests compile with clang (GCL_SANITIZE_CXX, default clang++), which builds these template-heavy
# tests in a little over half of g++'s time; g++ compiles them in the normal build. They compile at
# -O0 -g1, which halves the compile time again and keeps the reports readable; the four that
# spend their time computing (tests/CMakeLists.txt, gcl_compute_heavy_tests) at -O1, which runs
# them several times faster under the sanitizers (GCL_TEST_OPTIMIZATION, -O1 in other builds, is
# empty here).
#   scripts/sanitize.sh                            address,undefined in build-sanitize/
#   GCL_SANITIZERS=thread scripts/sanitize.sh      ThreadSanitizer (clang with libomp + Archer)
#   GCL_SANITIZE_CXX=g++ scripts/sanitize.sh       the same checks built by g++
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build_dir=${GCL_SANITIZE_BUILD_DIR:-build-sanitize}
sanitizers=${GCL_SANITIZERS:-address,undefined}
jobs=${GCL_JOBS:-$(nproc)}
mpi=${GCL_SANITIZE_MPI:-0}
CXX=${GCL_SANITIZE_CXX:-clang++} cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O0 -g1" \
    -DGCL_COMPUTE_HEAVY_TEST_FLAGS=-O1 -DGCL_TEST_OPTIMIZATION= \
    -DGCL_SANITIZE="$sanitizers" -DGCL_ENABLE_CUDA=OFF -DGCL_BUILD_TESTS=ON -DGCL_BUILD_EXAMPLES=OFF \
    -DGCL_BUILD_BENCHMARKS=OFF "-DCMAKE_DISABLE_FIND_PACKAGE_MPI=$([[ $mpi == 1 ]] && echo OFF || echo ON)"
cmake --build "$build_dir" -j "$jobs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0}
if [[ $sanitizers == *thread* ]]; then
    export OMP_TOOL_LIBRARIES=${OMP_TOOL_LIBRARIES:-libarcher.so}
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1}
fi
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" -LE fuzz -E '^(package_consumer|dist_.*)$' --timeout 1800
if [[ $mpi == 1 ]]; then
    # Open MPI's plugins are unloaded before LeakSanitizer runs; ASan and UBSan stay on.
    ASAN_OPTIONS="${ASAN_OPTIONS}:detect_leaks=0" ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" \
        -LE fuzz -R '^dist_' --timeout 1800
fi
