#!/usr/bin/env bash
# The pre-training variants of docs/training.md ("Why patient and phase collapsed" and "Batch
# composition, per-label temperature and the cardiac phase"), each run with gcl_experiment
# --pretrain-only on one thread, printed as the two Markdown tables. Every row pre-trains with SGD
# and momentum (--pretrain-optimizer sgd), the optimizer these measurements compared.
#
#   scripts/pretrain-variants.sh [BUILD_DIR] [OUT_DIR]      (defaults: build, pretrain-variants-out)
#
# Every row is its own gcl_experiment output folder under OUT_DIR; a second invocation skips the
# rows already done. The tables go to stdout and to OUT_DIR/tables.md.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-pretrain-variants-out}
bin="$build/examples/gcl_experiment"
[[ -x "$bin" ]] || { echo "pretrain-variants: $bin not found; build the examples first (cmake --build $build --target gcl_experiment)" >&2; exit 1; }
mkdir -p "$out"
export OMP_NUM_THREADS=1

# One row: <folder> <first column> <method> <seed> <steps> <lr> <flags...>
run_row() {
    local dir="$out/$1" name="$2" method="$3" seed="$4" steps="$5" lr="$6"
    shift 6
    "$bin" --pretrain-only --methods "$method" --seeds "$seed" --pretrain-steps "$steps" --pretrain-optimizer sgd --pretrain-lr "$lr" \
        --out "$dir" "$@" > "$dir.log" 2>&1 || { echo "pretrain-variants: row $dir failed, see $dir.log" >&2; exit 1; }
    python3 - "$dir/pretrain/$method-seed$seed.json" "$name" "$lr" "$steps" "$*" <<'PY'
import json, sys
path, name, lr, steps, flags = sys.argv[1:]
r = json.load(open(path))
loss = dict(zip(r["labels"], r["final_image_loss"]))
probe = dict(zip(r["probe_labels"], r["probe_accuracy"]))
cell = lambda d, f: " / ".join(f % d[k] if k in d else "-" for k in ("patient", "position", "phase"))
print(f"| {name} | `{flags}` | {lr} | {steps} | {cell(loss, '%.3f')} | {cell(probe, '%.2f')} |")
PY
}

header='| variant | flags | lr | steps | loss patient / position / phase | probe patient / position / phase |
|---|---|---|---|---|---|'

# Image losses alone, without surgery; two patients x eight images except where a row says otherwise.
t1=(
    "c01|no BN, tau 0.1, geometric|0.05|40|--head-norm none --temperature 0.1 --pretrain-augment geometric --per-patient 8"
    "c02|no BN, tau 0.1, no flips|0.05|40|--head-norm none --temperature 0.1 --pretrain-augment geometric-no-flip --per-patient 8"
    "c03|no BN, tau 0.5|0.05|40|--head-norm none --temperature 0.5 --pretrain-augment geometric --per-patient 8"
    "c04|no BN, tau 0.1, lr 0.2|0.2|40|--head-norm none --temperature 0.1 --pretrain-augment geometric --per-patient 8"
    "c05|no BN, 4 patients x 4 images|0.05|40|--head-norm none --temperature 0.1 --pretrain-augment geometric --per-patient 4"
    "c06|BN hidden, tau 0.1|0.05|40|--head-norm hidden --temperature 0.1 --pretrain-augment geometric --per-patient 8"
    "c07|BN hidden + output, tau 0.1|0.05|40|--head-norm hidden-output --temperature 0.1 --pretrain-augment geometric --per-patient 8"
    "c08|BN hidden + output, tau 0.2|0.05|80|--head-norm hidden-output --temperature 0.2 --pretrain-augment geometric --per-patient 8"
    "c09|BN hidden + output, tau 0.5|0.05|80|--head-norm hidden-output --temperature 0.5 --pretrain-augment geometric --per-patient 8"
    "c10|BN hidden + output, tau 0.2, lr 0.2|0.2|80|--head-norm hidden-output --temperature 0.2 --pretrain-augment geometric --per-patient 8"
    "c11|BN hidden, tau 0.2|0.05|80|--head-norm hidden --temperature 0.2 --pretrain-augment geometric --per-patient 8"
    "c12|BN hidden + output, tau 0.5|0.05|120|--head-norm hidden-output --temperature 0.5 --pretrain-augment geometric --per-patient 8"
    "c13|**BN hidden + output, tau 0.5, intensity only**|0.05|120|--head-norm hidden-output --temperature 0.5 --pretrain-augment intensity --per-patient 8"
    "c14|BN hidden + output, tau 0.5, intensity only|0.15|120|--head-norm hidden-output --temperature 0.5 --pretrain-augment intensity --per-patient 8"
    "c15|BN hidden + output, tau 0.3, intensity only|0.15|120|--head-norm hidden-output --temperature 0.3 --pretrain-augment intensity --per-patient 8"
    "c16|BN hidden + output, tau 0.5, intensity only|0.3|150|--head-norm hidden-output --temperature 0.5 --pretrain-augment intensity --per-patient 8"
)
# The library's defaults (batch-normalised head, tau 0.5, intensity augmentation), image and pixel losses.
t2=(
    "b01|2 x 8, summed|summed-no-surgery|1|0.05|60|--per-patient 8"
    "b02|2 x 8, summed, no pixel contrast|summed-no-surgery|1|0.05|60|--per-patient 8 --no-pixel-contrast"
    "b03|2 x 8, summed|summed-no-surgery|1|0.1|60|--per-patient 8"
    "b04|2 x 8, summed, tau 0.2 / 0.5 / 0.2|summed-no-surgery|1|0.05|60|--per-patient 8 --temperature 0.2 0.5 0.2"
    "b05|2 x 8, summed, tau 0.1 / 0.5 / 0.1|summed-no-surgery|1|0.05|60|--per-patient 8 --temperature 0.1 0.5 0.1"
    "b06|8 x 2, summed|summed-no-surgery|1|0.05|60|--per-patient 2"
    "b07|4 x 4, summed|summed-no-surgery|1|0.05|60|--per-patient 4"
    "b08|**3 x 6 (6 + 6 + 4, the default), summed**|summed-no-surgery|1|0.05|60|"
    "b09|2 x 8, summed|summed-no-surgery|1|0.05|120|--per-patient 8"
    "b10|4 x 4, summed|summed-no-surgery|1|0.05|120|--per-patient 4"
    "b11|3 x 6, summed|summed-no-surgery|1|0.05|150|"
    "b12|2 x 8, summed|summed-no-surgery|1|0.05|200|--per-patient 8"
    "b13|4 x 4, phase only|summed-no-surgery|1|0.05|100|--per-patient 4 --labels phase"
    "b14|3 x 6, GCL (parameter level)|gcl-parameters|1|0.05|100|"
    "b15|2 x 8, GCL (parameter level), seed 2|gcl-parameters|2|0.05|100|--per-patient 8"
    "b16|3 x 6, GCL (parameter level), seed 2 (the quick demo's)|gcl-parameters|2|0.05|100|"
    "b17|2 x 8, GCL (parameter level), seed 3|gcl-parameters|3|0.05|100|--per-patient 8"
    "b18|3 x 6, GCL (parameter level), seed 3 (the quick demo's)|gcl-parameters|3|0.05|100|"
)

{
    echo "Image losses alone, no surgery (summed-no-surgery --no-pixel-contrast), seed 1:"
    echo
    echo "$header"
    for row in "${t1[@]}"; do
        IFS='|' read -r dir name lr steps flags <<< "$row"
        # shellcheck disable=SC2086
        run_row "$dir" "$name" summed-no-surgery 1 "$steps" "$lr" --no-pixel-contrast $flags
    done
    echo
    echo "Image and pixel losses, the library's head, temperature and augmentation:"
    echo
    echo "$header"
    for row in "${t2[@]}"; do
        IFS='|' read -r dir name method seed lr steps flags <<< "$row"
        # shellcheck disable=SC2086
        run_row "$dir" "$name" "$method" "$seed" "$steps" "$lr" $flags
    done
} | tee "$out/tables.md"
