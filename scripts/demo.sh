#!/usr/bin/env bash
# Sets up (missing Debian packages), builds the examples and runs gcl's main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build_dir=${GCL_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build_dir" -j "${GCL_JOBS:-$(nproc)}" --target gcl_demo
"$build_dir/examples/gcl_demo" "$@"
