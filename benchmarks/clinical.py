"""Clinical cases on aomic sub-0001: a planted lesion with and without its mask, and thick-slice copies.

Run ``python benchmarks/clinical.py [--cases lesion thick-1x1x5 thick-0.5x0.5x6] [--no-write]``.
Each case runs :func:`neurolearn_cli.smri.pipeline.preprocess_t1w` in this
process, after one run on the unperturbed T1w (1 mm, LIA, skull on):

* ``lesion``: a ragged 15-18 mm dark blob (:mod:`neurolearn_cli.example_data.lesion`)
  planted in the right hemisphere's white matter and cortex, run once without
  and once with its mask. Measured: the normalization error of the healthy
  brain within 20 mm of the lesion (the distance between where the lesioned
  run's and the unperturbed run's T1w -> template maps send each point; mean
  and 95th percentile), and inside the lesion; the tissue counted inside the
  lesion (GM + WM + CSF probability, mL).
* ``thick-1x1x5``, ``thick-0.5x0.5x6``: the T1w averaged over 5 (6) axial
  slices, in-plane kept (made twice finer) (:mod:`neurolearn_cli.example_data.reslice`).
  Measured: brain-mask Dice against the unperturbed run (the thick mask
  resampled onto the 1 mm grid, nearest neighbour) and the GM/WM volume change.

Every case reports wall seconds and completion. The functions are importable
(``lesioned_copy``, ``thick_copy``, ``normalization_error_mm``) for other
benchmarks. Prints a table and, unless ``--no-write``, appends it to
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from _tables import append_results, markdown_table

from neurolearn_cli.engine.allocator import configure_allocation
from neurolearn_cli.engine.image import Image, world_grid
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.errors import NeurolearnError
from neurolearn_cli.example_data.lesion import plant_lesion
from neurolearn_cli.example_data.reslice import thick_slices
from neurolearn_cli.smri.pipeline import SmriResult

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", ROOT.parent / "shared" / "data"))
T1W = DATA / "aomic/bids/sub-0001/anat/sub-0001_T1w.nii.gz"
REFERENCE_MASK = DATA / "aomic/reference/fmriprep/sub-0001/anat/sub-0001_desc-brain_mask.nii.gz"
#: Where the lesion goes, from the centroid of fMRIPrep's brain mask (world mm, RAS): right, forward, up.
LESION_OFFSET_MM = np.array([28.0, 8.0, 14.0])
LESION_RADII_MM = np.array([15.0, 18.0, 15.0])
RING_MM = 20.0
CASES = ("lesion", "thick-1x1x5", "thick-0.5x0.5x6")
THICK = {"thick-1x1x5": (5, 1), "thick-0.5x0.5x6": (6, 2)}


@dataclass(frozen=True)
class Scan:
    """A T1w as data and affine (numpy), with an optional lesion mask on its grid."""

    data: np.ndarray
    affine: np.ndarray
    lesion: np.ndarray | None = None

    def image(self, device: torch.device) -> Image:
        """The T1w as an engine image."""
        return Image(torch.from_numpy(np.ascontiguousarray(self.data, dtype=np.float32)).to(device),
                     torch.from_numpy(self.affine).to(torch.float64).to(device))

    def lesion_image(self, device: torch.device) -> Image | None:
        """The lesion mask as an engine image (None without one)."""
        if self.lesion is None:
            return None
        return Image(torch.from_numpy(self.lesion.astype(np.float32)).to(device),
                     torch.from_numpy(self.affine).to(torch.float64).to(device))


def original() -> Scan:
    """aomic sub-0001's T1w as stored."""
    image = nib.load(T1W)
    return Scan(np.asanyarray(image.dataobj).astype(np.float32), image.affine)


def lesioned_copy(scan: Scan, reference_mask: Path = REFERENCE_MASK, seed: int = 3) -> Scan:
    """``scan`` with a dark ragged blob planted at ``LESION_OFFSET_MM`` from the brain's centroid, and its mask.

    The lesion intensity is the 5th percentile of the head (above the mean),
    near CSF: a chronic infarct on T1w.
    """
    mask_image = nib.load(reference_mask)
    inside = np.argwhere(np.asanyarray(mask_image.dataobj) > 0)
    centre = nib.affines.apply_affine(mask_image.affine, inside).mean(0) + LESION_OFFSET_MM
    head = scan.data[scan.data > scan.data.mean()]
    planted = plant_lesion(scan.data, scan.affine, centre, LESION_RADII_MM,
                           intensity=float(np.percentile(head, 5)), seed=seed)
    return Scan(planted.t1w, scan.affine, planted.mask)


def thick_copy(scan: Scan, factor: int, in_plane: int = 1) -> Scan:
    """``scan`` averaged over ``factor`` slices along its superior-inferior axis, in-plane ``in_plane`` times finer."""
    axis = [i for i, code in enumerate(nib.aff2axcodes(scan.affine)) if code in "SI"][0]
    data, affine = thick_slices(scan.data, scan.affine, axis=axis, factor=factor, in_plane=in_plane)
    return Scan(data, affine)


def run_smri(scan: Scan, device: torch.device) -> tuple[SmriResult | None, float, str]:
    """The smri pipeline on ``scan``: result (None when it failed), wall seconds, and the failure's message."""
    from neurolearn_cli.smri.parcellation import load_atlas
    from neurolearn_cli.smri.pipeline import preprocess_t1w
    from neurolearn_cli.smri.template import load_template

    start = time.perf_counter()
    try:
        result = preprocess_t1w([scan.image(device)], ["t1w"], load_template(device, 2), load_atlas(device), device,
                                lesion=scan.lesion_image(device), lesion_source="lesion")
    except NeurolearnError as error:
        return None, time.perf_counter() - start, str(error)
    return result, time.perf_counter() - start, ""


def normalization_error_mm(reference: SmriResult, other: SmriResult, points: torch.Tensor) -> tuple[float, float]:
    """Mean and 95th percentile distance (mm) between the template points two runs map T1w ``points`` to."""
    distance = (reference.normalization.template_to_t1w.map_points(points)
                - other.normalization.template_to_t1w.map_points(points)).norm(dim=-1)
    return float(distance.mean()), float(torch.quantile(distance, 0.95))


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    """Dice overlap of two boolean tensors."""
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def volume_change_pct(reference: SmriResult, other: SmriResult, tissue: str) -> float:
    """Relative change (%) of a tissue volume against the reference run."""
    return 100.0 * (other.qc[f"volume_{tissue}_ml"] / reference.qc[f"volume_{tissue}_ml"] - 1.0)


def lesion_rows(clean: SmriResult, scan: Scan, device: torch.device) -> list[dict[str, Any]]:
    """The lesion case without and with its mask, against the unperturbed run."""
    lesioned = lesioned_copy(scan)
    lesion = lesioned.lesion_image(device)
    assert lesion is not None
    on_grid = resample(lesion, clean.t1w.grid).data > 0.5
    distance = _distance_mm(on_grid, clean.t1w)
    ring = (distance > 0) & (distance <= RING_MM) & (clean.mask.data > 0.5)
    points = world_grid(clean.t1w.grid)
    rows = []
    for name, case in (("lesion, no mask", Scan(lesioned.data, lesioned.affine)), ("lesion, mask given", lesioned)):
        result, seconds, failure = run_smri(case, device)
        row: dict[str, Any] = {"case": name, "completed": "yes" if result else f"no: {failure}", "wall_s": seconds,
                               "lesion_ml": float(on_grid.sum()) * float(np.prod(clean.t1w.spacing)) / 1000}
        if result is not None:
            row["ring_mean_mm"], row["ring_p95_mm"] = normalization_error_mm(clean, result, points[ring])
            row["lesion_mean_mm"], _ = normalization_error_mm(clean, result, points[on_grid])
            tissue = sum(result.tissues[t].data for t in ("GM", "WM", "CSF"))
            row["tissue_in_lesion_ml"] = float(tissue[on_grid].sum()) * float(np.prod(result.t1w.spacing)) / 1000
            row["GM_change_pct"] = volume_change_pct(clean, result, "GM")
            row["WM_change_pct"] = volume_change_pct(clean, result, "WM")
        rows.append(row)
    return rows


def thick_row(clean: SmriResult, scan: Scan, name: str, device: torch.device) -> dict[str, Any]:
    """One thick-slice case against the unperturbed run."""
    factor, in_plane = THICK[name]
    thick = thick_copy(scan, factor, in_plane)
    result, seconds, failure = run_smri(thick, device)
    spacing = "x".join(f"{s:g}" for s in sorted(nib.affines.voxel_sizes(thick.affine).round(2)))
    row: dict[str, Any] = {"case": f"{name} ({spacing} mm)", "completed": "yes" if result else f"no: {failure}",
                           "wall_s": seconds}
    if result is not None:
        mask = resample(result.mask, clean.mask.grid, order="nearest").data > 0.5
        row["mask_dice"] = dice(mask, clean.mask.data > 0.5)
        row["GM_change_pct"] = volume_change_pct(clean, result, "GM")
        row["WM_change_pct"] = volume_change_pct(clean, result, "WM")
    return row


def _distance_mm(mask: torch.Tensor, grid_image: Image) -> torch.Tensor:
    """Euclidean distance (mm) of every voxel to ``mask`` (zero inside), on ``grid_image``'s grid."""
    from scipy import ndimage

    outside = ~mask.cpu().numpy()
    distance = ndimage.distance_transform_edt(outside, sampling=grid_image.spacing)
    return torch.from_numpy(distance).to(mask.device)


COLUMNS = ("case", "completed", "wall_s", "lesion_ml", "ring_mean_mm", "ring_p95_mm", "lesion_mean_mm",
           "tissue_in_lesion_ml", "mask_dice", "GM_change_pct", "WM_change_pct")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--no-write", action="store_true", help="print the table without appending to RESULTS.md")
    args = parser.parse_args()
    configure_allocation()
    device = torch.device("cpu")
    load_start = os.getloadavg()[0]
    scan = original()
    clean, seconds, failure = run_smri(scan, device)
    if clean is None:
        raise SystemExit(f"the unperturbed run failed: {failure}")
    rows: list[dict[str, Any]] = [{"case": "unperturbed (1x1x1 mm)", "completed": "yes", "wall_s": seconds}]
    if "lesion" in args.cases:
        rows += lesion_rows(clean, scan, device)
    rows += [thick_row(clean, scan, name, device) for name in args.cases if name in THICK]
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"aomic sub-0001 T1w, {stamp}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
              f"{os.cpu_count()} CPU cores; load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end. "
              f"Errors: distance between the template points the case's and the unperturbed run's normalizations "
              f"give the same T1w point (mean, 95th percentile), on the brain within {RING_MM:g} mm of the lesion "
              "(ring) and inside it; volume changes against the unperturbed run.")
    table = markdown_table(rows, COLUMNS)
    print(header)
    print(table)
    if not args.no_write:
        command = "python benchmarks/clinical.py" + ("" if args.cases == list(CASES) else " --cases " + " ".join(args.cases))
        append_results(f"\n## Clinical cases (issue 19): `{command}`\n\n{header}\n\n{table}\n")


if __name__ == "__main__":
    main()
