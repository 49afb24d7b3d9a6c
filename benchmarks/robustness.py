"""Completion of the smri stage on every real T1w of the shared data and on perturbed copies of each.

Run ``python benchmarks/robustness.py [--datasets aomic xa30] [--cases original stripped ...]
[--step-mm 2] [--deepbet] [--results]``. Each case is a one-participant BIDS tree
run through ``neurolearn smri`` in a child process (``--omp-nthreads 2``), as a
user would run it; its exit code is the completion. Cases:

* ``original``: the T1w as stored (every STEP-th voxel with ``--step-mm``: the
  largest integer step keeping voxels at most that size), the baseline of the others;
* ``thick``: slices along the axis nearest superior-inferior averaged to 5 mm
  (the nearest multiple of the voxel size), in-plane unchanged;
* ``stripped``: multiplied by a brain mask: fMRIPrep's for aomic; for the
  others (no reference) deepbet's on the original when ``--deepbet`` ran it, else ours;
* ``lesion``: a 12 mm-radius sphere, 25 mm right of and 10 mm above the
  original mask's centroid, set to a third of the brain's median intensity,
  with its ``label-lesion_roi`` mask beside the T1w;
* ``rotated``: the header's affine rotated 30 degrees about the image centre
  (left-right axis), the voxels unchanged;
* ``bias``: multiplied by a smooth field ranging about 0.5 to 2;
* ``noise``: Rician noise added so the noise standard deviation doubles (half
  the SNR); the original's is estimated from neighbouring-voxel differences
  inside the original run's white matter (eroded by a voxel), where the
  image holds no edges;
* ``heavy_noise``: the same with the noise standard deviation times
  ``HEAVY_NOISE_FACTOR`` (an SNR of about 6 to 8 on the real scans);
* ``cropped``: every slice more than 30 mm below the head's top kept, the rest cut;
* ``neck``: the field of view extended 60 mm downwards by repeating the lowest
  slice with noise (a neck-to-vertex acquisition).

Measured per case: exit code and the failure line, wall time, brain-mask
Dice against the original run within the case's field of view (world
coordinates, the rotation undone), GM and WM volume change against the
original (morph table), the normalization similarity and mask-border fraction
(QC). aomic's masks are also compared with fMRIPrep's and FreeSurfer's.
With ``--deepbet`` (the ``deepbet`` package importable, e.g. from a scratch
venv with system site packages), its model runs on the same input on the CPU
with 2 threads: time, Dice against its own original mask and against ours,
and aomic's references. Each case's numbers are kept in
``WORK/<dataset>/<case>/result.json``, so an interrupted run resumes
(``--fresh`` recomputes).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from _tables import append_results, markdown_table
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", ROOT.parent / "shared" / "data"))
AOMIC_REFERENCE = {
    "fMRIPrep": DATA / "aomic/reference/fmriprep/sub-0001/anat/sub-0001_desc-brain_mask.nii.gz",
    "FreeSurfer": DATA / "aomic/reference/freesurfer/sub-0001/mri/brainmask.mgz",
}
THICK_MM = 5.0
LESION_RADIUS_MM = 12.0
ROTATION_DEG = 30.0
CROP_BELOW_TOP_MM = 30.0
NECK_MM = 60.0
HEAVY_NOISE_FACTOR = 8.0
CASES = ("original", "thick", "stripped", "lesion", "rotated", "bias", "noise", "heavy_noise", "cropped", "neck")


@dataclass(frozen=True)
class Dataset:
    """One real T1w: its BIDS root, participant label and path inside the root."""

    root: Path
    label: str
    relpath: str


DATASETS = {
    "aomic": Dataset(DATA / "aomic/bids", "0001", "sub-0001/anat/sub-0001_T1w.nii.gz"),
    "studyforrest": Dataset(DATA / "studyforrest/bids", "02", "sub-02/anat/sub-02_T1w.nii.gz"),
    "xa30": Dataset(DATA / "xa30/bids", "01", "sub-01/anat/sub-01_acq-tfl_T1w.nii.gz"),
}


@dataclass(frozen=True)
class Volume:
    """Voxels (float32) and their voxel-to-world affine."""

    data: np.ndarray
    affine: np.ndarray


def load(path: Path) -> Volume:
    image = nib.load(path)
    return Volume(np.asanyarray(image.dataobj).astype(np.float32), image.affine.astype(np.float64))


def decimated(volume: Volume, step_mm: float | None) -> Volume:
    """Every STEP-th voxel, STEP the largest integer keeping the voxels at most ``step_mm`` (1 without it)."""
    spacing = nib.affines.voxel_sizes(volume.affine)
    step = max(1, math.floor(step_mm / float(spacing.max()) + 1e-3)) if step_mm else 1
    if step == 1:
        return volume
    affine = volume.affine.copy()
    affine[:3, :3] *= step
    return Volume(np.ascontiguousarray(volume.data[::step, ::step, ::step]), affine)


def superior_axis(affine: np.ndarray) -> tuple[int, int]:
    """The voxel axis nearest world z and its direction (+1 when the index grows upwards)."""
    axis = int(np.argmax(np.abs(affine[2, :3])))
    return axis, int(np.sign(affine[2, axis]))


def head_mask(data: np.ndarray) -> np.ndarray:
    """Voxels brighter than a tenth of the 99th percentile (the head, roughly)."""
    return data > 0.1 * np.percentile(data, 99)


def slab(volume: Volume, axis: int, start: int, stop: int) -> Volume:
    """Voxels ``start:stop`` along ``axis``, with the affine moved to the new first voxel."""
    index = [slice(None)] * 3
    index[axis] = slice(start, stop)
    origin = np.zeros(3)
    origin[axis] = start
    affine = volume.affine.copy()
    affine[:3, 3] = nib.affines.apply_affine(volume.affine, origin)
    return Volume(np.ascontiguousarray(volume.data[tuple(index)]), affine)


def thick(volume: Volume, _: Context) -> Volume:
    axis, _direction = superior_axis(volume.affine)
    spacing = float(nib.affines.voxel_sizes(volume.affine)[axis])
    factor = max(1, round(THICK_MM / spacing))
    n = volume.data.shape[axis] // factor * factor
    cut = slab(volume, axis, 0, n)
    shape = list(cut.data.shape)
    shape[axis:axis + 1] = [n // factor, factor]
    data = cut.data.reshape(shape).mean(axis=axis + 1)
    scale = np.eye(4)
    scale[axis, axis] = factor
    scale[axis, 3] = (factor - 1) / 2
    return Volume(data.astype(np.float32), cut.affine @ scale)


def stripped(volume: Volume, context: Context) -> Volume:
    return Volume(volume.data * (context.brain_mask > 0.5), volume.affine)


def lesion_sphere(volume: Volume, context: Context) -> np.ndarray:
    """Boolean sphere of ``LESION_RADIUS_MM`` right of and above the original mask's centroid."""
    centroid = nib.affines.apply_affine(volume.affine, np.argwhere(context.brain_mask > 0.5).mean(axis=0))
    centre = centroid + np.array([25.0, 0.0, 10.0])
    ijk = np.indices(volume.data.shape).reshape(3, -1).T
    world = nib.affines.apply_affine(volume.affine, ijk)
    return (np.linalg.norm(world - centre, axis=1) <= LESION_RADIUS_MM).reshape(volume.data.shape)


def lesion(volume: Volume, context: Context) -> Volume:
    sphere = lesion_sphere(volume, context)
    level = float(np.median(volume.data[context.brain_mask > 0.5])) / 3
    data = volume.data.copy()
    data[sphere] = level * (1 + 0.05 * context.rng.standard_normal(int(sphere.sum())))
    return Volume(data, volume.affine)


def rotation(volume: Volume) -> np.ndarray:
    """World-to-world rotation of ``ROTATION_DEG`` about the left-right axis through the image centre."""
    centre = nib.affines.apply_affine(volume.affine, (np.array(volume.data.shape) - 1) / 2)
    angle = math.radians(ROTATION_DEG)
    matrix = np.eye(4)
    matrix[1:3, 1:3] = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    shift, back = np.eye(4), np.eye(4)
    shift[:3, 3], back[:3, 3] = -centre, centre
    return back @ matrix @ shift


def rotated(volume: Volume, _: Context) -> Volume:
    return Volume(volume.data, rotation(volume) @ volume.affine)


def bias(volume: Volume, _: Context) -> Volume:
    ijk = np.indices(volume.data.shape, dtype=np.float32)
    unit = [2 * ijk[a] / max(volume.data.shape[a] - 1, 1) - 1 for a in range(3)]
    field = np.exp(0.5 * unit[0] + 0.3 * unit[1] ** 2 - 0.2 * unit[2])
    return Volume((volume.data * field).astype(np.float32), volume.affine)


def noise_sd(data: np.ndarray, white_matter: np.ndarray) -> float:
    """Noise standard deviation from neighbouring-voxel differences inside boolean ``white_matter``.

    Robust (MAD / sqrt 2) and taken where both voxels are white matter: a
    difference across a tissue edge measures anatomy, not noise (over the
    whole head it overstated the noise 5 to 8 times at 2 mm).
    """
    inner = ndimage.binary_erosion(white_matter)
    differences = []
    for axis in range(3):
        both = np.take(inner, range(1, data.shape[axis]), axis=axis) & np.take(inner, range(data.shape[axis] - 1),
                                                                                   axis=axis)
        differences.append(np.diff(data, axis=axis)[both])
    difference = np.concatenate(differences)
    return float(1.4826 * np.median(np.abs(difference - np.median(difference))) / math.sqrt(2))


def with_rician_noise(volume: Volume, context: Context, factor: float) -> Volume:
    """``volume`` with Rician noise added so its noise standard deviation is ``factor`` times the original's."""
    sd = math.sqrt(factor**2 - 1.0) * noise_sd(volume.data, context.white_matter)
    real = volume.data + sd * context.rng.standard_normal(volume.data.shape)
    imaginary = sd * context.rng.standard_normal(volume.data.shape)
    return Volume(np.hypot(real, imaginary).astype(np.float32), volume.affine)


def noise(volume: Volume, context: Context) -> Volume:
    return with_rician_noise(volume, context, 2.0)


def heavy_noise(volume: Volume, context: Context) -> Volume:
    return with_rician_noise(volume, context, HEAVY_NOISE_FACTOR)


def cropped(volume: Volume, _: Context) -> Volume:
    axis, direction = superior_axis(volume.affine)
    other = tuple(a for a in range(3) if a != axis)
    rows = np.flatnonzero(head_mask(volume.data).any(axis=other))
    spacing = float(nib.affines.voxel_sizes(volume.affine)[axis])
    keep = round(CROP_BELOW_TOP_MM / spacing)
    if direction > 0:
        return slab(volume, axis, 0, int(rows.max()) + 1 - keep)
    return slab(volume, axis, int(rows.min()) + keep, volume.data.shape[axis])


def neck(volume: Volume, context: Context) -> Volume:
    axis, direction = superior_axis(volume.affine)
    spacing = float(nib.affines.voxel_sizes(volume.affine)[axis])
    n = round(NECK_MM / spacing)
    lowest = np.take(volume.data, [0 if direction > 0 else -1], axis=axis)
    shape = list(volume.data.shape)
    shape[axis] = n
    pad = np.broadcast_to(lowest, shape) * (1 + 0.05 * context.rng.standard_normal(shape))
    parts = [pad, volume.data] if direction > 0 else [volume.data, pad]
    affine = volume.affine.copy()
    if direction > 0:
        shift = np.zeros(3)
        shift[axis] = -n
        affine[:3, 3] = nib.affines.apply_affine(volume.affine, shift)
    return Volume(np.concatenate(parts, axis=axis).astype(np.float32), affine)


@dataclass
class Context:
    """What a perturbation may use: the original run's brain mask and white matter (on the input grid), a seeded
    generator."""

    brain_mask: np.ndarray
    white_matter: np.ndarray
    rng: np.random.Generator


PERTURB: dict[str, Callable[[Volume, Context], Volume]] = {
    "thick": thick, "stripped": stripped, "lesion": lesion, "rotated": rotated, "bias": bias,
    "noise": noise, "heavy_noise": heavy_noise, "cropped": cropped, "neck": neck,
}


def resampled(mask: Volume, target: Volume, world_fix: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``mask`` (nearest) and its field of view on ``target``'s grid, by world coordinates.

    ``world_fix`` maps ``mask``'s world to ``target``'s (undoes a header rotation).
    """
    affine = mask.affine if world_fix is None else world_fix @ mask.affine
    ijk = np.indices(target.data.shape).reshape(3, -1).T
    source = np.rint(nib.affines.apply_affine(np.linalg.inv(affine) @ target.affine, ijk)).astype(np.int64)
    inside = np.all((source >= 0) & (source < np.array(mask.data.shape)), axis=1)
    values = np.zeros(len(ijk), dtype=bool)
    values[inside] = mask.data[tuple(source[inside].T)] > 0.5
    return values.reshape(target.data.shape), inside.reshape(target.data.shape)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum() + b.sum())
    return 2 * int((a & b).sum()) / total if total else float("nan")


def dice_on(reference: Volume, mask: Volume, world_fix: np.ndarray | None = None) -> float:
    """Dice of ``mask`` with ``reference`` inside ``mask``'s field of view, on ``reference``'s grid."""
    values, fov = resampled(mask, reference, world_fix)
    return dice(reference.data[fov] > 0.5, values[fov])


def write_case(volume: Volume, dataset: Dataset, bids: Path, roi: np.ndarray | None) -> None:
    """A one-participant BIDS tree holding the case's T1w (and its lesion roi)."""
    target = bids / dataset.relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    (bids / "dataset_description.json").write_text(json.dumps({"Name": "robustness", "BIDSVersion": "1.9.0"}))
    nib.save(nib.Nifti1Image(volume.data, volume.affine), target)
    if roi is not None:
        name = f"sub-{dataset.label}_label-lesion_roi.nii.gz"
        nib.save(nib.Nifti1Image(roi.astype(np.uint8), volume.affine), target.parent / name)


def run_smri(bids: Path, out: Path, label: str) -> tuple[int, float, str]:
    """``neurolearn smri`` on ``bids`` in a child process: exit code, wall seconds, last line of stderr."""
    command = [sys.executable, "-m", "neurolearn_cli", "smri", str(bids), str(out), "participant",
               "--participant-label", label, "--omp-nthreads", "2", "--no-resume"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return done.returncode, time.perf_counter() - start, lines[-1] if lines else ""


def failure_reason(out: Path, label: str) -> str | None:
    """The reason the run's status file gives for a participant that did not finish ("" when it did).

    None when there is no status file (the run stopped before the participant, e.g. at validation).
    """
    status = out / "logs" / "status" / f"sub-{label}.json"
    if not status.is_file():
        return None
    payload = json.loads(status.read_text())
    return "" if payload["status"] == "done" else str(payload.get("reason", ""))


def our_outputs(out: Path, label: str) -> tuple[Volume, dict[str, float], dict[str, Any]]:
    """The run's brain mask, global volumes (mL) and QC numbers."""
    anat = out / f"sub-{label}" / "anat"
    mask = load(anat / f"sub-{label}_desc-brain_mask.nii.gz")
    morph = next(anat.glob("*_stat-gmvolume_morph.tsv"))
    header, row = morph.read_text().splitlines()[:2]
    volumes = {k: float(v) for k, v in zip(header.split("\t"), row.split("\t"), strict=True) if k in ("GM", "WM", "CSF", "TIV")}
    qc = json.loads(morph.with_suffix(".json").read_text())["QC"]
    return mask, volumes, qc


def original_labels(out: Path, label: str, tissue: str) -> Volume:
    """The run's ``tissue`` (GM, WM or CSF) voxels of its ``dseg`` as a 0/1 volume."""
    dseg = load(out / f"sub-{label}" / "anat" / f"sub-{label}_dseg.nii.gz")
    value = {"GM": 1, "WM": 2, "CSF": 3}[tissue]
    return Volume((dseg.data == value).astype(np.float32), dseg.affine)


def run_deepbet(path: Path) -> tuple[Volume, float]:
    """deepbet's mask of the T1w at ``path`` on the CPU (2 threads) and its wall seconds."""
    # a benchmark-only package: pip install deepbet in a scratch venv with system site packages
    import torch
    from deepbet import BrainExtraction

    torch.set_num_threads(2)
    start = time.perf_counter()
    _, mask, _ = BrainExtraction(no_gpu=True).run(nib.load(path))
    wall = time.perf_counter() - start
    return Volume(np.asanyarray(mask.dataobj).astype(np.float32), mask.affine), wall


def references() -> dict[str, Volume]:
    """aomic's fMRIPrep and FreeSurfer brain masks."""
    masks = {}
    for name, path in AOMIC_REFERENCE.items():
        volume = load(path)
        masks[name] = Volume((volume.data > 0).astype(np.float32), volume.affine)
    return masks


def stripping_mask(name: str, baseline: Path) -> Volume | None:
    """The mask the ``stripped`` case applies: fMRIPrep's for aomic, else deepbet's original one if there is one."""
    if name == "aomic":
        return references()["fMRIPrep"]
    deepbet_mask = baseline / "deepbet_mask.nii.gz"
    return load(deepbet_mask) if deepbet_mask.is_file() else None


def measure(name: str, case: str, work: Path, step_mm: float | None, with_deepbet: bool) -> dict[str, Any]:
    """Build the case, run it, compare with the original; the numbers also go to ``result.json``."""
    dataset = DATASETS[name]
    source = decimated(load(dataset.root / dataset.relpath), step_mm)
    here = work / name / case
    baseline = work / name / "original"
    row: dict[str, Any] = {"dataset": name, "case": case, "shape": "x".join(map(str, source.data.shape)),
                           "voxel_mm": "x".join(f"{s:.1f}" for s in nib.affines.voxel_sizes(source.affine))}
    roi, world_fix = None, None
    if case == "original":
        volume = source
    else:
        original_mask, _, _ = our_outputs(baseline / "out", dataset.label)
        if case == "stripped":
            original_mask = stripping_mask(name, baseline) or original_mask
        on_source, _ = resampled(original_mask, source)
        white_matter, _ = resampled(original_labels(baseline / "out", dataset.label, "WM"), source)
        context = Context(on_source.astype(np.float32), white_matter, np.random.default_rng(0))
        volume = PERTURB[case](source, context)
        if case == "lesion":
            roi = lesion_sphere(source, context)
        if case == "rotated":
            world_fix = np.linalg.inv(rotation(source))
    row["voxel_mm"] = "x".join(f"{s:.1f}" for s in nib.affines.voxel_sizes(volume.affine))
    write_case(volume, dataset, here / "bids", roi)
    code, wall, last_error = run_smri(here / "bids", here / "out", dataset.label)
    reason = failure_reason(here / "out", dataset.label)
    row.update(exit=code, wall_s=wall, failure=last_error if reason is None else reason)
    if code == 0:
        mask, volumes, qc = our_outputs(here / "out", dataset.label)
        row.update(syn_similarity=qc.get("syn_similarity"), border=qc.get("mask_border_fraction"),
                   TIV_ml=volumes["TIV"])
        if case != "original":
            original_mask, original_volumes, _ = our_outputs(baseline / "out", dataset.label)
            row["dice_vs_original"] = dice_on(original_mask, mask, world_fix)
            for tissue in ("GM", "WM", "CSF"):
                row[f"{tissue}_change_pct"] = 100 * (volumes[tissue] / original_volumes[tissue] - 1)
        if name == "aomic":
            for ref_name, ref in references().items():
                row[f"ours_vs_{ref_name}"] = dice_on(ref, mask, world_fix)
    if with_deepbet:
        input_path = here / "bids" / dataset.relpath
        bet_mask, bet_wall = run_deepbet(input_path)
        nib.save(nib.Nifti1Image(bet_mask.data.astype(np.uint8), bet_mask.affine), here / "deepbet_mask.nii.gz")
        row["deepbet_s"] = bet_wall
        if case != "original":
            row["deepbet_dice_vs_original"] = dice_on(load(baseline / "deepbet_mask.nii.gz"), bet_mask, world_fix)
        if code == 0:
            row["deepbet_vs_ours"] = dice_on(our_outputs(here / "out", dataset.label)[0], bet_mask)
        if name == "aomic":
            for ref_name, ref in references().items():
                row[f"deepbet_vs_{ref_name}"] = dice_on(ref, bet_mask, world_fix)
    (here / "result.json").write_text(json.dumps(row, indent=1))
    return row


COLUMNS = ("dataset", "case", "voxel_mm", "exit", "wall_s", "dice_vs_original", "GM_change_pct", "WM_change_pct",
           "CSF_change_pct", "TIV_ml", "syn_similarity", "border", "ours_vs_fMRIPrep", "ours_vs_FreeSurfer", "deepbet_s",
           "deepbet_dice_vs_original", "deepbet_vs_ours", "deepbet_vs_fMRIPrep", "deepbet_vs_FreeSurfer", "failure")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=sorted(DATASETS))
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES),
                        help="cases to run (the original always runs first when it has no result)")
    parser.add_argument("--step-mm", type=float, default=None,
                        help="take every STEP-th voxel, STEP the largest keeping voxels at most this size")
    parser.add_argument("--work", type=Path, default=Path("/tmp/neurolearn-robustness"))
    parser.add_argument("--deepbet", action="store_true", help="also run deepbet's model on every case")
    parser.add_argument("--fresh", action="store_true", help="recompute the --cases that have a result")
    parser.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    work = args.work / (f"step{args.step_mm:g}mm" if args.step_mm else "full")
    rows = []
    for name in args.datasets:
        cases = list(dict.fromkeys(["original", *args.cases]))
        for case in cases:
            result = work / name / case / "result.json"
            if result.is_file() and not (args.fresh and case in args.cases):
                row = json.loads(result.read_text())
                reason = failure_reason(work / name / case / "out", DATASETS[name].label)
                row["failure"] = row.get("failure", "") if reason is None else reason
            else:
                print(f"{name} {case} ...", flush=True)
                row = measure(name, case, work, args.step_mm, args.deepbet)
            if case in args.cases:
                rows.append(row)
            print({k: row.get(k) for k in COLUMNS if k in row}, flush=True)
    table = markdown_table(rows, COLUMNS)
    load_avg = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    text = (f"\n## robustness (issue 19)\n\n{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
            f"`python benchmarks/robustness.py {' '.join(sys.argv[1:])}`; load average at the end {load_avg}; "
            f"voxels: {'every voxel' if not args.step_mm else f'at most {args.step_mm:g} mm by decimation'}. "
            "exit: the `neurolearn smri` exit code; dice_vs_original: brain mask against the original run's "
            "inside the case's field of view; changes in % of the original's volumes; border: the fraction of "
            "the grid's face voxels in the mask; deepbet columns: its model on the same input (CPU, 2 threads).\n\n"
            f"{table}\n")
    print(text)
    if args.results:
        append_results(text)


if __name__ == "__main__":
    main()
