#!/usr/bin/env bash
# One GCL pre-training step, gcl (benchmarks/gcl_step.cpp) against the same step in PyTorch
# (benchmarks/reference/gcl_step.py), with the same threads, run alternately.
#
#   bash benchmarks/run_gcl_step.sh
#   GCL_MODELS=demo GCL_ROUNDS=5 bash benchmarks/run_gcl_step.sh
#
# First checks that both compute the same gradient (gcl_step --dump, then gcl_step.py --check,
# for the parameter level and for no surgery; stops on a mismatch), then per model runs GCL_ROUNDS
# rounds of: gcl parameter level, PyTorch parameter level, gcl representation level, gcl no surgery,
# PyTorch no surgery (each a fresh process: GCL_WARMUP untimed steps, then GCL_STEPS timed ones,
# their median). A figure is the median over the rounds. The load average is printed with every run.
#
# Environment: GCL_BUILD_DIR (build), GCL_THREADS (2), GCL_ROUNDS (3), GCL_STEPS (5), GCL_WARMUP (2),
# GCL_MODELS ("deep demo": demo is the U-Net encoder of depth 3, base 16, 64 x 64; deep is depth 4,
# 128 x 128; both B = 16 two-view images, K = 3), GCL_TORCH_VENV (default /work/venvs/torch-latest;
# created by benchmarks/reference/install_torch.sh when it holds no torch), GCL_SKIP_CHECK (1: no check),
# GCL_BASELINE_BUILD (another configured build directory, e.g. one with -DGCL_CPU_CONV=im2col: its
# gcl_step joins every round, and its summary line is printed before each model's last line).
# One summary line per model, the last model's last:
#   gcl_step param-level: <a> s, PyTorch <b> s, ratio <a/b>; repr-level: <c> s, ratio <c/b>; peak MB gcl <m> torch <n>
# (b is PyTorch's parameter-level step; peak MB is the resident peak of the parameter-level processes).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${GCL_BUILD_DIR:-build}
threads=${GCL_THREADS:-2}
rounds=${GCL_ROUNDS:-3}
steps=${GCL_STEPS:-5}
warmup=${GCL_WARMUP:-2}
models=${GCL_MODELS:-deep demo}
venv=${GCL_TORCH_VENV:-/work/venvs/torch-latest}
wait_policy=${GCL_OMP_WAIT_POLICY-passive}
if [[ -n $wait_policy ]]; then export OMP_WAIT_POLICY=$wait_policy; else unset OMP_WAIT_POLICY; fi

if ! { [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import torch, numpy" 2>/dev/null; }; then
    echo "run_gcl_step: no torch in $venv; installing it from PyPI (benchmarks/reference/install_torch.sh)"
    bash benchmarks/reference/install_torch.sh "$venv"
fi
python="$venv/bin/python"
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "run_gcl_step: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $threads threads," \
     "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-default}," \
     "torch $("$python" -c 'import torch; print(torch.__version__)'), load $(load)"

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGCL_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" --target gcl_step -j2 >/dev/null
gcl="$build/benchmarks/gcl_step"
baseline=${GCL_BASELINE_BUILD:-}
runs=("gcl parameters" "torch parameters" "gcl representation" "gcl none" "torch none")
if [[ -n $baseline ]]; then
    cmake --build "$baseline" --target gcl_step -j2 >/dev/null
    runs+=("base parameters" "base representation" "base none")
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMP_NUM_THREADS=$threads
if [[ ${GCL_SKIP_CHECK:-0} != 1 ]]; then
    for model in $models; do
        for level in parameters none; do
            "$gcl" --model "$model" --mitigation "$level" --dump "$out/check-$model-$level" >/dev/null
            "$python" benchmarks/reference/gcl_step.py --check "$out/check-$model-$level" --mitigation "$level" \
                --threads "$threads" || { echo "run_gcl_step: gcl and PyTorch disagree; no timing"; exit 1; }
        done
    done
fi

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
for model in $models; do
    for round in $(seq "$rounds"); do
        for run in "${runs[@]}"; do
            set -- $run
            before=$(load)
            if [[ $1 == gcl ]]; then
                line=$("$gcl" --model "$model" --mitigation "$2" --steps "$steps" --warmup "$warmup")
            elif [[ $1 == base ]]; then
                line="baseline $("$baseline/benchmarks/gcl_step" --model "$model" --mitigation "$2" --steps "$steps" --warmup "$warmup")"
            else
                line=$("$python" benchmarks/reference/gcl_step.py --model "$model" --mitigation "$2" --threads "$threads" \
                    --steps "$steps" --warmup "$warmup")
            fi
            echo "$line load_before=${before// /,} load_after=$(load | tr ' ' ,)"
            echo "$line" >>"$out/$model-$1-$2.txt"
        done
    done
    median() { field "$1" <"$out/$model-$2.txt" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
    a=$(median median_s gcl-parameters); b=$(median median_s torch-parameters); c=$(median median_s gcl-representation)
    d=$(median median_s gcl-none); e=$(median median_s torch-none)
    m=$(median peak_mb gcl-parameters); n=$(median peak_mb torch-parameters)
    echo "run_gcl_step: model $model, medians over $rounds rounds of $steps steps, $threads threads; no surgery:" \
         "gcl $d s, PyTorch $e s, ratio $(awk -v x="$d" -v y="$e" 'BEGIN {printf "%.2f", x / y}')"
    if [[ -n $baseline ]]; then
        echo "run_gcl_step: model $model, baseline $baseline: param-level $(median median_s base-parameters) s," \
             "repr-level $(median median_s base-representation) s, no surgery $(median median_s base-none) s," \
             "peak MB $(median peak_mb base-parameters)"
    fi
    awk -v a="$a" -v b="$b" -v c="$c" -v m="$m" -v n="$n" 'BEGIN {
        printf "gcl_step param-level: %.3f s, PyTorch %.3f s, ratio %.2f; repr-level: %.3f s, ratio %.2f; peak MB gcl %.0f torch %.0f\n",
               a, b, a / b, c, c / b, m, n }'
done
