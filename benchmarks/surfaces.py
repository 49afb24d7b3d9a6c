"""Surfaces against FreeSurfer on aomic sub-0001 (issue 17).

Run ``python benchmarks/surfaces.py [--smri-out DIR] [--results]``.

Runs smri on ``../shared/data/aomic/bids`` (or reuses the outputs of an
earlier run in ``--smri-out``), then times
:func:`neurolearn_cli.surfaces.pipeline.reconstruct_surfaces` alone (wall time,
peak resident memory of the process) and compares its meshes with
FreeSurfer's from ``aomic/reference`` (fMRIPrep's GIFTIs, in the T1w's world
coordinates):

* mean symmetric surface distance white-to-``smoothwm`` and pial-to-pial:
  each vertex to the nearest point of the other mesh's triangles, both ways,
  the two means averaged (the issue's measure); beside it the older
  nearest-vertex figure, which overstates it by a few tenths of a millimetre;
* mean thickness against ``lh/rh.thickness``;
* Desikan regions: each of our vertices is labelled by the nearest cortical
  voxel of ``aparc+aseg.mgz``; the correlation of our per-region mean
  thickness with ``aparc.stats``' ThickAvg over the 68 regions;
* Euler characteristics, self-intersecting faces, and the topology before
  correction; the cortical volume between white and pial.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
from _tables import append_results, markdown_table
from scipy import ndimage
from scipy.spatial import cKDTree

from neurolearn_cli.surfaces.mesh import Mesh, distance_to_surface

if TYPE_CHECKING:
    from neurolearn_cli.engine.image import Image
    from neurolearn_cli.engine.transforms import Transform
    from neurolearn_cli.surfaces.reconstruct import HemisphereSurfaces

DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
AOMIC = DATA / "aomic"
REFERENCE = AOMIC / "reference"
FS = REFERENCE / "freesurfer" / "sub-0001"
FMRIPREP = REFERENCE / "fmriprep" / "sub-0001" / "anat"
FS_HEMI = {"L": "lh", "R": "rh"}
#: A FreeSurfer midthickness vertex farther than this (mm) from every cortical voxel of aparc+aseg is on the medial wall.
MEDIAL_WALL_MM = 1.0


def run_smri(output: Path) -> None:
    """smri on aomic into ``output`` (the benchmark reads its outputs as the stage does)."""
    subprocess.run([sys.executable, "-m", "neurolearn_cli", "smri", str(AOMIC / "bids"), str(output), "participant"],
                   check=True)


def mean_symmetric_surface_distance(ours: Mesh, theirs: Mesh) -> float:
    """The mean of the point-to-surface distances from each mesh's vertices to the other mesh, both ways averaged."""
    there = distance_to_surface(ours.vertices, theirs)
    back = distance_to_surface(theirs.vertices, ours)
    return float((there.mean() + back.mean()) / 2.0)


def mean_symmetric_vertex_distance(ours: np.ndarray, theirs: np.ndarray) -> float:
    """The mean of the nearest-vertex distances from each mesh to the other."""
    there, _ = cKDTree(theirs).query(ours)
    back, _ = cKDTree(ours).query(theirs)
    return float((there.mean() + back.mean()) / 2.0)


def freesurfer_mesh(hemisphere: str, surface: str) -> Mesh:
    """FreeSurfer's ``smoothwm`` or ``pial`` of one hemisphere as fMRIPrep wrote it (T1w world mm)."""
    vertices, faces = nib.load(FMRIPREP / f"sub-0001_hemi-{hemisphere}_{surface}.surf.gii").agg_data()
    return Mesh(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64))


def aparc_thickness(hemi: str) -> dict[str, float]:
    """FreeSurfer's ThickAvg per Desikan region of ``lh``/``rh``.aparc.stats."""
    rows = [line.split() for line in (FS / "stats" / f"{hemi}.aparc.stats").read_text().splitlines()
            if line and not line.startswith("#")]
    return {row[0]: float(row[4]) for row in rows}


@functools.lru_cache(maxsize=2)
def cortex_lookup(hemisphere: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, cKDTree]:
    """What labelling a hemisphere's vertices needs, computed once per hemisphere: aparc+aseg's labels, for every
    voxel the index of its nearest cortical voxel, the world-to-voxel matrix, and which FreeSurfer midthickness
    vertices (in the returned tree) lie within :data:`MEDIAL_WALL_MM` of a cortical voxel (not the medial wall)."""
    image = nib.load(FS / "mri" / "aparc+aseg.mgz")
    labels = np.asarray(image.dataobj)
    base = 1000 if hemisphere == "L" else 2000
    cortex = (labels > base) & (labels < base + 100)
    distance, nearest = ndimage.distance_transform_edt(~cortex, return_indices=True)
    to_voxel = np.linalg.inv(image.affine)
    midthickness = freesurfer_mesh(hemisphere, "midthickness").vertices
    on_cortex = distance[_voxel_of(midthickness, to_voxel, labels.shape)] <= MEDIAL_WALL_MM
    return labels, nearest, to_voxel, on_cortex, cKDTree(midthickness)


def _voxel_of(points: np.ndarray, to_voxel: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The voxel index arrays of world ``points``, clipped to the grid of ``shape``."""
    voxel = np.clip(np.rint(nib.affines.apply_affine(to_voxel, points)).astype(int), 0, np.array(shape) - 1)
    return tuple(voxel.T)


def region_of_vertices(vertices: np.ndarray, hemisphere: str) -> tuple[np.ndarray, dict[int, str]]:
    """The Desikan label of each vertex: that of the nearest cortical voxel of aparc+aseg; 0 on the medial wall.

    A vertex is on the medial wall when its nearest FreeSurfer midthickness
    vertex lies farther than :data:`MEDIAL_WALL_MM` from every cortical voxel.
    ``aparc.stats`` leaves the medial wall out (through ``lh.cortex.label``);
    labelled by the nearest voxel, its thin vertices would join the cingulate,
    parahippocampal and medial orbitofrontal regions.
    """
    labels, nearest, to_voxel, on_cortex, midthickness = cortex_lookup(hemisphere)
    _, closest = midthickness.query(vertices)
    here = _voxel_of(vertices, to_voxel, labels.shape)
    region = np.where(on_cortex[closest], labels[tuple(n[here] for n in nearest)], 0)
    base = 1000 if hemisphere == "L" else 2000
    return region, {base + code: name for code, name in _desikan_names().items()}


def region_correlation(vertices: np.ndarray, thickness: np.ndarray, hemisphere: str) -> tuple[int, float]:
    """How many Desikan regions hold at least 10 of ``vertices``, and the correlation of their mean
    ``thickness`` with FreeSurfer's ``aparc.stats``."""
    labels, names = region_of_vertices(vertices, hemisphere)
    reference = aparc_thickness(FS_HEMI[hemisphere])
    ours, theirs = [], []
    for code, name in names.items():
        chosen = labels == code
        if name in reference and chosen.sum() >= 10:
            ours.append(float(thickness[chosen].mean()))
            theirs.append(reference[name])
    return len(ours), float(np.corrcoef(ours, theirs)[0, 1])


def _desikan_names() -> dict[int, str]:
    """FreeSurfer's colour-table indices of the Desikan regions (FreeSurferColorLUT, 1001-1035 minus 1)."""
    names = ["bankssts", "caudalanteriorcingulate", "caudalmiddlefrontal", "corpuscallosum", "cuneus",
             "entorhinal", "fusiform", "inferiorparietal", "inferiortemporal", "isthmuscingulate",
             "lateraloccipital", "lateralorbitofrontal", "lingual", "medialorbitofrontal", "middletemporal",
             "parahippocampal", "paracentral", "parsopercularis", "parsorbitalis", "parstriangularis",
             "pericalcarine", "postcentral", "posteriorcingulate", "precentral", "precuneus",
             "rostralanteriorcingulate", "rostralmiddlefrontal", "superiorfrontal", "superiorparietal",
             "superiortemporal", "supramarginal", "frontalpole", "temporalpole", "transversetemporal", "insula"]
    return {i + 1: name for i, name in enumerate(names)}


def freesurfer_volumes() -> dict[str, float]:
    """FreeSurfer's grey matter (``TotalGrayVol``) and white matter (cerebral + cerebellar) of aomic, in mL."""
    text = (FS / "stats" / "aseg.stats").read_text()
    measures = {line.split(",")[1].strip(): float(line.split(",")[3]) / 1000.0
                for line in text.splitlines() if line.startswith("# Measure")}
    cerebellar_wm = sum(float(line.split()[3]) / 1000.0 for line in text.splitlines()
                        if not line.startswith("#") and "Cerebellum-White-Matter" in line)
    return {"GM": measures["TotalGrayVol"], "WM": measures["CerebralWhiteMatterVol"] + cerebellar_wm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smri-out", type=Path, help="an earlier smri output directory of aomic to reuse")
    parser.add_argument("--hemisphere", choices=["L", "R"],
                        help="reconstruct this hemisphere alone (a faster loop; no tissue volumes)")
    parser.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    import torch

    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.itkio import read_transform
    from neurolearn_cli.surfaces.measures import volume_between
    from neurolearn_cli.surfaces.pipeline import reconstruct_surfaces

    smri_out = args.smri_out or Path(tempfile.mkdtemp(prefix="surfaces-bench-"))
    if args.smri_out is None:
        run_smri(smri_out)
    anat = smri_out / "sub-0001" / "anat"
    device = torch.device("cpu")
    tissues = {t: load_image(anat / f"sub-0001_label-{t}_probseg.nii.gz", device) for t in ("GM", "WM", "CSF")}
    mask = load_image(anat / "sub-0001_desc-brain_mask.nii.gz", device)
    t1w = load_image(anat / "sub-0001_desc-preproc_T1w.nii.gz", device)
    to_template = read_transform(anat / "sub-0001_from-MNI152NLin2009aSym_to-T1w_mode-image_xfm.h5")
    start = time.perf_counter()
    if args.hemisphere:
        hemispheres = {args.hemisphere: one_hemisphere(tissues, mask, to_template, t1w, args.hemisphere)}
    else:
        result = reconstruct_surfaces(tissues, mask, to_template, t1w)
        hemispheres = result.hemispheres
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    rows = []
    for hemisphere, surfaces in hemispheres.items():
        hemi = FS_HEMI[hemisphere]
        fs_white = freesurfer_mesh(hemisphere, "smoothwm")
        fs_pial = freesurfer_mesh(hemisphere, "pial")
        fs_thickness = nib.freesurfer.read_morph_data(FS / "surf" / f"{hemi}.thickness")
        regions, region_r = region_correlation(surfaces.white.vertices, surfaces.thickness, hemisphere)
        _, freesurfer_r = region_correlation(fs_white.vertices, fs_thickness, hemisphere)
        rows.append({
            "hemi": hemisphere, "vertices": len(surfaces.white.vertices),
            "white_mm": mean_symmetric_surface_distance(surfaces.white, fs_white),
            "pial_mm": mean_symmetric_surface_distance(surfaces.pial, fs_pial),
            "white_vertex_mm": mean_symmetric_vertex_distance(surfaces.white.vertices, fs_white.vertices),
            "pial_vertex_mm": mean_symmetric_vertex_distance(surfaces.pial.vertices, fs_pial.vertices),
            "thickness": float(surfaces.thickness.mean()), "fs_thickness": float(fs_thickness.mean()),
            "regions": regions, "region_r": region_r, "fs_region_r": freesurfer_r,
            "euler": f"{surfaces.euler_before} -> {surfaces.euler_white} / {surfaces.euler_pial}",
            "cut": surfaces.voxels_cut,
            "intersections": f"{surfaces.intersections_white} / {surfaces.intersections_pial}",
            "cortex_ml": volume_between(surfaces.white, surfaces.pial) / 1000.0,
            "steps": ", ".join(f"{step} {seconds:.0f}" for step, seconds in surfaces.seconds.items()),
        })
    columns = ["hemi", "vertices", "white_mm", "pial_mm", "white_vertex_mm", "pial_vertex_mm", "thickness", "fs_thickness", "regions", "region_r",
               "fs_region_r", "euler", "cut", "intersections", "cortex_ml", "steps"]
    headers = ["hemi", "vertices", "white surface dist (mm)", "pial surface dist (mm)", "white vertex dist (mm)",
               "pial vertex dist (mm)", "mean thickness", "FreeSurfer's",
               "regions", "region r", "FreeSurfer's region r", "Euler before -> white / pial", "voxels cut", "self-int. faces white / pial",
               "cortex (mL)", "seconds per step"]
    table = markdown_table(rows, columns, headers)
    if not args.hemisphere:
        table += volume_sentence(result.volumes)
    load = os.getloadavg()[0]
    which = f"hemisphere {args.hemisphere}" if args.hemisphere else "both hemispheres"
    option = f" --hemisphere {args.hemisphere}" if args.hemisphere else ""
    text = (f"\n## Surfaces against FreeSurfer, aomic sub-0001 (issue 17), "
            f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, load {load:.1f} on {os.cpu_count()} CPUs\n\n"
            f"`python benchmarks/surfaces.py{option}`: {which} in {seconds:.0f} s on top of smri, "
            f"peak resident memory {peak_gb:.1f} GB.\n\n{table}\n")
    print(text)
    if args.results:
        append_results(text)


def volume_sentence(volumes: dict[str, float]) -> str:
    """The tissue volumes the surfaces give against FreeSurfer's, as a sentence under the table."""
    reference = freesurfer_volumes()
    return ("\n\nTissue volumes from the surfaces (the stage's `stat-volume` table): GM "
            f"{volumes['GM_surface']:.0f} mL (cortex {volumes['cortical_GM']:.0f}, subcortical "
            f"{volumes['subcortical_GM']:.0f}, cerebellar {volumes['cerebellar_GM']:.0f}) against FreeSurfer's "
            f"{reference['GM']:.0f} mL ({100 * (volumes['GM_surface'] / reference['GM'] - 1):+.1f} %); WM "
            f"{volumes['WM_surface']:.0f} mL (cerebral {volumes['cerebral_WM']:.0f}, cerebellar "
            f"{volumes['cerebellar_WM']:.0f}) against {reference['WM']:.0f} mL "
            f"({100 * (volumes['WM_surface'] / reference['WM'] - 1):+.1f} %).")


def one_hemisphere(tissues: dict[str, Image], mask: Image, to_template: Transform, t1w: Image,
                   hemisphere: str) -> HemisphereSurfaces:
    """One hemisphere's surfaces from smri's outputs, its fields made as
    :func:`~neurolearn_cli.surfaces.pipeline.reconstruct_surfaces` makes them."""
    from neurolearn_cli.engine.image import world_grid
    from neurolearn_cli.surfaces.hemispheres import hemisphere_fields
    from neurolearn_cli.surfaces.placement import tissue_contrast
    from neurolearn_cli.surfaces.reconstruct import reconstruct_hemisphere

    grid = mask.grid
    template_points = to_template.map_points(world_grid(grid).reshape(-1, 3)).reshape(*grid.shape, 3)
    wm, gm = tissues["WM"].data, tissues["GM"].data
    contrast = tissue_contrast(t1w.data, wm, gm, grid.spacing)
    fields = hemisphere_fields(wm, gm, mask.data, template_points, contrast)[hemisphere]
    return reconstruct_hemisphere(fields.boundary, fields.inside, mask.affine)


if __name__ == "__main__":
    main()
