#!/usr/bin/env bash
# The GPU check on the device machine (see benchmarks/gpu_prepare.sh): installs the carried wheels, runs
# benchmarks/gpu.py on the carried BIDS copy, CPU and CUDA side by side, and leaves the tables and the two
# runs' reports in $OUT. Arguments go to gpu.py (e.g. --stages smri surfaces qc --deadline-s 500).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
out=${OUT:-/tmp/gpu_out}
mkdir -p "$out"
(cd benchmarks && python3 gpu.py --bids ../.gpudata/bids --device-a cpu --device-b cuda --concurrent \
    --work /tmp/gpu_work --tables "$out/tables.md" "$@")
status=$?
(cd /tmp/gpu_work && tar czf "$out/reports.tar.gz" --exclude='*.nii.gz' --exclude='*.gii' --exclude='*.h5' a b) || true
exit $status
