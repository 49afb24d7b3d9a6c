"""Benchmark of the qc stage: time per participant, and IQMs against MRIQC's own code.

For each case ``NAME=BIDS_DIR:OUTPUT_DIR:LABEL`` whose smri and fmri outputs
already exist (make them once with ``neurolearn fmri BIDS_DIR OUTPUT_DIR
participant --participant-label LABEL --omp-nthreads 2``), this script

1. times ``neurolearn qc BIDS_DIR OUTPUT_DIR participant`` for that participant
   in a subprocess: wall time, and CPU time of the child (user + system);
2. computes the BOLD IQMs of the participant's first run on the same arrays
   (raw series after the non-steady-state volumes, qc's brain mask) with ours
   and with the established code MRIQC runs: ``mriqc.qc.functional.gsr``,
   ``mriqc.qc.anatomical`` (efc, fber, snr, summary_stats), nipype's
   ``compute_dvars`` and ``TSNR`` (file based: their times include reading the
   series), and AFNI's GCOR formula in numpy; and the T1w summaries, efc, fber,
   cjv, cnr and wm2max on the smri outputs. Values side by side, times and
   ratios (ours / peer; < 1 means ours is faster).

The peer needs MRIQC's and nipype's Python code, e.g. in a venv that sees this
environment's packages::

    python -m venv --system-site-packages /tmp/mriqc-venv
    /tmp/mriqc-venv/bin/pip install --no-deps mriqc==24.0.2
    /tmp/mriqc-venv/bin/pip install nipype statsmodels
    PYTHONPATH=. /tmp/mriqc-venv/bin/python benchmarks/qc.py \\
        --case example=/tmp/bids:/tmp/out:01 --case studyforrest=DATA/studyforrest/bids:/tmp/sf:02

Without it, only our side is reported. Load averages are printed at start and
end of every timing (the machine is shared): compare ratios, not seconds.
With ``--results``, a section is appended to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import datetime as dt
import importlib
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from _tables import append_results

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 30.0


@dataclass(frozen=True)
class Case:
    """One participant whose smri and fmri outputs exist."""

    name: str
    bids: Path
    out: Path
    label: str


def parse_case(text: str) -> Case:
    """``NAME=BIDS_DIR:OUTPUT_DIR:LABEL``."""
    name, _, rest = text.partition("=")
    bids, out, label = rest.split(":")
    return Case(name, Path(bids), Path(out), label.removeprefix("sub-"))


def load() -> str:
    """The 1-minute load average, formatted."""
    return f"{os.getloadavg()[0]:.1f}"


def child_cpu() -> float:
    """CPU seconds (user + system) used so far by finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_stage(case: Case, threads: int) -> dict[str, Any]:
    """Wall and CPU time of ``neurolearn qc ... participant`` for one participant."""
    command = [
        sys.executable, "-m", "neurolearn_cli", "qc", str(case.bids), str(case.out),
        "participant", "--participant-label", case.label, "--omp-nthreads", str(threads),
    ]  # fmt: skip
    start_load, cpu0, wall0 = load(), child_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall, cpu = time.perf_counter() - wall0, child_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(
            f"qc failed on {case.name} (exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    return {"wall": wall, "cpu": cpu, "load": f"{start_load} -> {load()}"}


def timed(function: Callable[[], Any], repeats: int = 1) -> tuple[Any, float, float]:
    """``function()``'s result and its best wall and process CPU time over ``repeats`` calls."""
    best_wall, best_cpu, result = np.inf, np.inf, None
    for _ in range(repeats):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = function()
        best_wall = min(best_wall, time.perf_counter() - wall0)
        best_cpu = min(best_cpu, time.process_time() - cpu0)
    return result, best_wall, best_cpu


def import_mriqc() -> tuple[Any, Any] | None:
    """MRIQC's ``qc.anatomical`` and ``qc.functional`` modules, or None when not installed.

    MRIQC's package ``__init__`` and ``config`` need TemplateFlow and a full
    install; the two IQM modules only need numpy/scipy and a logger, so the
    package and its config are stubbed.
    """
    try:
        spec = importlib.util.find_spec("mriqc")
    except ValueError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    package = types.ModuleType("mriqc")
    package.__path__ = list(spec.submodule_search_locations)
    config = types.ModuleType("mriqc.config")
    config.loggers = types.SimpleNamespace(interface=logging.getLogger("mriqc"))
    package.config = config
    sys.modules.setdefault("mriqc", package)
    sys.modules.setdefault("mriqc.config", config)
    return (
        importlib.import_module("mriqc.qc.anatomical"),
        importlib.import_module("mriqc.qc.functional"),
    )


def gcor_numpy(series: np.ndarray) -> float:
    """AFNI's ``@compute_gcor``: the squared norm of the mean unit-variance series, over T."""
    series = series[series.std(axis=1) > 0].astype(np.float64)
    z = (series - series.mean(axis=1, keepdims=True)) / series.std(axis=1, keepdims=True)
    mean = z.mean(axis=0)
    return float(mean @ mean / mean.size)


def bold_inputs(case: Case) -> dict[str, Any]:
    """The first BOLD run as qc sees it: steady-state series, brain mask, geometry."""
    from neurolearn_cli.fmri.masking import intensity_mask
    from neurolearn_cli.qc.confounds import nonsteady_count

    func = case.bids / f"sub-{case.label}" / "func"
    path = sorted(func.glob(f"sub-{case.label}_*_bold.nii.gz"))[0]
    stem = path.name[: -len("_bold.nii.gz")]
    confounds = case.out / f"sub-{case.label}" / "func" / f"{stem}_desc-confounds_timeseries.tsv"
    table = pd.read_csv(confounds, sep="\t", na_values="n/a")
    dummies = nonsteady_count(table)
    image = nib.load(path)
    data = np.ascontiguousarray(np.asarray(image.dataobj, dtype=np.float32))
    series = torch.from_numpy(data)
    mask = intensity_mask(series[..., dummies:].median(dim=-1).values)
    tr = float(json.loads(path.with_name(f"{stem}_bold.json").read_text())["RepetitionTime"])
    return {
        "path": path,
        "series": series,
        "mask": mask,
        "dummies": dummies,
        "fd": table["framewise_displacement"].to_numpy(float)[dummies + 1 :],
        "spacing": tuple(float(s) for s in nib.affines.voxel_sizes(image.affine)),
        "affine": image.affine,
        "tr": tr,
    }


def ours_bold(inputs: dict[str, Any]) -> dict[str, float]:
    """Our BOLD measures on the shared inputs (the subset MRIQC's code computes too)."""
    from neurolearn_cli.engine.morphology import erode
    from neurolearn_cli.fmri.dvars import compute_dvars
    from neurolearn_cli.qc import functional, measures

    series = inputs["series"][..., inputs["dummies"] :].contiguous()
    mask = inputs["mask"]
    mean = series.mean(dim=-1)
    dvars = compute_dvars(series, mask)
    fg = measures.summary_stats(mean, erode(mask, 1))
    return {
        "tsnr": functional.tsnr(series, mask),
        "dvars_std": float(dvars.std_dvars[1:].mean()),
        "dvars_nstd": float(dvars.dvars[1:].mean()),
        "dvars_vstd": float(functional.voxelwise_std_dvars(series, mask).mean()),
        "gcor": functional.gcor(series, mask),
        "gsr_x": functional.gsr(mean, mask, 0),
        "gsr_y": functional.gsr(mean, mask, 1),
        "efc": measures.efc(mean),
        "fber": measures.fber(mean, mask),
        "snr": measures.snr(fg["median"], fg["stdv"], fg["n"]),
        "summary_fg_median": fg["median"],
        "summary_bg_mad": measures.summary_stats(mean, erode(~mask, 1))["mad"],
    }


def peer_bold(
    inputs: dict[str, Any], mriqc: tuple[Any, Any], files: tuple[Path, Path]
) -> dict[str, float]:
    """The same measures with MRIQC's functions and nipype's DVARS/TSNR (files: series, mask)."""
    from nipype.algorithms.confounds import TSNR, compute_dvars

    anatomical, functional = mriqc
    series = inputs["series"][..., inputs["dummies"] :].numpy()
    mask = inputs["mask"].numpy()
    mean = series.mean(axis=-1)
    stats = anatomical.summary_stats(
        mean, {"fg": mask.astype(np.uint8), "bg": (~mask).astype(np.uint8)}
    )
    dvars_std, dvars_nstd, dvars_vstd = compute_dvars(
        str(files[0]),
        str(files[1]),
        remove_zerovariance=True,  # as ComputeDVARS in MRIQC
    )
    with tempfile.TemporaryDirectory() as work:
        tsnr_file = TSNR(in_file=[str(files[0])]).run(cwd=work).outputs.tsnr_file
        tsnr_map = np.asarray(nib.load(tsnr_file).dataobj)
    return {
        "tsnr": float(np.median(tsnr_map[mask])),
        "dvars_std": float(dvars_std.mean()),
        "dvars_nstd": float(dvars_nstd.mean()),
        "dvars_vstd": float(dvars_vstd.mean()),
        "gcor": gcor_numpy(series[mask]),
        "gsr_x": functional.gsr(mean, mask.astype(np.uint8), "x"),
        "gsr_y": functional.gsr(mean, mask.astype(np.uint8), "y"),
        "efc": anatomical.efc(mean),
        "fber": anatomical.fber(mean, mask.astype(np.uint8)),
        "snr": anatomical.snr(stats["fg"]["median"], stats["fg"]["stdv"], stats["fg"]["n"]),
        "summary_fg_median": stats["fg"]["median"],
        "summary_bg_mad": stats["bg"]["mad"],
    }


def t1w_inputs(case: Case) -> dict[str, Any]:
    """The smri outputs qc reads (bias-corrected T1w, probability maps) and qc's head and air masks."""
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.qc.masks import air_mask, frame_mask, head_mask

    anat, sub, cpu = (
        case.out / f"sub-{case.label}" / "anat",
        f"sub-{case.label}",
        torch.device("cpu"),
    )
    image = load_image(anat / f"{sub}_desc-preproc_T1w.nii.gz", cpu)
    bias = load_image(next(anat.glob(f"{sub}*_desc-biasfield_T1w.nii.gz")), cpu)
    brain = load_image(anat / f"{sub}_desc-brain_mask.nii.gz", cpu).data > 0.5
    probabilities = {
        t.lower(): load_image(anat / f"{sub}_label-{t}_probseg.nii.gz", cpu).data
        for t in ("GM", "WM", "CSF")
    }
    raw = image.data * bias.data
    head = head_mask(raw) | brain
    air = air_mask(raw, head, brain, image.affine.numpy())
    return {
        "t1w": image.data.clamp_min(0.0).contiguous(),
        "spacing": image.spacing,
        "head": head,
        "air": air,
        "frame": frame_mask(image.data),
        "pvms": probabilities,
    }


def _t1w_contrasts(stats: dict[str, dict[str, float]], efc: float, fber: float) -> dict[str, float]:
    from neurolearn_cli.qc import anatomical

    wm, gm = stats["wm"], stats["gm"]
    return {
        "cjv": anatomical.cjv(wm["median"], gm["median"], wm["mad"], gm["mad"]),
        "cnr": anatomical.cnr(
            wm["median"], gm["median"], stats["bg"]["stdv"], wm["stdv"], gm["stdv"]
        ),
        "efc": efc,
        "fber": fber,
        "summary_wm_median": wm["median"],
        "summary_gm_stdv": gm["stdv"],
        "summary_bg_mad": stats["bg"]["mad"],
    }


def ours_t1w(inputs: dict[str, Any]) -> dict[str, float]:
    """Our T1w summaries (thresholded, eroded tissue masks), contrasts, EFC and FBER."""
    from neurolearn_cli.qc import anatomical, measures

    t1w, frame = inputs["t1w"], inputs["frame"]
    masks = anatomical.tissue_masks(inputs["pvms"], inputs["spacing"])
    stats = {name: measures.summary_stats(t1w, mask) for name, mask in masks.items()}
    stats["bg"] = measures.summary_stats(t1w, inputs["air"])
    return _t1w_contrasts(
        stats, measures.efc(t1w, frame), measures.fber(t1w, inputs["head"], frame)
    )


def peer_t1w(inputs: dict[str, Any], mriqc: tuple[Any, Any]) -> dict[str, float]:
    """MRIQC 24's functions (probability-weighted summaries) on the same T1w, maps and masks."""
    anatomical, _ = mriqc
    t1w = inputs["t1w"].numpy()
    pvms = {name: p.numpy() for name, p in inputs["pvms"].items()}
    pvms["bg"] = inputs["air"].numpy().astype(np.float32)
    stats = anatomical.summary_stats(t1w, pvms)
    head = inputs["head"].numpy().astype(np.uint8)
    frame = inputs["frame"].numpy().astype(np.uint8)
    return _t1w_contrasts(stats, anatomical.efc(t1w, frame), anatomical.fber(t1w, head, frame))


def write_series(inputs: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """The steady-state series and mask as NIfTI, for nipype's file-based DVARS and TSNR."""
    series = inputs["series"][..., inputs["dummies"] :].numpy()
    paths = folder / "bold.nii.gz", folder / "mask.nii.gz"
    nib.save(nib.Nifti1Image(series, inputs["affine"]), paths[0])
    nib.save(nib.Nifti1Image(inputs["mask"].numpy().astype(np.uint8), inputs["affine"]), paths[1])
    return paths


def compare(
    label: str, ours: Callable[[], dict[str, float]], peer: Callable[[], dict[str, float]] | None
) -> tuple[list[str], list[str]]:
    """Timing row and value rows (markdown) for one modality of one case."""
    start = load()
    values, wall, cpu = timed(ours)
    if peer is None:
        return [f"| {label} | {wall:.2f} | {cpu:.2f} | – | – | – | {start} -> {load()} |"], []
    reference, peer_wall, peer_cpu = timed(peer)
    timing = (
        f"| {label} | {wall:.2f} | {cpu:.2f} | {peer_wall:.2f} | {peer_cpu:.2f} "
        f"| {wall / peer_wall:.2f} | {start} -> {load()} |"
    )
    rows = [
        f"| {label} | {name} | {values[name]:.4g} | {reference[name]:.4g} "
        f"| {(values[name] - reference[name]) / abs(reference[name]) * 100 if reference[name] else np.nan:+.1f} |"
        for name in values
    ]
    return [timing], rows


def compare_measures(case: Case, mriqc: tuple[Any, Any] | None) -> tuple[list[str], list[str]]:
    """Timing and value rows of the BOLD and T1w measures, ours against MRIQC's code."""
    bold = bold_inputs(case)
    with tempfile.TemporaryDirectory() as folder:
        files = write_series(bold, Path(folder))
        peer = (lambda: peer_bold(bold, mriqc, files)) if mriqc else None
        bold_timing, bold_values = compare(f"{case.name} BOLD", lambda: ours_bold(bold), peer)
    anat = t1w_inputs(case)
    peer = (lambda: peer_t1w(anat, mriqc)) if mriqc else None
    t1w_timing, t1w_values = compare(f"{case.name} T1w", lambda: ours_t1w(anat), peer)
    return bold_timing + t1w_timing, bold_values + t1w_values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--case",
        action="append",
        type=parse_case,
        required=True,
        help="NAME=BIDS_DIR:OUTPUT_DIR:LABEL, smri and fmri outputs present",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mriqc = import_mriqc()
    stage_rows, timing_rows, value_rows = [], [], []
    for case in args.case:
        stage = time_stage(case, args.threads)
        # on this shared machine wall time measures the load; on an idle 2-core
        # machine the wall time is at most about the CPU time, so CPU is what is checked
        verdict = "yes" if stage["cpu"] <= TARGET_S else "**no**"
        stage_rows.append(
            f"| {case.name} | sub-{case.label} | {stage['wall']:.1f} | {stage['cpu']:.1f} "
            f"| {verdict} | {stage['load']} |"
        )
        print(stage_rows[-1], flush=True)
        timing, values = compare_measures(case, mriqc)
        timing_rows += timing
        value_rows += values
        print("\n".join(timing_rows[-2:]), flush=True)
    report = "\n".join(
        [
            "| case | participant | qc wall s | qc CPU s | CPU <= 30 s | load 1-min start -> end |",
            "|---|---|---|---|---|---|",
            *stage_rows,
            "",
            "| measures on the same arrays | ours wall s | ours CPU s | MRIQC/nipype wall s "
            "| MRIQC/nipype CPU s | wall ratio ours/peer | load |",
            "|---|---|---|---|---|---|---|",
            *timing_rows,
            "",
            "| case | IQM | ours | MRIQC/nipype | difference % |",
            "|---|---|---|---|---|",
            *value_rows,
        ]
    )
    print(report)
    if args.results:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        versions = f"torch {torch.__version__} ({args.threads} threads), numpy {np.__version__}"
        append_results(f"\n## qc (issue 6), {stamp}\n\n`{' '.join(sys.argv)}`; {versions}.\n\n{report}")


if __name__ == "__main__":
    main()
