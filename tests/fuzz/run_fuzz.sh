#!/usr/bin/env bash
# Builds one parser's libFuzzer target with clang++ (-fsanitize=fuzzer,address,undefined),
# replays the committed regression inputs, then fuzzes it for a bounded time from a seed corpus
# of real files (make_corpus.py).
#   run_fuzz.sh TARGET SOURCE_DIR WORK_DIR SECONDS
# TARGET: nifti, npy, checkpoint or acdc_info. Exit 77 (skipped) when clang++ or libFuzzer is
# missing; 1 when the fuzzer finds a crash, a leak, undefined behaviour or a timeout (the input
# is left in WORK_DIR/crashes; commit it under tests/fuzz/regressions/TARGET once fixed).
set -euo pipefail
target=$1
source_dir=$2
work_dir=$3
seconds=${4:-60}
max_len=16384

cxx=$(command -v clang++ || true)
if [[ -z "$cxx" ]]; then
    echo "SKIPPED: clang++ not found (Debian package clang; scripts/setup.sh installs it)"
    exit 77
fi
mkdir -p "$work_dir/corpus" "$work_dir/crashes"
binary="$work_dir/fuzz_$target"
source="$source_dir/tests/fuzz/fuzz_$target.cpp"
if [[ ! -x "$binary" || "$source" -nt "$binary" || -n "$(find "$source_dir/include/gcl" -newer "$binary" -name '*.hpp' -print -quit)" ]]; then
    echo "building $binary with $cxx"
    eigen_flags=$(pkg-config --cflags eigen3 2>/dev/null || echo "-I/usr/include/eigen3")
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
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

regressions=("$source_dir/tests/fuzz/regressions/$target"/*)
if [[ -e "${regressions[0]}" ]]; then
    echo "replaying ${#regressions[@]} regression inputs"
    "$binary" -runs=1 "${regressions[@]}" >"$work_dir/regressions.log" 2>&1 || {
        tail -n 40 "$work_dir/regressions.log"
        echo "a committed regression input fails again"
        exit 1
    }
fi

# Debian's interpreter, which has python3-numpy (a python3 earlier on PATH may not).
python=/usr/bin/python3
[[ -x $python ]] || python=$(command -v python3)
"$python" "$source_dir/tests/fuzz/make_corpus.py" "$target" "$source_dir" "$work_dir/seeds" "$max_len"
echo "fuzzing $target for $seconds s"
set +e
"$binary" "$work_dir/corpus" "$work_dir/seeds" -max_total_time="$seconds" -max_len=$max_len -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$work_dir/crashes/" -print_final_stats=1 >"$work_dir/fuzz.log" 2>&1
status=$?
set -e
tail -n 30 "$work_dir/fuzz.log"
# One line for docs/testing.md's table (scripts/fuzz_report.sh collects them).
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work_dir/fuzz.log" | grep -o '[0-9]*$' || echo 0)
corpus=$(ls "$work_dir/corpus" | wc -l)
seeds=$(ls "$work_dir/seeds" | wc -l)
echo "fuzz-summary target=$target seconds=$seconds seeds=$seeds executions=$runs corpus=$corpus exit=$status" \
    | tee "$work_dir/summary.txt"
if [[ $status -ne 0 ]]; then
    echo "the fuzzer found a failure (exit $status); inputs in $work_dir/crashes"
    exit 1
fi
echo "fuzzing finished without failures"
