#!/usr/bin/env bash
# The portable deterministic build (-DGCL_PORTABLE=ON) of the repeatability tests, run against
# the committed parameter checksum: the CI stage that catches a change in gcl's arithmetic that
# would make figures differ between x86-64 machines.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build_dir=${GCL_PORTABLE_BUILD_DIR:-build-portable}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DGCL_PORTABLE=ON -DGCL_ENABLE_CUDA=OFF \
    -DGCL_BUILD_TESTS=ON -DGCL_BUILD_EXAMPLES=OFF -DGCL_BUILD_BENCHMARKS=OFF
cmake --build "$build_dir" -j "${GCL_JOBS:-$(nproc)}" --target test_robustness_train
ctest --test-dir "$build_dir" --output-on-failure -R '^test_robustness_train$'
