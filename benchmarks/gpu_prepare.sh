#!/usr/bin/env bash
# Prepare the GPU check for a session that is lent a device (benchmarks/gpu.py; ../.library/device/README.md).
#
# The device machine cannot download anything, and its Python (3.12) lacks some of our dependencies, and
# only the repository travels there (64 MiB at most). This script, run here in the repository's root, fills two
# git-excluded folders for the run's `carry`:
#   .whl/      the missing packages as CPython 3.12 wheels (the versions an install here resolved, 2026-12-04);
#   .gpudata/  a BIDS copy of one dataset from ../shared/data, small enough to travel: `aomic` (the 1 mm T1w,
#              for the surfaces stage) or `studyforrest` (the 0.7 mm T1w and the first 100 BOLD volumes,
#              which nibabel re-scales into int16: values move by less than half a unit).
# Then, in one call of the device tool's `run`:
#   command: bash benchmarks/gpu_run.sh --stages smri surfaces qc --deadline-s 500
#   carry:   [".whl", ".gpudata"]      timeout_s: 560
# and the tables come back as $OUT/tables.md (and the two runs' reports as $OUT/reports.tar.gz).
#
# Usage: bash benchmarks/gpu_prepare.sh aomic|studyforrest
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=${1:?usage: gpu_prepare.sh aomic|studyforrest}
data=${NEUROLEARN_TEST_DATA:-../shared/data}
for folder in /.whl/ /.gpudata/; do
    grep -qxF "$folder" .git/info/exclude || echo "$folder" >> .git/info/exclude
done

rm -rf .whl .gpudata
mkdir -p .whl .gpudata/bids
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$tag")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" -d .whl \
    pybids==0.22.0 bids-validator==1.14.7.post0 bidsschematools==2.0.1 num2words==0.5.14 frozendict==2.5.1 \
    universal_pathlib==0.3.10 pathlib_abc==0.5.2 SQLAlchemy==2.1.9 acres==0.5.0 nilearn==0.14.1 nibabel==5.4.2 \
    pydantic==2.13.4 pydantic_core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2 isal==1.9.1
python3 -m pip wheel -q --no-deps -w .whl docopt==0.6.2  # an sdist only; the wheel built here is pure Python

cp "$data/$dataset/bids/dataset_description.json" .gpudata/bids/
case "$dataset" in
    aomic)
        mkdir -p .gpudata/bids/sub-0001
        cp -r "$data/aomic/bids/sub-0001/anat" .gpudata/bids/sub-0001/
        ;;
    studyforrest)
        cp -r "$data/studyforrest/bids/sub-02" .gpudata/bids/
        cp "$data"/studyforrest/bids/*.json .gpudata/bids/ 2>/dev/null || true
        bold=$(ls .gpudata/bids/sub-02/func/*_bold.nii.gz | head -1)
        python3 - "$bold" <<'PY'
import gzip, sys
import nibabel as nib
path = sys.argv[1]
image = nib.load(path)
raw = image.slicer[..., :100].to_bytes()
with open(path, "wb") as handle:
    handle.write(gzip.compress(raw, compresslevel=9, mtime=0))
PY
        ;;
    *) echo "unknown dataset: $dataset (aomic or studyforrest)" >&2; exit 2 ;;
esac
du -sh .whl .gpudata
git ls-files -z | xargs -0 du -bc 2>/dev/null | tail -1 | awk '{printf "tracked files: %.1f MiB\n", $1 / 1048576}'
