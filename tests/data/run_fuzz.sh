#!/usr/bin/env bash
# Builds the NIfTI parser's libFuzzer target with clang++ (-fsanitize=fuzzer,address) and runs it
# for a bounded time, seeded with the nibabel-written fixtures.
#   run_fuzz.sh SOURCE_DIR WORK_DIR SECONDS
# Exit 77 (skipped) when clang++ or libFuzzer is not available.
set -euo pipefail
source_dir=$1
work_dir=$2
seconds=${3:-60}

cxx=$(command -v clang++ || true)
if [[ -z "$cxx" ]]; then
    echo "SKIPPED: clang++ not found (Debian package clang; scripts/setup.sh installs it)"
    exit 77
fi
mkdir -p "$work_dir/corpus" "$work_dir/crashes"
eigen_flags=$(pkg-config --cflags eigen3 2>/dev/null || echo "-I/usr/include/eigen3")
binary="$work_dir/fuzz_nifti"
source="$source_dir/tests/data/fuzz_nifti.cpp"
if [[ ! -x "$binary" || "$source" -nt "$binary" || "$source_dir/include/gcl/data/nifti.hpp" -nt "$binary" ]]; then
    echo "building $binary with $cxx"
    if ! "$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -I"$source_dir/include" $eigen_flags "$source" -o "$binary" -lz 2>"$work_dir/build.log"; then
        if grep -q -e "libclang_rt.fuzzer" -e "fsanitize=fuzzer" "$work_dir/build.log"; then
            echo "SKIPPED: $cxx has no libFuzzer runtime"
            cat "$work_dir/build.log"
            exit 77
        fi
        cat "$work_dir/build.log"
        exit 1
    fi
fi
cp "$source_dir"/tests/fixtures/data/nifti/*.nii* "$work_dir/corpus/"
echo "fuzzing the NIfTI parser for $seconds s"
set +e
"$binary" "$work_dir/corpus" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work_dir/crashes/" -print_final_stats=1 >"$work_dir/fuzz.log" 2>&1
status=$?
set -e
tail -n 25 "$work_dir/fuzz.log"
if [[ $status -ne 0 ]]; then
    echo "the fuzzer found a failure (exit $status); inputs in $work_dir/crashes"
    exit 1
fi
echo "fuzzing finished without failures"
