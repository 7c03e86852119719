#!/usr/bin/env bash
# Sets up (missing Debian packages), builds everything and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build_dir=${GCL_BUILD_DIR:-build}
jobs=${GCL_JOBS:-$(nproc)}
# GCL_FUZZ_SECONDS, when set, is how long each fuzz test runs (the CMake default is 60 s).
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DGCL_BUILD_TESTS=ON -DGCL_BUILD_EXAMPLES=ON \
    ${GCL_FUZZ_SECONDS:+"-DGCL_FUZZ_SECONDS=$GCL_FUZZ_SECONDS"}
cmake --build "$build_dir" -j "$jobs"
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs"
