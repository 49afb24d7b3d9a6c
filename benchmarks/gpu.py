"""GPU check: smri, fmri and qc with ``--device cuda`` against the CPU run, stage by stage.

Runs each stage in a fresh process on the same BIDS data twice, once per
device, into two output folders, timing each stage (wall seconds, from the
process's start to its end). Then compares every NIfTI the stages wrote:
same shape and affine; label images (masks, ``dseg``) by Dice per label; the
others by Pearson correlation over the voxels where either is non-zero; IQM
JSONs by the largest relative difference. Prints the tables, and appends them
to ``benchmarks/RESULTS.md`` with ``--results``. Run it whenever a GPU is lent::

    python benchmarks/gpu.py --bids ../shared/data/studyforrest/bids --results

``--device-a cpu --device-b cpu`` runs the same comparison with no GPU (a
check of the script itself: every Dice and correlation is then 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from _tables import append_results, markdown_table

STAGES = ("smri", "fmri", "qc")
LABEL_SUFFIXES = ("_mask.nii.gz", "_dseg.nii.gz")


def run_stages(bids: Path, out: Path, device: str, extra: list[str]) -> dict[str, float]:
    """Each stage in a fresh process on ``device``: wall seconds by stage."""
    seconds = {}
    for stage in STAGES:
        start = time.perf_counter()
        subprocess.run(["neurolearn", stage, str(bids), str(out), "participant", "--device", device, *extra],
                       check=True, stdout=subprocess.DEVNULL)
        seconds[stage] = time.perf_counter() - start
    return seconds


def compare_image(a: Path, b: Path) -> dict[str, object]:
    """Shape/affine agreement and Dice (labels) or correlation (intensities) of two NIfTIs."""
    image_a, image_b = nib.load(a), nib.load(b)
    row: dict[str, object] = {"file": a.name, "same grid": image_a.shape == image_b.shape
                              and bool(np.allclose(image_a.affine, image_b.affine, atol=1e-4))}
    if not row["same grid"]:
        return row
    x, y = np.asanyarray(image_a.dataobj), np.asanyarray(image_b.dataobj)
    if a.name.endswith(LABEL_SUFFIXES):
        labels = [v for v in np.union1d(np.unique(x), np.unique(y)) if v != 0]
        dice = [2 * np.sum((x == v) & (y == v)) / max(1, np.sum(x == v) + np.sum(y == v)) for v in labels]
        row["min Dice"] = float(min(dice, default=1.0))
    else:
        inside = (x != 0) | (y != 0)
        xs, ys = x[inside].astype(np.float64), y[inside].astype(np.float64)
        row["r"] = float(np.corrcoef(xs, ys)[0, 1]) if xs.size > 1 and xs.std() > 0 and ys.std() > 0 else 1.0
        row["max abs diff"] = float(np.max(np.abs(xs - ys))) if xs.size else 0.0
    return row


def compare_iqms(a: Path, b: Path) -> dict[str, object]:
    """The largest relative difference among the numeric IQMs of two JSONs."""
    x, y = json.loads(a.read_text()), json.loads(b.read_text())
    worst, name = 0.0, ""
    for key, value in x.items():
        other = y.get(key)
        if isinstance(value, (int, float)) and isinstance(other, (int, float)):
            relative = abs(value - other) / max(abs(value), abs(other), 1e-12)
            if relative > worst:
                worst, name = relative, key
    return {"file": a.name, "max relative IQM diff": worst, "IQM": name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bids", type=Path, required=True)
    parser.add_argument("--device-a", default="cpu")
    parser.add_argument("--device-b", default="cuda")
    parser.add_argument("--work", type=Path, help="keep the outputs here (default: a temporary folder)")
    parser.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    parser.add_argument("extra", nargs="*", help="options for every stage, after --")
    args = parser.parse_args()
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory(prefix="gpu_") as tmp:
        work = args.work or Path(tmp)
        out_a, out_b = work / args.device_a.replace(":", "_") / "a", work / args.device_b.replace(":", "_") / "b"
        times_a = run_stages(args.bids, out_a, args.device_a, args.extra)
        times_b = run_stages(args.bids, out_b, args.device_b, args.extra)
        images, iqms = [], []
        for a in sorted(out_a.rglob("sub-*/*/*.nii.gz")):
            b = out_b / a.relative_to(out_a)
            images.append(compare_image(a, b) if b.is_file() else {"file": a.name, "same grid": "missing"})
        for a in sorted(out_a.rglob("sub-*/*/*.json")):
            b = out_b / a.relative_to(out_a)
            sidecar_of = [a.with_name(a.name.replace(".json", ext)) for ext in (".nii.gz", ".tsv")]
            if b.is_file() and not any(data.exists() for data in sidecar_of):  # an IQM file, not a sidecar
                iqms.append(compare_iqms(a, b))
    timing_rows = [{"stage": stage, "a": times_a[stage], "b": times_b[stage], "ratio": times_a[stage] / times_b[stage]}
                   for stage in STAGES]
    tables = "\n\n".join([
        markdown_table(timing_rows, ["stage", "a", "b", "ratio"],
                       ["stage", f"{args.device_a} s", f"{args.device_b} s", f"{args.device_a} / {args.device_b}"]),
        markdown_table(images, ["file", "same grid", "min Dice", "r", "max abs diff"]),
        markdown_table(iqms, ["file", "max relative IQM diff", "IQM"]),
    ])
    print(tables)
    if args.results:
        append_results(f"\n## GPU check, {started}\n\n`python benchmarks/gpu.py --bids {args.bids} "
                       f"--device-a {args.device_a} --device-b {args.device_b}`; load average "
                       f"{os.getloadavg()[0]:.1f} at the end.\n\n{tables}\n")


if __name__ == "__main__":
    main()
