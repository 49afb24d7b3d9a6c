"""Inflation, sphere and registration to fsaverage5 on aomic sub-0001 (issue 17), against FreeSurfer's.

Run ``python benchmarks/surface_registration.py [--surfaces DIR] [--results]``.

By default the input is FreeSurfer's own white surface of aomic sub-0001
(``smoothwm``, from ``aomic/reference``), so our sulcal depth is compared with
FreeSurfer's ``lh/rh.sulc`` vertex by vertex; with ``--surfaces`` it is the
white surface and curvature of an earlier neurolearn run (its ``anat/``
folder), and each of our vertices is compared with FreeSurfer's nearest
vertex (both are in the T1w's world coordinates). Per hemisphere it times
:func:`~neurolearn_cli.surfaces.inflate.inflate`,
:func:`~neurolearn_cli.surfaces.sphere.to_sphere` and
:func:`~neurolearn_cli.surfaces.register.register` (``--threads`` torch threads, default 2), and reports:

* the spiky faces of the inflated surface
  (:func:`~neurolearn_cli.surfaces.inflate.spiky_faces`), as a count and as
  a share of the white surface's area (the cortex they hide);
* the correlation of our sulc with FreeSurfer's;
* the faces flipped by the conformal map onto the sphere, and after unfolding;
* the sphere's area distortion: the white-area-weighted standard deviation of
  each face's log area ratio (sphere against white,
  :func:`~neurolearn_cli.surfaces.sphere.log_area_ratio`) and the share of
  the white surface's area shrunk or swollen more than twofold;
* the correlation of our sulc resampled onto fsaverage5 through the
  registered sphere with fsaverage5's sulc, after the rotation alone and after
  the warp, and the same for FreeSurfer's sulc carried by our registration
  (with FreeSurfer's white surface only: the registration's share alone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from _tables import append_results, markdown_table
from scipy.spatial import cKDTree

from neurolearn_cli.surfaces.mesh import Mesh, face_normals, signed_volume

DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
REFERENCE = DATA / "aomic" / "reference"
FS = REFERENCE / "freesurfer" / "sub-0001"
FMRIPREP = REFERENCE / "fmriprep" / "sub-0001" / "anat"
FS_HEMI = {"L": "lh", "R": "rh"}


def read_mesh(path: Path) -> Mesh:
    """A GIFTI surface as an outward-oriented mesh."""
    vertices, faces = nib.load(path).agg_data()
    mesh = Mesh(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64))
    return mesh if signed_volume(mesh) > 0 else Mesh(mesh.vertices, mesh.faces[:, ::-1].copy())


def area_distortion(log_ratio: np.ndarray, white_area: np.ndarray) -> str:
    """The ``white_area``-weighted standard deviation of the faces' ``log_ratio`` and the share of that area off by
    more than twofold, as a table cell."""
    weights = white_area / white_area.sum()
    spread = np.sqrt(weights @ (log_ratio - weights @ log_ratio) ** 2)
    return f"{spread:.2f} ({100 * weights[np.abs(log_ratio) > np.log(2)].sum():.0f} %)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surfaces", type=Path, help="the anat/ folder of an earlier neurolearn surfaces run")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    import torch

    from neurolearn_cli.surfaces.inflate import inflate, spiky_faces
    from neurolearn_cli.surfaces.measures import mean_curvature
    from neurolearn_cli.surfaces.register import register, sulc_correlation
    from neurolearn_cli.surfaces.sphere import flipped_faces, log_area_ratio, to_sphere
    from neurolearn_cli.surfaces.template import fsaverage5

    torch.set_num_threads(args.threads)
    rows = []
    for hemisphere in ("L", "R"):
        fs_white = read_mesh(FMRIPREP / f"sub-0001_hemi-{hemisphere}_smoothwm.surf.gii")
        fs_sulc = nib.freesurfer.read_morph_data(FS / "surf" / f"{FS_HEMI[hemisphere]}.sulc")
        if args.surfaces is None:
            white, curvature = fs_white, mean_curvature(fs_white)
        else:
            white = read_mesh(next(args.surfaces.glob(f"*_hemi-{hemisphere}_white.surf.gii")))
            curvature = nib.load(next(args.surfaces.glob(f"*_hemi-{hemisphere}_curv.shape.gii"))).agg_data()
        template = fsaverage5(hemisphere)
        start = time.perf_counter()
        inflation = inflate(white)
        inflated_at = time.perf_counter()
        mapping = to_sphere(white, inflation.inflated, hemisphere)
        sphere_at = time.perf_counter()
        registration = register(mapping.sphere, inflation.sulc, curvature, template, torch.device("cpu"))
        registered_at = time.perf_counter()
        _, nearest = cKDTree(fs_white.vertices).query(white.vertices)
        spiky = spiky_faces(inflation.inflated)
        white_area = np.linalg.norm(face_normals(white), axis=1)
        row = {
            "hemi": hemisphere, "vertices": len(white.vertices),
            "spiky": f"{int(spiky.sum())} ({100 * white_area[spiky].sum() / white_area.sum():.3f} %)",
            "sulc_r": float(np.corrcoef(inflation.sulc, fs_sulc[nearest])[0, 1]),
            "flipped": f"{mapping.flipped_at_projection} -> {len(flipped_faces(mapping.sphere))}",
            "distortion": area_distortion(log_area_ratio(mapping.sphere, white), white_area),
            "rigid_r": registration.rigid_correlation, "registered_r": registration.correlation,
            "unfolded": registration.unfolded,
            "seconds": f"{inflated_at - start:.0f} / {sphere_at - inflated_at:.0f} / {registered_at - sphere_at:.0f}",
        }
        if args.surfaces is None:
            row["fs_registered_r"] = sulc_correlation(registration.sphere, fs_sulc, template)
        rows.append(row)
        print(row, flush=True)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    columns = ["hemi", "vertices", "spiky", "sulc_r", "flipped", "distortion", "rigid_r", "registered_r", "fs_registered_r", "unfolded",
               "seconds"]
    headers = ["hemi", "vertices", "spiky faces of the inflated (% of white area)", "sulc r vs FreeSurfer", "flipped faces conformal map -> sphere",
               "sphere area distortion: SD of log area ratio (area off > 2x)",
               "fsaverage5 sulc r, rotation", "after warp", "FreeSurfer's sulc, our warp",
               "faces unfolded after warp", "s inflate / sphere / register"]
    source = "FreeSurfer's smoothwm" if args.surfaces is None else f"our white surfaces ({args.surfaces})"
    load = os.getloadavg()[0]
    text = (f"\n## Inflation, sphere and registration to fsaverage5, aomic sub-0001 (issue 17), "
            f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, load {load:.1f} on {os.cpu_count()} CPUs\n\n"
            f"`python benchmarks/surface_registration.py --threads {args.threads}"
            f"{'' if args.surfaces is None else ' --surfaces DIR'}`: "
            f"input {source}; peak resident memory {peak_gb:.1f} GB.\n\n"
            f"{markdown_table(rows, columns, headers)}\n")
    print(text)
    if args.results:
        append_results(text)


if __name__ == "__main__":
    main()
