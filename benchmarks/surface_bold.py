"""BOLD on the surface on studyforrest sub-02 (issue 17): time added, temporal SNR, agreement with nilearn.

Run ``python benchmarks/surface_bold.py [--out DIR] [--spaces fsnative fsaverage5] [--results]``.

Runs ``neurolearn ... participant --stages smri,surfaces,fmri --output-spaces
MNI152NLin2009aSym:res-2 T1w <spaces>`` on ``../shared/data/studyforrest``
(or reuses the outputs in ``--out``), then, in this process, from the run's
own outputs (its head-motion and co-registration transforms, the surfaces):

* times the surface outputs (ribbon sampling of both hemispheres, the
  resampling to each template, the GIFTI encoding) against the T1w-space
  volume output (one sinc resampling of the run), both from the raw BOLD
  through the same chain: the time the surface spaces add to a run, as a
  ratio to a volume space measured in the same minutes;
* checks the written GIFTIs: names, vertices x volumes, nilearn reads them;
* temporal SNR (mean over standard deviation in time, steady state) at the
  vertices against the T1w-space BOLD's voxels in the ribbon mask;
* the temporal mean of our fsnative series against nilearn's ``vol_to_surf``
  of the T1w-space BOLD's temporal mean on the same white and pial meshes
  (six samples from white to pial, linear interpolation): Pearson's r over
  the vertices both have.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from _tables import append_results, markdown_table

DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
BIDS = DATA / "studyforrest" / "bids"
SUBJECT = "02"
STEM = f"sub-{SUBJECT}_task-oneback_run-1"
VOLUME_SPACES = ("MNI152NLin2009aSym:res-2", "T1w")


def decimated_copy(root: Path, step: int) -> Path:
    """A copy of studyforrest under ``root`` with the T1w decimated by ``step`` (the BOLD as it is)."""
    import shutil

    shutil.copytree(BIDS, root, dirs_exist_ok=True)
    path = root / f"sub-{SUBJECT}" / "anat" / f"sub-{SUBJECT}_T1w.nii.gz"
    image = nib.load(path)
    affine = image.affine.copy()
    affine[:3, :3] *= step
    decimated = nib.Nifti1Image(np.asanyarray(image.dataobj)[::step, ::step, ::step], affine, image.header)
    decimated.set_qform(affine, 1)
    decimated.set_sform(affine, 1)
    nib.save(decimated, path)
    return root


def run_neurolearn(bids: Path, out: Path, spaces: list[str]) -> float:
    """smri, surfaces and fmri on ``bids`` into ``out``; the wall time (s)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "neurolearn_cli", str(bids), str(out), "participant", "--stages",
                    "smri,surfaces,fmri", "--output-spaces", *VOLUME_SPACES, *spaces, "--omp-nthreads", "2"],
                   check=True)
    return time.perf_counter() - start


def temporal_snr(series: np.ndarray, skip: int) -> np.ndarray:
    """Mean over standard deviation in time of each row of (N, T) ``series``, from volume ``skip`` on."""
    steady = series[:, skip:]
    return steady.mean(axis=1) / np.maximum(steady.std(axis=1), 1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="an earlier output directory of this benchmark to reuse")
    parser.add_argument("--spaces", nargs="+", default=["fsnative", "fsaverage5"],
                        help="surface output spaces of the neurolearn run")
    parser.add_argument("--t1w-step", type=int, default=1,
                        help="decimate the T1w by this step (2: 1.4 mm) to keep the surfaces stage short")
    parser.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    import json

    import torch
    from nilearn.surface import load_surf_data, vol_to_surf

    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.itkio import read_transform
    from neurolearn_cli.engine.resample import resample, sample_points
    from neurolearn_cli.engine.transforms import Chain
    from neurolearn_cli.fmri.pipeline import grid_at_spacing
    from neurolearn_cli.fmri.surface import DEPTHS, resample_series, sample_ribbon
    from neurolearn_cli.spaces import parse_output_space
    from neurolearn_cli.surfaces.gifti import read_mesh, timeseries_gifti
    from neurolearn_cli.surfaces.resample import barycentric_weights
    from neurolearn_cli.surfaces.template import template_spheres

    out = args.out or Path(tempfile.mkdtemp(prefix="surface-bold-bench-"))
    pipeline_s = None
    bids = BIDS if args.t1w_step == 1 else decimated_copy(out.parent / f"{out.name}-bids", args.t1w_step)
    if args.out is None or not (out / f"sub-{SUBJECT}" / "func").is_dir():
        pipeline_s = run_neurolearn(bids, out, args.spaces)
    anat, func = out / f"sub-{SUBJECT}" / "anat", out / f"sub-{SUBJECT}" / "func"
    device = torch.device("cpu")
    torch.set_num_threads(2)
    bold = load_image(BIDS / f"sub-{SUBJECT}" / "func" / f"{STEM}_bold.nii.gz", device)
    hmc = read_transform(func / f"{STEM}_from-orig_to-boldref_mode-image_desc-hmc_xfm.txt").to(device)
    coreg = read_transform(func / f"{STEM}_from-boldref_to-T1w_mode-image_desc-coreg_xfm.txt").to(device)
    chain = Chain([coreg, hmc])  # T1w points -> raw BOLD points, per volume (no SDC, no slice timing here)
    brain = load_image(anat / f"sub-{SUBJECT}_desc-brain_mask.nii.gz", device)
    sidecar = json.loads((func / f"{STEM}_space-T1w_desc-preproc_bold.json").read_text())
    skip = int(sidecar.get("NonSteadyStateVolumes") or 0)

    start = time.perf_counter()
    t1w_grid = grid_at_spacing(brain.grid, bold.spacing)
    resample(bold, t1w_grid, chain, order="sinc")
    volume_s = time.perf_counter() - start

    rows, timings, stand_in = [], {}, False
    for hemisphere in ("L", "R"):
        white, pial = read_mesh(anat / f"sub-{SUBJECT}_hemi-{hemisphere}_white.surf.gii"), \
            read_mesh(anat / f"sub-{SUBJECT}_hemi-{hemisphere}_pial.surf.gii")
        start = time.perf_counter()
        sampled = sample_ribbon(bold, white, pial, chain, brain)
        timings[f"sample_{hemisphere}"] = time.perf_counter() - start
        sinc_s = sinc_r = None
        if hemisphere == "L":  # the band-limited kernel of the volume outputs, for comparison (not kept)
            start = time.perf_counter()
            sinc = sample_ribbon(bold, white, pial, chain, brain, order="sinc").series
            sinc_s = time.perf_counter() - start
            both = np.isfinite(sinc[:, 0]) & np.isfinite(sampled.series[:, 0])
            centred = [a[both, skip:] - a[both, skip:].mean(axis=1, keepdims=True) for a in (sinc, sampled.series)]
            sinc_r = float(np.median(np.einsum("ij,ij->i", *centred) / np.maximum(
                np.linalg.norm(centred[0], axis=1) * np.linalg.norm(centred[1], axis=1), 1e-12)))
        start = time.perf_counter()
        encoded = timeseries_gifti(sampled.series, hemisphere, 2.0)
        timings[f"gifti_{hemisphere}"] = time.perf_counter() - start
        registered = anat / f"sub-{SUBJECT}_hemi-{hemisphere}_desc-reg_sphere.surf.gii"
        # without the surfaces stage's registered sphere, the cost is timed on a stand-in of the same mesh: the
        # white surface projected radially onto a sphere (no registration: the values mean nothing there)
        sphere = read_mesh(registered) if registered.is_file() else white.with_vertices(
            100.0 * (white.vertices - white.vertices.mean(axis=0))
            / np.linalg.norm(white.vertices - white.vertices.mean(axis=0), axis=1, keepdims=True))
        stand_in = stand_in or not registered.is_file()
        start = time.perf_counter()
        target = template_spheres(parse_output_space("fsaverage5"), Path("/nonexistent"))
        assert not isinstance(target, str)
        weights = barycentric_weights(read_mesh(target[hemisphere].sphere).vertices, sphere)
        timeseries_gifti(resample_series(sampled.series, weights), hemisphere, 2.0)
        timings[f"fsaverage5_{hemisphere}"] = time.perf_counter() - start
        # the written files: names, shape, nilearn reads them, and they hold what we just sampled
        written = {}
        for space in args.spaces:
            label = space.replace(":", "_")
            path = func / f"{STEM}_hemi-{hemisphere}_space-{label}_bold.func.gii"
            written[space] = load_surf_data(str(path)).shape if path.is_file() else None
        fsnative = func / f"{STEM}_hemi-{hemisphere}_space-fsnative_bold.func.gii"
        identical = fsnative.is_file() and fsnative.read_bytes() == encoded
        # sanity: temporal SNR on the surface and in the ribbon voxels of the T1w-space BOLD
        series = sampled.series[np.isfinite(sampled.series[:, 0])]
        t1w_bold = nib.load(func / f"{STEM}_space-T1w_desc-preproc_bold.nii.gz")
        ribbon = nib.load(anat / f"sub-{SUBJECT}_desc-ribbon_mask.nii.gz")
        from nilearn.image import resample_to_img

        ribbon_on_bold = np.asarray(resample_to_img(ribbon, t1w_bold.slicer[..., 0], interpolation="nearest",
                                                    force_resample=True, copy_header=True).dataobj) > 0.5
        side = np.zeros_like(ribbon_on_bold)
        x = nib.affines.apply_affine(t1w_bold.affine, np.argwhere(ribbon_on_bold))[:, 0]
        side[tuple(np.argwhere(ribbon_on_bold)[(x < 0) if hemisphere == "L" else (x >= 0)].T)] = True
        voxels = np.asarray(t1w_bold.dataobj, dtype=np.float32)[side]
        # agreement with nilearn's vol_to_surf on the same meshes, of the T1w-space BOLD's temporal mean
        mean_img = nib.Nifti1Image(np.asarray(t1w_bold.dataobj, dtype=np.float32)[..., skip:].mean(axis=-1),
                                   t1w_bold.affine)
        theirs = vol_to_surf(mean_img, (pial.vertices, pial.faces), inner_mesh=(white.vertices, white.faces),
                             kind="line", n_samples=6, interpolation="linear")
        ours = np.nanmean(sampled.series[:, skip:], axis=1)
        both = np.isfinite(ours) & np.isfinite(theirs) & (theirs > 0)
        # the same six depths from the raw BOLD with no sample left out: the geometry and transforms alone
        depths = torch.tensor(DEPTHS, dtype=torch.float32)[:, None, None]
        white_t = torch.tensor(white.vertices, dtype=torch.float32)
        points = (white_t + depths * (torch.tensor(pial.vertices, dtype=torch.float32) - white_t)).reshape(-1, 3)
        every = sample_points(bold, points, chain).reshape(len(DEPTHS), len(white.vertices), -1)
        plain = every[..., skip:].mean(dim=(0, 2)).numpy()
        fair = np.isfinite(plain) & np.isfinite(theirs) & (theirs > 0)
        rows.append({
            "hemi": hemisphere, "vertices": len(white.vertices), "missing": int((~np.isfinite(sampled.series[:, 0])).sum()),
            "kept": f"{100 * sampled.kept / (sampled.kept + sampled.outside + sampled.unreliable):.1f} %",
            "files": "; ".join(f"{s} {shape}" for s, shape in written.items()),
            "identical": "yes" if identical else "no",
            "tsnr_surface": float(np.median(temporal_snr(series, skip))),
            "tsnr_ribbon": float(np.median(temporal_snr(voxels, skip))),
            "r_nilearn": float(np.corrcoef(ours[both], theirs[both])[0, 1]),
            "r_plain": float(np.corrcoef(plain[fair], theirs[fair])[0, 1]),
            "sample_s": timings[f"sample_{hemisphere}"] + timings[f"gifti_{hemisphere}"],
            "fsaverage5_s": timings.get(f"fsaverage5_{hemisphere}"),
            "sinc_s": sinc_s, "sinc_r": sinc_r,
        })
    surface_s = sum(timings.values())  # the sinc comparison is not part of it
    columns = ["hemi", "vertices", "missing", "kept", "files", "identical", "tsnr_surface", "tsnr_ribbon", "r_nilearn",
               "r_plain",
               "sample_s", "fsaverage5_s", "sinc_s", "sinc_r"]
    headers = ["hemi", "vertices", "vertices missing", "samples kept", "GIFTIs (vertices, volumes) as nilearn reads",
               "fsnative file = in-process", "median tSNR vertices", "median tSNR ribbon voxels",
               "r mean image vs nilearn vol_to_surf", "same, no sample left out", "sampling + GIFTI (s)", "to fsaverage5 (s)",
               "sinc sampling instead (s)", "median r of the series, sinc vs trilinear"]
    load = os.getloadavg()
    pipeline = "" if pipeline_s is None else f" The whole run (smri, surfaces, fmri) took {pipeline_s:.0f} s."
    if stand_in:
        pipeline += (" No registered sphere (hemi-*_desc-reg_sphere.surf.gii) was there: the fsaverage5 column times "
                     "the resampling on a stand-in sphere of the same mesh (the white surface projected radially).")
    text = (f"\n## BOLD on the surface, studyforrest sub-02 (issue 17), "
            f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
            f"on {os.cpu_count()} CPUs\n\n"
            f"`python benchmarks/surface_bold.py --spaces {' '.join(args.spaces)} --t1w-step {args.t1w_step}` "
            f"(T1w at {0.7 * args.t1w_step:.1f} mm, BOLD 156 volumes, 2 torch threads): "
            f"the surface outputs of both hemispheres took {surface_s:.1f} s in process, "
            f"{surface_s / volume_s:.2f} times the T1w-space volume output ({volume_s:.1f} s) timed in the same "
            f"minutes.{pipeline}\n\n{markdown_table(rows, columns, headers)}\n")
    print(text)
    if args.results:
        append_results(text)


if __name__ == "__main__":
    main()
