#!/usr/bin/env bash
# Reproduces the fuzzing table of docs/testing.md: builds each parser's libFuzzer target, replays
# its committed regression inputs, fuzzes it for GCL_FUZZ_SECONDS (default 60) from the seed
# corpus of installed files, and prints one Markdown row per parser.
#   bash scripts/robustness_report.sh [work_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-build/robustness-report}
seconds=${GCL_FUZZ_SECONDS:-60}
mkdir -p "$work"
rows=()
for target in nifti npy checkpoint acdc_info; do
    bash tests/fuzz/run_fuzz.sh "$target" "$PWD" "$work/$target" "$seconds" >"$work/$target.log" 2>&1 || {
        tail -n 40 "$work/$target.log"
        echo "robustness_report: fuzzing $target failed"
        exit 1
    }
    line=$(grep '^fuzz-summary' "$work/$target/summary.txt")
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
    regressions=$(find "tests/fuzz/regressions/$target" -type f 2>/dev/null | wc -l)
    rows+=("| $target | $(get seeds) | $(get seconds) s | $(get executions) | $(get corpus) | $regressions |")
done
echo "| parser | seed files | time fuzzed | inputs run | corpus kept | regression inputs |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
