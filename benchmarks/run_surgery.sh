#!/usr/bin/env bash
# Measures the gradient-surgery kernels: bench_surgery (Google Benchmark: STREAM-style triad,
# mitigate, filter) and the PyTorch PCGrad loop on the same input with the same threads.
#
#   bash benchmarks/run_surgery.sh
#
# Environment: GCL_BUILD_DIR (build), GCL_THREADS (2), GCL_REPETITIONS (3: best of),
# GCL_BENCH_FILTER (a --benchmark_filter regex; default all), GCL_TORCH_VENV (a virtual environment
# with the newest torch; default /work/venvs/torch-latest, else /usr/bin/python3's torch).
# Last line:
#   mitigate K=4 P=16000000 float: <x> GB/s = <y>% of triad <z> GB/s; <s>x faster than PyTorch
set -euo pipefail
cd "$(dirname "$0")/.."
build=${GCL_BUILD_DIR:-build}
threads=${GCL_THREADS:-2}
reps=${GCL_REPETITIONS:-3}
filter=${GCL_BENCH_FILTER:-.}
venv=${GCL_TORCH_VENV:-/work/venvs/torch-latest}

python=/usr/bin/python3
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import torch" 2>/dev/null; then python="$venv/bin/python"; fi
torch_version=$("$python" -c "import torch; print(torch.__version__)")
echo "run_surgery: torch $torch_version from $python; $threads threads; load: $(uptime | sed 's/.*load average: //')"

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target bench_surgery -j2 >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The headline case must be in the run whatever the filter says. Repetitions of different
# benchmarks are interleaved; the headline ratio comes from BM_MitigatePairedWithTriad, which
# alternates the mitigation and the triad inside every iteration (same machine conditions).
OMP_NUM_THREADS=$threads OMP_PROC_BIND=spread "$build/benchmarks/bench_surgery" \
    --benchmark_filter="BM_Triad|BM_MitigatePairedWithTriad|$filter" \
    --benchmark_repetitions="$reps" --benchmark_enable_random_interleaving=true \
    --benchmark_out="$out/bench.json" --benchmark_out_format=json | grep -v -E "_(mean|median|stddev|cv) "

OMP_NUM_THREADS=$threads "$python" benchmarks/pytorch_pcgrad.py --K 4 --P 16000000 --threads "$threads" \
    --repeats "$reps" | tee "$out/torch.txt"

"$python" - "$out/bench.json" "$out/torch.txt" "$torch_version" <<'PY'
import json, statistics, sys
runs = [b for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("run_type") == "iteration"]
def named(prefix):
    hits = [b for b in runs if b["name"].startswith(prefix)]
    if not hits:
        sys.exit(f"run_surgery: no benchmark named {prefix}")
    return hits
paired = named("BM_MitigatePairedWithTriad/K:4/P:16000000/")
best = max(paired, key=lambda b: b["bytes_per_second"])   # best repetition, with its own triad
gbs, triad = best["bytes_per_second"] / 1e9, best["triad_GBps"]
unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[best["time_unit"]]
seconds = best["real_time"] * unit
fractions = sorted(b["fraction_of_triad"] for b in paired)
standalone = max(b["bytes_per_second"] for b in named("BM_Triad/")) / 1e9
torch_seconds = float(open(sys.argv[2]).read().strip().splitlines()[-1].split("=")[1])
print(f"run_surgery: {len(paired)} paired repetitions, fraction of triad min {fractions[0]:.2f} "
      f"median {statistics.median(fractions):.2f} max {fractions[-1]:.2f}; best standalone triad {standalone:.1f} GB/s "
      f"(GB = 1e9 bytes; Google Benchmark's console G/s are 2^30)")
print(f"run_surgery: gcl {seconds * 1e3:.2f} ms per call, torch {sys.argv[3]} {torch_seconds * 1e3:.1f} ms per call (best of each)")
print(f"mitigate K=4 P=16000000 float: {gbs:.1f} GB/s = {100 * gbs / triad:.0f}% of triad {triad:.1f} GB/s; "
      f"{torch_seconds / seconds:.0f}x faster than PyTorch")
PY
