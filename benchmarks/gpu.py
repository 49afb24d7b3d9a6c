"""GPU check: smri, fmri and qc (and the surfaces) with ``--device cuda`` against the CPU run, stage by stage.

Runs each stage in a fresh process on the same BIDS data once per device,
into two output folders, timing each stage (wall seconds, from the process's
start to its end). Then compares every output the stages wrote: NIfTIs by
shape and affine, label images (masks, ``dseg``) by Dice per label, the others
by Pearson correlation over the voxels where either is non-zero; GIFTI
surfaces by the distance between corresponding vertices, GIFTI shapes by
correlation; IQM JSONs by the largest relative difference. Prints the tables,
writes them to ``--tables`` and appends them to ``benchmarks/RESULTS.md`` with
``--results``. Run it whenever a GPU is lent::

    python benchmarks/gpu.py --bids ../shared/data/studyforrest/bids --results

A device lease is short, so ``--concurrent`` runs the two devices side by
side, each pinned to half of this process's CPUs with ``--omp-nthreads`` set
to that half (the times are then those of half the machine), and
``--deadline-s`` stops whatever still runs at that many seconds from the
start: a stage that fails or is stopped is reported with the end of its log,
and the comparison covers what both runs wrote. ``--device-a cpu --device-b
cpu`` checks the script itself with no GPU: every Dice and correlation is
then 1. ``gpu_prepare.sh`` readies a device run, ``gpu_run.sh`` makes it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from _tables import append_results, markdown_table

STAGES = ("smri", "fmri", "qc")
LABEL_SUFFIXES = ("_mask.nii.gz", "_dseg.nii.gz")
LOG_TAIL_LINES = 15


def run_side(bids: Path, out: Path, device: str, stages: Sequence[str], extra: Sequence[str],
             cpus: set[int] | None, deadline: float) -> dict[str, dict[str, object]]:
    """Each stage in a fresh process on ``device``, until ``deadline``: seconds and status by stage.

    A stage runs as ``neurolearn BIDS OUT participant --stages STAGE``, so the
    stages it needs are found current and skipped; its log goes to
    ``OUT/../STAGE.log``. After a stage fails or is stopped the later ones are
    not started (they read its outputs).
    """
    threads = ["--omp-nthreads", str(len(cpus))] if cpus else []
    rows: dict[str, dict[str, object]] = {}
    for stage in stages:
        remaining = deadline - time.monotonic()
        if remaining < 1:
            rows[stage] = {"status": "not started (deadline)"}
            continue
        log = out.parent / f"{stage}.log"
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "neurolearn_cli", str(bids), str(out), "participant", "--stages", stage,
                   "--device", device, "--debug", *threads, *extra]
        start = time.perf_counter()
        with log.open("w") as stream:
            process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT,
                                       preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
            try:
                code = process.wait(timeout=remaining)
                status = "ok" if code == 0 else f"exit {code}"
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                status = "stopped (deadline)"
        rows[stage] = {"seconds": time.perf_counter() - start, "status": status}
        if status != "ok":
            rows[stage]["log"] = "\n".join(log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
            break
    return rows


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
        row.update(correlation(x, y))
    return row


def correlation(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Pearson r and largest absolute difference over the elements where either is non-zero."""
    inside = (x != 0) | (y != 0)
    xs, ys = x[inside].astype(np.float64), y[inside].astype(np.float64)
    r = float(np.corrcoef(xs, ys)[0, 1]) if xs.size > 1 and xs.std() > 0 and ys.std() > 0 else 1.0
    return {"r": r, "max abs diff": float(np.max(np.abs(xs - ys))) if xs.size else 0.0}


def compare_gifti(a: Path, b: Path) -> dict[str, object]:
    """Two GIFTIs: vertex distances (surfaces, when the meshes match) or correlation (shapes)."""
    arrays_a = [d.data for d in nib.load(a).darrays]
    arrays_b = [d.data for d in nib.load(b).darrays]
    row: dict[str, object] = {"file": a.name, "same grid": [x.shape for x in arrays_a] == [y.shape for y in arrays_b]}
    if not row["same grid"]:
        return row
    if a.name.endswith(".surf.gii"):
        distance = np.linalg.norm(arrays_a[0].astype(np.float64) - arrays_b[0], axis=1)
        row["mean vertex mm"], row["max vertex mm"] = float(distance.mean()), float(distance.max())
        row["same faces"] = bool(np.array_equal(arrays_a[1], arrays_b[1]))
    else:
        row.update(correlation(np.concatenate([x.ravel() for x in arrays_a]),
                               np.concatenate([y.ravel() for y in arrays_b])))
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


def compare_outputs(out_a: Path, out_b: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Rows for every image and surface, and for every IQM file, that run A wrote."""
    images: list[dict[str, object]] = []
    for a in sorted([*out_a.rglob("sub-*/*/*.nii.gz"), *out_a.rglob("sub-*/*/*.gii")]):
        b = out_b / a.relative_to(out_a)
        if not b.is_file():
            images.append({"file": a.name, "same grid": "missing"})
        else:
            images.append(compare_gifti(a, b) if a.name.endswith(".gii") else compare_image(a, b))
    iqms = []
    for a in sorted(out_a.rglob("sub-*/*/*.json")):
        b = out_b / a.relative_to(out_a)
        data = [p for p in a.parent.glob(glob.escape(a.name.removesuffix(".json")) + ".*") if p != a]
        if b.is_file() and not data:  # an IQM file, not a sidecar
            iqms.append(compare_iqms(a, b))
    return images, iqms


def machine() -> str:
    """The CPUs this process may use and, where torch sees one, the GPU."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.node()}: {len(os.sched_getaffinity(0))} CPUs, {gpu}, torch {torch.__version__}, "
            f"Python {platform.python_version()}")


def split_cpus(concurrent: bool) -> tuple[set[int] | None, set[int] | None]:
    """Half of this process's CPUs for each run when they run side by side, else no pinning."""
    if not concurrent:
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    half = max(1, len(cpus) // 2)
    return set(cpus[:half]), set(cpus[half:] or cpus[:half])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bids", type=Path, required=True)
    parser.add_argument("--device-a", default="cpu")
    parser.add_argument("--device-b", default="cuda")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=[*STAGES, "surfaces"],
                        help="the stages to run, in this order (default: %(default)s)")
    parser.add_argument("--concurrent", action="store_true", help="run both devices at once on half the CPUs each")
    parser.add_argument("--deadline-s", type=float, default=float("inf"), help="stop every run this many seconds in")
    parser.add_argument("--work", type=Path, help="keep the outputs and logs here (default: a temporary folder)")
    parser.add_argument("--tables", type=Path, help="also write the tables to this file")
    parser.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    parser.add_argument("extra", nargs="*", help="options for every stage, after --")
    args = parser.parse_args()
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    deadline = time.monotonic() + args.deadline_s
    stages = tuple(args.stages)
    with tempfile.TemporaryDirectory(prefix="gpu_") as tmp:
        work = args.work or Path(tmp)
        sides = {"a": (args.device_a, work / "a" / "out"), "b": (args.device_b, work / "b" / "out")}
        cpus = dict(zip(sides, split_cpus(args.concurrent), strict=True))
        timings: dict[str, dict[str, dict[str, object]]] = {}

        def run(side: str) -> None:
            device, out = sides[side]
            timings[side] = run_side(args.bids, out, device, stages, args.extra, cpus[side], deadline)

        if args.concurrent:
            workers = [threading.Thread(target=run, args=(side,)) for side in sides]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        else:
            for side in sides:
                run(side)
        images, iqms = compare_outputs(sides["a"][1], sides["b"][1])
    timing_rows = []
    for stage in stages:
        a, b = timings["a"].get(stage, {}), timings["b"].get(stage, {})
        ratio = a["seconds"] / b["seconds"] if a.get("status") == b.get("status") == "ok" else None  # type: ignore[operator]
        timing_rows.append({"stage": stage, "a": a.get("seconds"), "b": b.get("seconds"), "ratio": ratio,
                            "a status": a.get("status", "not started"), "b status": b.get("status", "not started")})
    failures = "\n\n".join(f"{side} {stage} ({row['status']}), end of its log:\n```\n{row['log']}\n```"
                           for side in sides for stage, row in timings[side].items() if "log" in row)
    a_name, b_name = args.device_a, args.device_b
    tables = "\n\n".join(part for part in [
        markdown_table(timing_rows, ["stage", "a", "b", "ratio", "a status", "b status"],
                       ["stage", f"{a_name} s", f"{b_name} s", f"{a_name} / {b_name}", f"{a_name}", f"{b_name}"]),
        markdown_table(images, ["file", "same grid", "min Dice", "r", "max abs diff", "mean vertex mm",
                                "max vertex mm", "same faces"]),
        markdown_table(iqms, ["file", "max relative IQM diff", "IQM"]),
        failures,
    ] if part)
    heading = (f"\n## GPU check, {started}\n\n`python benchmarks/gpu.py --bids {args.bids} --device-a {a_name} "
               f"--device-b {b_name} --stages {' '.join(stages)}{' --concurrent' if args.concurrent else ''}`"
               f" on {machine()}; load average {os.getloadavg()[0]:.1f} at the end.\n\n")
    print(heading + tables)
    if args.tables:
        args.tables.write_text(heading + tables + "\n")
    if args.results:
        append_results(heading + tables + "\n")


if __name__ == "__main__":
    main()
