#!/usr/bin/env bash
# Installs the Debian 12 packages gcl needs that are missing (as root, or through sudo).
#   scripts/setup.sh             build + test dependencies
#   scripts/setup.sh --fixtures  also python3-torch, to regenerate the PyTorch parity fixtures
set -euo pipefail

packages=(
    build-essential cmake pkg-config git
    libeigen3-dev libxtensor-dev xtl-dev zlib1g-dev
    libdnnl-dev                             # oneDNN: the float CPU convolutions (GCL_CPU_CONV)
    ocl-icd-opencl-dev                      # oneDNN's CMake package requires OpenCL (only recommended by libdnnl-dev)
    catch2 libbenchmark-dev
    python3 python3-numpy python3-nibabel   # nibabel cross-checks of the NIfTI reader/writer
    insighttoolkit5-examples                # ships a real T1 MRI volume with a label map
    clang libclang-rt-dev libomp-dev        # the sanitizer stage's compiler and runtimes; libFuzzer targets
    libopenmpi-dev openmpi-bin              # data-parallel training (dist/) and its mpirun tests
    libcli11-dev nlohmann-json3-dev         # the programs' flags and config files; results.json, model files, reports
    mricron-data                            # MRIcron's template volumes: seeds of the NIfTI fuzzer
)
if [[ "${1:-}" == "--fixtures" ]]; then
    packages+=(python3-torch)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]} == 0)); then
    echo "setup: all ${#packages[@]} packages are installed"
    exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
echo "setup: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
