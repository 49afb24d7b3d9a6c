"""Accuracy and speed of the fmri stage on real data (issue 5).

Run ``python benchmarks/fmri.py [--motion-vols 24] [--out /tmp/fmri_bench] [--record]``.

* motion: real studyforrest volumes (volume ``k0`` plus each volume's real
  deviation from the subset's mean: real noise and signal) moved by a known
  rigid motion (smooth walk + 2 jumps, <= 2 mm, <= 2 deg; volume 0 unmoved,
  cubic spline injection by scipy); ours (the engine's batched rigid, as the
  pipeline calls it) and ``ants.motion_correction`` ('BOLDRigid') on the same
  arrays with the same geometry, volume 0 as the reference: RMS parameter
  error, FD RMS error and correlation with the true FD, mean brain
  displacement error, wall and CPU time.
* full runs: ``neurolearn fmri`` on studyforrest sub-02 (156 volumes) and
  xa30 sub-01 (20 volumes, STC + phasediff SDC) in a child process, smri
  already done (run once before and not counted): wall, CPU (user + system)
  and peak resident memory of the child.
* blur: FWHM (AFNI's first-difference estimator on the detrended residuals,
  every 4th steady-state volume, brain mask where every volume has signal,
  eroded once) of the input BOLD against the MNI-space output and the
  T1w-space output (at the BOLD's voxel size, so the ratio is the
  interpolation's own smoothing).
* face GLM: nilearn ``FirstLevelModel`` (SPM HRF, 5 mm smoothing, our
  confounds through ``load_confounds``: motion, wm_csf, high_pass) on the
  MNI-space studyforrest output; contrast face - mean(other 5 categories);
  peak t and its MNI coordinates, and whether it lies in a ventral temporal
  (fusiform) box.

Load averages and process CPU times are printed beside the wall times: the
machine is shared, so ratios measured in the same run are what count.
"""

from __future__ import annotations

import os

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import datetime as dt
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from _tables import append_results, markdown_table
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", ROOT.parent / "shared" / "data"))
STUDYFORREST = DATA / "studyforrest" / "bids"
XA30 = DATA / "xa30" / "bids"
SF_BOLD = STUDYFORREST / "sub-02" / "func" / "sub-02_task-oneback_run-1_bold.nii.gz"
SF_EVENTS = STUDYFORREST / "sub-02" / "func" / "sub-02_task-oneback_run-1_events.tsv"
SPACING = (3.0, 3.0, 3.3)
FUSIFORM_BOX = {"abs_x": (25.0, 52.0), "y": (-85.0, -35.0), "z": (-32.0, -5.0)}
TEMPLATE = "MNI152NLin2009aSym"


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()`` with its wall and CPU seconds."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


# -- (a) motion ---------------------------------------------------------------


def rigid_matrices(angles_rad: np.ndarray, shifts_mm: np.ndarray, center: np.ndarray) -> np.ndarray:
    """(T, 4, 4) maps ``y = R (x - c) + c + t`` in the engine's angle convention."""
    from neurolearn_cli.engine.transforms import AffineTransform

    return AffineTransform.rigid(
        torch.as_tensor(angles_rad), torch.as_tensor(shifts_mm), torch.as_tensor(center)
    ).matrix.numpy()


def known_motion(n_vols: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Angles (rad) and shifts (mm), (T, 3) each: smooth walk + 2 jumps, <= 2 deg / 2 mm, volume 0 zero."""
    rng = np.random.default_rng(seed)
    walk = ndi.gaussian_filter1d(np.cumsum(rng.normal(0, 1, (n_vols, 6)), axis=0), 1.5, axis=0)
    jumps = np.zeros((n_vols, 6))
    for start in rng.choice(np.arange(2, n_vols), size=2, replace=False):
        jumps[start:] += rng.uniform(-0.6, 0.6, 6)
    params = walk + jumps
    params -= params[0]
    params *= 1.8 / np.abs(params).max(axis=0).clip(min=1e-9)
    return np.deg2rad(params[:, 3:]), params[:, :3]


def inject(volume: np.ndarray, ref_to_vol: np.ndarray) -> np.ndarray:
    """The volume seen after the head moved by ``ref_to_vol`` (pull through its inverse), cubic spline."""
    scale = np.diag([*SPACING, 1.0])
    pull = np.linalg.inv(scale) @ np.linalg.inv(ref_to_vol) @ scale
    return ndi.affine_transform(volume, pull[:3, :3], pull[:3, 3], order=3, mode="constant")


def make_motion_case(n_vols: int, first: int = 10) -> dict[str, Any]:
    """Real studyforrest volumes with a known motion; geometry ``diag(3, 3, 3.3)``, origin 0."""
    real = np.asarray(nib.load(SF_BOLD).dataobj, dtype=np.float32)[..., first : first + n_vols]
    base = real[..., 0]
    residual = real - real.mean(axis=-1, keepdims=True)
    center = (np.array(base.shape) - 1) / 2 * np.array(SPACING)
    angles, shifts = known_motion(n_vols)
    truth = rigid_matrices(angles, shifts, center)
    series = np.stack(
        [inject(base + residual[..., t], truth[t]) for t in range(n_vols)], axis=-1
    ).astype(np.float32)
    from neurolearn_cli.fmri.masking import intensity_mask

    mask = intensity_mask(torch.as_tensor(base)).numpy()
    return {"series": series, "truth": truth, "center": center, "mask": mask}


def motion_scores(case: dict[str, Any], maps: np.ndarray) -> dict[str, float]:
    """Parameter RMS errors, FD RMS error and correlation, mean brain displacement error."""
    from neurolearn_cli.engine.transforms import AffineTransform
    from neurolearn_cli.fmri.motion import framewise_displacement, motion_parameters

    center = torch.as_tensor(case["center"])
    est = motion_parameters(AffineTransform(torch.as_tensor(maps)), center)
    true = motion_parameters(AffineTransform(torch.as_tensor(case["truth"])), center)
    fd_est, fd_true = framewise_displacement(est)[1:], framewise_displacement(true)[1:]
    index = np.argwhere(case["mask"]).astype(np.float64) * np.array(SPACING)
    points = np.c_[index, np.ones(len(index))]
    errors = [
        np.linalg.norm(points @ (maps[t] - case["truth"][t]).T[:, :3], axis=1).mean()
        for t in range(len(maps))
    ]
    diff = (est - true).to_numpy()
    return {
        "rms_trans_mm": float(np.sqrt((diff[:, :3] ** 2).mean())),
        "rms_rot_deg": float(np.rad2deg(np.sqrt((diff[:, 3:] ** 2).mean()))),
        "rms_fd_mm": float(np.sqrt(((fd_est - fd_true) ** 2).mean())),
        "fd_r": float(np.corrcoef(fd_est, fd_true)[0, 1]) if fd_est.std() > 0 else float("nan"),
        "disp_err_mm": float(np.mean(errors)),
    }


def motion_ours(case: dict[str, Any]) -> tuple[np.ndarray, float, float]:
    """The engine's batched rigid registration, called as the pipeline calls it."""
    from neurolearn_cli.engine.registration import register_rigid_batched

    affine = torch.diag(torch.tensor([*SPACING, 1.0], dtype=torch.float64))
    series = torch.as_tensor(case["series"])
    maps, wall, cpu = timed(
        lambda: register_rigid_batched(series[..., 0].contiguous(), affine, series, affine)
    )
    return maps.numpy(), wall, cpu


def motion_ants(case: dict[str, Any]) -> tuple[np.ndarray, float, float]:
    """``ants.motion_correction`` BOLDRigid, volume 0 fixed; maps read back at probe points."""
    import ants

    data = case["series"]
    image = ants.from_numpy(data, origin=(0.0,) * 4, spacing=(*SPACING, 2.0))
    fixed = ants.from_numpy(np.ascontiguousarray(data[..., 0]), origin=(0.0,) * 3, spacing=SPACING)
    prefix = os.path.join(tempfile.mkdtemp(prefix="fmri_bench_ants_"), "m")
    out, wall, cpu = timed(
        lambda: ants.motion_correction(
            image, fixed=fixed, type_of_transform="BOLDRigid", outprefix=prefix
        )
    )
    probes = np.array([[0.0, 0, 0], [100.0, 0, 0], [0, 100.0, 0], [0, 0, 100.0]])
    maps = []
    for files in out["motion_parameters"]:
        transform = ants.read_transform(files[0])
        values = np.array([transform.apply_to_point(tuple(p)) for p in probes])
        matrix = np.eye(4)
        matrix[:3, :3] = (values[1:] - values[0]).T / 100.0
        matrix[:3, 3] = values[0]
        maps.append(matrix)
    return np.stack(maps), wall, cpu


def motion_rows(n_vols: int, with_ants: bool) -> list[dict[str, Any]]:
    case = make_motion_case(n_vols)
    case_name = f"motion, {n_vols} studyforrest vols"
    identity = np.repeat(np.eye(4)[None], n_vols, axis=0)
    rows = [{"case": case_name, "method": "no correction", **motion_scores(case, identity)}]
    maps, wall, cpu = motion_ours(case)
    rows.append(
        {"case": case_name, "method": "neurolearn batched rigid", "wall_s": wall, "cpu_s": cpu,
         **motion_scores(case, maps)}
    )
    if with_ants:
        maps, wall, cpu = motion_ants(case)
        rows.append(
            {"case": case_name, "method": "ants.motion_correction BOLDRigid", "wall_s": wall,
             "cpu_s": cpu, **motion_scores(case, maps)}
        )
    return rows


# -- (b) full runs ------------------------------------------------------------


def run_child(args: list[str], log: Path) -> dict[str, float]:
    """Run ``python -m neurolearn_cli ARGS``; wall, CPU and peak RSS of that child alone."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("w") as handle:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "neurolearn_cli", *args], stdout=handle, stderr=subprocess.STDOUT,
            env=env, cwd=ROOT,
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_gb": usage.ru_maxrss / 1024**2,
    }


def full_run_rows(out: Path, datasets: dict[str, Path]) -> list[dict[str, Any]]:
    """smri once when missing (reported, not counted), then a fresh fmri run per dataset."""
    rows = []
    for name, bids in datasets.items():
        target = out / name
        common = [str(bids), str(target), "participant", "--omp-nthreads", "2",
                  "-w", str(out / f"work_{name}")]
        if not any(target.glob("sub-*/anat/*_desc-preproc_T1w.nii.gz")):
            usage = run_child(["smri", *common], out / f"smri_{name}.log")
            rows.append({"case": f"full run {name}", "method": "smri (setup, not counted)", **usage})
            if usage["exit"] != 0:
                continue
        for func in target.glob("sub-*/func"):
            shutil.rmtree(func)
        log = out / f"fmri_{name}.log"
        usage = run_child(["fmri", *common], log)
        reran_smri = "running smri first" in log.read_text()
        n_vols = nib.load(next(bids.glob("sub-*/func/*_bold.nii.gz"))).shape[3]
        rows.append({"case": f"full run {name} ({n_vols} vols)",
                     "method": "neurolearn fmri" + (" (smri rerun!)" if reran_smri else ""),
                     **usage})
    return rows


# -- (c) blur -----------------------------------------------------------------


def residual_volumes(series: torch.Tensor, skip: int, step: int = 4) -> list[torch.Tensor]:
    """Every ``step``-th steady-state volume's residual from each voxel's constant + linear trend."""
    data = series[..., skip:]
    t = torch.linspace(-1.0, 1.0, data.shape[-1], dtype=data.dtype)
    design = torch.stack([torch.ones_like(t), t], dim=1)
    beta = data @ torch.linalg.pinv(design).T
    return [data[..., i] - beta @ design[i] for i in range(0, data.shape[-1], step)]


def mean_fwhm(series: torch.Tensor, mask: torch.Tensor, spacing: tuple[float, ...], skip: int) -> np.ndarray:
    """Per-axis FWHM (mm) of the detrended residuals in ``mask`` (eroded once, where there is signal)."""
    from neurolearn_cli.engine.morphology import erode
    from neurolearn_cli.qc.measures import fwhm

    inside = erode(mask & (series.min(dim=-1).values > 0))
    values = [fwhm(volume, inside, spacing) for volume in residual_volumes(series, skip)]
    return np.array(values).mean(axis=0)


def blur_rows(out: Path) -> list[dict[str, Any]]:
    """FWHM of the input BOLD and of its MNI- and T1w-space outputs, brain masks eroded once."""
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.itkio import read_transform
    from neurolearn_cli.engine.resample import resample

    cpu = torch.device("cpu")
    sub = out / "studyforrest" / "sub-02"
    func = sub / "func"
    stem = "sub-02_task-oneback_run-1"
    confounds = pd.read_csv(func / f"{stem}_desc-confounds_timeseries.tsv", sep="\t")
    skip = sum(c.startswith("non_steady_state_outlier") for c in confounds.columns)
    raw = load_image(SF_BOLD, cpu)
    coreg = read_transform(func / f"{stem}_from-boldref_to-T1w_mode-image_desc-coreg_xfm.txt")
    t1w_mask = load_image(sub / "anat" / "sub-02_desc-brain_mask.nii.gz", cpu)
    native_mask = resample(t1w_mask, raw.grid, coreg.inverse()).data > 0.5
    rows = [{"case": "blur, studyforrest", "method": "input BOLD (native)",
             "fwhm": mean_fwhm(raw.data, native_mask, raw.spacing, skip)}]
    for space, label in ((f"{TEMPLATE}_res-2", f"output space-{TEMPLATE} res-2"),
                         ("T1w", "output space-T1w (BOLD voxel size)")):
        bold = load_image(func / f"{stem}_space-{space}_desc-preproc_bold.nii.gz", cpu)
        mask = load_image(func / f"{stem}_space-{space}_desc-brain_mask.nii.gz", cpu)
        rows.append({"case": "blur, studyforrest", "method": label,
                     "fwhm": mean_fwhm(bold.data, mask.data > 0, bold.spacing, skip)})
    for row in rows:
        value = row.pop("fwhm")
        row["fwhm_xyz_mm"] = " / ".join(f"{v:.2f}" for v in value)
        row["fwhm_mm"] = float(np.prod(value) ** (1 / 3))
        if row is not rows[0]:
            row["fwhm_ratio"] = row["fwhm_mm"] / rows[0]["fwhm_mm"]
    return rows


# -- (d) face GLM -------------------------------------------------------------


def in_fusiform_box(xyz: np.ndarray) -> bool:
    """Whether an MNI point lies in a ventral occipito-temporal (fusiform) box, either hemisphere."""
    box = FUSIFORM_BOX
    return bool(box["abs_x"][0] <= abs(xyz[0]) <= box["abs_x"][1]
                and box["y"][0] <= xyz[1] <= box["y"][1] and box["z"][0] <= xyz[2] <= box["z"][1])


def glm_rows(out: Path) -> list[dict[str, Any]]:
    """Face - mean(others) t map on our MNI output; global and ventral temporal peaks."""
    from nilearn.glm.first_level import FirstLevelModel
    from nilearn.interfaces.fmriprep import load_confounds

    func = out / "studyforrest" / "sub-02" / "func"
    stem = "sub-02_task-oneback_run-1"
    bold = func / f"{stem}_space-{TEMPLATE}_res-2_desc-preproc_bold.nii.gz"
    mask = func / f"{stem}_space-{TEMPLATE}_res-2_desc-brain_mask.nii.gz"
    confounds, sample_mask = load_confounds(
        str(bold), strategy=("motion", "wm_csf", "high_pass"), motion="basic", wm_csf="basic"
    )
    events = pd.read_csv(SF_EVENTS, sep="\t")[["onset", "duration", "trial_type"]]
    model = FirstLevelModel(t_r=2.0, hrf_model="spm", drift_model=None, smoothing_fwhm=5.0,
                            mask_img=str(mask), minimize_memory=True)
    (model, wall, cpu) = timed(
        lambda: model.fit(str(bold), events=events, confounds=confounds, sample_masks=sample_mask)
    )
    others = sorted(set(events["trial_type"]) - {"face"})
    contrast = "face - (" + " + ".join(others) + f") / {len(others)}"
    t_img = model.compute_contrast(contrast, output_type="stat")
    t_map = np.asarray(t_img.dataobj)
    inside = np.asarray(nib.load(mask).dataobj) > 0
    world = nib.affines.apply_affine(t_img.affine, np.argwhere(inside))
    values = t_map[inside]
    box = np.array([in_fusiform_box(p) for p in world])
    rows = []
    for label, select in (("global peak", np.ones_like(box)), ("peak in fusiform box", box)):
        best = int(np.argmax(np.where(select, values, -np.inf)))
        rows.append({"case": "face GLM, studyforrest", "method": label, "peak_t": float(values[best]),
                     "mni_xyz": "(" + ", ".join(f"{v:.0f}" for v in world[best]) + ")",
                     "in_fusiform": in_fusiform_box(world[best]), "wall_s": wall, "cpu_s": cpu})
    return rows


# -- (e) PEPOLAR on real anatomy ------------------------------------------------


def pepolar_rows() -> list[dict[str, Any]]:
    """A reverse-PE pair made from the xa30 boldref and its measured phasediff field; field recovered?"""
    import json

    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.resample import resample
    from neurolearn_cli.example_data.distortion import distort
    from neurolearn_cli.fmri.fieldmap import (
        EpiGeometry,
        echo_time_difference,
        epi_geometry,
        phasediff_field,
    )
    from neurolearn_cli.fmri.masking import intensity_mask
    from neurolearn_cli.fmri.pepolar import estimate_pepolar_field
    from neurolearn_cli.fmri.reference import bold_reference

    cpu = torch.device("cpu")
    sub = XA30 / "sub-01"
    bold = load_image(sub / "func" / "sub-01_task-fa_run-1_bold.nii.gz", cpu)
    geometry = epi_geometry(json.loads((sub / "func" / "sub-01_task-fa_run-1_bold.json").read_text()))
    delta_te = echo_time_difference(json.loads((sub / "fmap" / "sub-01_phasediff.json").read_text()))
    field, _ = phasediff_field(load_image(sub / "fmap" / "sub-01_phasediff.nii.gz", cpu),
                               load_image(sub / "fmap" / "sub-01_magnitude1.nii.gz", cpu), delta_te)
    truth = resample(field, bold.grid, order="linear").data
    anatomy = bold_reference(bold, 1)
    readout, axis = geometry.total_readout_time, geometry.axis
    plus = anatomy.with_data(distort(anatomy.data, truth * readout, axis))
    minus = anatomy.with_data(distort(anatomy.data, -truth * readout, axis))
    estimate, wall, cpu_s = timed(lambda: estimate_pepolar_field(
        plus, EpiGeometry(axis, 1, readout), minus, EpiGeometry(axis, -1, readout)))
    brain = intensity_mask(anatomy.data)
    error = (estimate.data - truth)[brain]
    rms = lambda v: float(v.pow(2).mean().sqrt())  # noqa: E731
    return [{"case": "PEPOLAR, xa30 boldref + its phasediff field", "method": "neurolearn pepolar",
             "wall_s": wall, "cpu_s": cpu_s,
             "field_rms_hz": rms(truth[brain]), "error_rms_hz": rms(error),
             "error_rms_vox": rms(error) * readout}]


# -- report -------------------------------------------------------------------

COLUMNS = ("case", "method", "exit", "wall_s", "cpu_s", "peak_gb", "rms_trans_mm", "rms_rot_deg",
           "rms_fd_mm", "fd_r", "disp_err_mm", "fwhm_xyz_mm", "fwhm_mm", "fwhm_ratio", "peak_t",
           "mni_xyz", "in_fusiform", "field_rms_hz", "error_rms_hz", "error_rms_vox")


def markdown(rows: list[dict[str, Any]]) -> str:
    """A markdown table of the columns any row fills."""
    return markdown_table(rows, [c for c in COLUMNS if any(c in row for row in rows)])


def record(table: str, command: str, loads: tuple[float, float]) -> None:
    """Append a dated fmri section to benchmarks/RESULTS.md."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"\n## fmri (issue 5), {stamp}\n\n`{command}`; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), 2 CPU cores shared with other engineers' jobs: "
        f"load average {loads[0]:.1f} at start, {loads[1]:.1f} at end. CPU = user + system "
        "seconds of the process (ours and ANTs run in-process) or of the child run; peak = "
        "peak resident memory of the child.\n\n"
    )
    append_results(header + table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--motion-vols", type=int, default=24)
    parser.add_argument("--out", type=Path, default=Path("/tmp/fmri_bench"))
    parser.add_argument("--parts", nargs="+", default=["motion", "pepolar", "runs", "blur", "glm"],
                        choices=["motion", "pepolar", "runs", "blur", "glm"])
    parser.add_argument("--studyforrest-bids", type=Path, default=STUDYFORREST,
                        help="studyforrest tree for the full run (e.g. a copy with a lighter T1w)")
    parser.add_argument("--runs", nargs="+", default=["xa30", "studyforrest"],
                        choices=["xa30", "studyforrest"], help="datasets of the full runs")
    parser.add_argument("--no-ants", action="store_true", help="skip the ANTs motion row")
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(2)
    load_start = os.getloadavg()[0]
    print(f"load average at start {load_start:.2f}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    if "motion" in args.parts:
        rows += motion_rows(args.motion_vols, not args.no_ants)
        print(markdown(rows), flush=True)
    if "pepolar" in args.parts:
        rows += pepolar_rows()
    if "runs" in args.parts:
        datasets = {"xa30": XA30, "studyforrest": args.studyforrest_bids}
        rows += full_run_rows(args.out, {name: datasets[name] for name in args.runs})
    sf_output = args.out / "studyforrest" / "sub-02" / "func" / (
        f"sub-02_task-oneback_run-1_space-{TEMPLATE}_res-2_desc-preproc_bold.nii.gz"
    )
    if {"blur", "glm"} & set(args.parts) and not sf_output.is_file():
        print(f"{sf_output} missing: blur and GLM skipped")
    elif {"blur", "glm"} & set(args.parts):
        rows += blur_rows(args.out) if "blur" in args.parts else []
        rows += glm_rows(args.out) if "glm" in args.parts else []
    load_end = os.getloadavg()[0]
    table = markdown(rows)
    print(table)
    print(f"load average at end {load_end:.2f}")
    if args.record:
        record(table, "python " + " ".join(["benchmarks/fmri.py", *sys.argv[1:]]),
               (load_start, load_end))


if __name__ == "__main__":
    main()
