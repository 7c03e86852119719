#!/usr/bin/env bash
# scripts/gpu-bundle packs this build's CUDA programs and scripts/gpu-check runs them from the
# bundle, as on a GPU machine without gcl's build dependencies. The programs see no GPU here
# (CUDA_VISIBLE_DEVICES is empty), so the GPU tests report skipped, the emulation tests pass and
# the check exits 0; a bundled program that fails or outlasts its time makes the check fail,
# naming it.
#   check_gpu_bundle.sh <build dir> <work dir>
set -euo pipefail
build=$1
work=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "check_gpu_bundle: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work/out" "$work/broken"
export CUDA_VISIBLE_DEVICES=

GCL_BUILD_DIR=$build GCL_GPU_BUNDLE=$work/bundle GCL_GPU_BUNDLE_BUILD=0 bash "$root/scripts/gpu-bundle"
manifest=$work/bundle/MANIFEST
for entry in "test test_cuda_backend test_cuda_backend" "test test_cuda_backend_emulated test_cuda_backend_emulated" \
    "test package_consumer_cuda gcl_consumer_cuda" "benchmark gcl_step_cuda" "benchmark bench_surgery_cuda"; do
    grep -qx "$entry" "$manifest" || fail "MANIFEST lacks '$entry':$(printf '\n%s' "$(cat "$manifest")")"
done
grep -q '^libraries .*libcudart\.so' "$manifest" || fail "MANIFEST names no CUDA runtime library"
tests=$(grep -c '^test ' "$manifest")
emulated=$(grep -c '^test .*_emulated ' "$manifest")

OUT=$work/out GCL_GPU_BUNDLE=$work/bundle bash "$root/scripts/gpu-check" >"$work/check.txt" 2>&1 ||
    fail "gpu-check on the bundle failed:$(printf '\n%s' "$(cat "$work/check.txt")")"
grep -qE "CUDA tests +$emulated passed, $((tests - emulated)) skipped, 0 failed" "$work/check.txt" ||
    fail "expected $emulated passed and $((tests - emulated)) skipped of $tests:$(printf '\n%s' "$(cat "$work/check.txt")")"
for file in summary.txt tests.txt gpu-check-logs.tar.gz; do
    [[ -s "$work/out/$file" ]] || fail "gpu-check left no $file in OUT"
done
# The listing is read whole first: grep -q stops at its match, and under pipefail the tar it
# would leave writing into a closed pipe fails the check.
logs=$(tar -tzf "$work/out/gpu-check-logs.tar.gz")
grep -q 'test_cuda_backend_emulated.txt' <<<"$logs" || fail "the log archive lacks test_cuda_backend_emulated's log"

# A bundle of a program that fails and one that hangs past its time: the check exits non-zero
# and names both, and OUT holds the test report.
printf '#!/bin/sh\necho "a planted failure"\nexit 3\n' >"$work/broken/planted"
printf '#!/bin/sh\nexec sleep 30\n' >"$work/broken/hangs"
printf 'commit planted\nnvcc -\ntest planted_failure planted\ntest planted_hang hangs\nlibraries \n' >"$work/broken/MANIFEST"
mkdir -p "$work/broken_out"
if OUT=$work/broken_out GCL_GPU_CHECK_TIMEOUT=1 GCL_GPU_BUNDLE=$work/broken bash "$root/scripts/gpu-check" \
    >"$work/broken.txt" 2>&1; then
    fail "gpu-check passed a bundle whose programs failed"
fi
grep -q "0 passed, 0 skipped, 2 failed" "$work/broken.txt" && grep -q "planted_failure ... \*\*\*Failed" "$work/broken.txt" &&
    grep -q "a planted failure" "$work/broken.txt" && grep -q "planted_hang ... \*\*\*Timeout" "$work/broken.txt" &&
    grep -q "planted_hang" "$work/broken_out/tests.txt" ||
    fail "the failures were not reported:$(printf '\n%s' "$(cat "$work/broken.txt")")"

# A folder that is no bundle is refused.
if GCL_GPU_BUNDLE=$work/out bash "$root/scripts/gpu-check" >"$work/none.txt" 2>&1 ||
    ! grep -q "has no MANIFEST" "$work/none.txt"; then
    fail "gpu-check accepted a folder without a MANIFEST"
fi
echo "check_gpu_bundle: $tests programs bundled; $emulated passed and the rest skipped without a GPU; a failure and a timeout are reported"
