#!/usr/bin/env bash
# Creates a virtual environment with torch from PyPI for the PyPI-side benchmarks (CPU use).
#
#   bash benchmarks/reference/install_torch.sh [venv]      # default /work/venvs/torch-latest
#
# Environment: GCL_TORCH_VERSION (default 2.15.0, the newest on PyPI when this was written;
# "latest" takes whatever PyPI has now). The Linux x86-64 wheel on PyPI is built with CUDA:
# libtorch_cpu.so itself needs libcudart and libcupti at load time and libtorch.so needs
# libtorch_cuda.so (cuBLAS, cuDNN, cuFFT, cuSPARSE, NCCL, nvshmem, ...), so even CPU use needs
# those runtime libraries, and they come with the wheel's dependencies (about 3 GB). Only triton
# (torch.compile's GPU code generator) is never loaded on the CPU, and it is left out.
set -euo pipefail
venv=${1:-/work/venvs/torch-latest}
version=${GCL_TORCH_VERSION:-2.15.0}
spec="torch==$version"
[[ $version == latest ]] && spec=torch
python=${GCL_VENV_PYTHON:-/usr/bin/python3}
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# torch without its dependencies, then every dependency except triton, at the versions torch pins.
"$venv/bin/python" -m pip install --quiet --no-deps "$spec"
deps=$("$venv/bin/python" - <<'PY'
import importlib.metadata as md
out = []
for r in md.requires("torch") or []:
    if "extra ==" in r or r.startswith("triton"):
        continue
    out.append(r.split(";")[0].strip())
print("\n".join(out))
PY
)
mapfile -t dep_list <<<"$deps"
"$venv/bin/python" -m pip install --quiet "${dep_list[@]}" numpy
"$venv/bin/python" -c "import torch, numpy; print('install_torch: torch', torch.__version__, 'numpy', numpy.__version__, 'in $venv')"
