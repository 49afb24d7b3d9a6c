"""Surface IQMs, after DeepPrep's surface QC: topological defects, voxels cut, self-intersections, asymmetry.

Computed from what the surfaces stage wrote (its meshes, thickness and the
topology figures in the white and pial sidecars), so qc measures the surfaces
it shows. A figure the stage did not record is :class:`~neurolearn_cli.qc.measures.Missing`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from neurolearn_cli.qc.measures import Measure, Missing
from neurolearn_cli.surfaces.mesh import Mesh


@dataclass(frozen=True)
class HemisphereQC:
    """One hemisphere's surfaces as written: meshes (world mm), thickness per vertex and topology figures.

    ``display`` is the mesh the thickness map is drawn on (its vertices match
    ``thickness``); ``euler_before`` is the white matter's Euler characteristic before the
    topology correction, ``voxels_cut`` the voxels the correction left out,
    ``intersections`` the self-intersecting faces of the white and pial
    surfaces together (None where a sidecar does not say).
    """

    white: Mesh
    pial: Mesh
    display: Mesh
    thickness: np.ndarray
    euler_before: int | None
    voxels_cut: int | None
    intersections: int | None


def handles(euler: int | None) -> Measure:
    """Topological defects of a closed surface from its Euler characteristic: ``(2 - χ) / 2`` handles."""
    return Missing("the surfaces stage did not record the Euler characteristic") if euler is None else (2 - euler) / 2


def thickness_asymmetry(left: float, right: float) -> Measure:
    """Left/right asymmetry of mean thickness, ``2 (L - R) / (L + R)`` (0: symmetric; 0.1: left 10 % thicker)."""
    if left + right <= 0:
        return Missing("no cortical thickness")
    return 2.0 * (left - right) / (left + right)


def _total(values: list[int | None], what: str) -> Measure:
    if any(value is None for value in values):
        return Missing(f"the surfaces stage did not record {what}")
    return float(sum(value for value in values if value is not None))


def surface_iqms(hemispheres: Mapping[str, HemisphereQC]) -> dict[str, Measure]:
    """``surf_handles_<hemi>``, ``surf_voxels_cut``, ``surf_intersections``, ``surf_thickness_<hemi>`` and
    ``surf_thickness_asym`` of both hemispheres (``L``, ``R``)."""
    iqms: dict[str, Measure] = {}
    for hemisphere, surfaces in hemispheres.items():
        iqms[f"surf_handles_{hemisphere}"] = handles(surfaces.euler_before)
        iqms[f"surf_thickness_{hemisphere}"] = float(np.mean(surfaces.thickness))
    iqms["surf_voxels_cut"] = _total([s.voxels_cut for s in hemispheres.values()], "the voxels cut")
    iqms["surf_intersections"] = _total([s.intersections for s in hemispheres.values()], "self-intersections")
    left, right = iqms.get("surf_thickness_L"), iqms.get("surf_thickness_R")
    if isinstance(left, float) and isinstance(right, float):
        iqms["surf_thickness_asym"] = thickness_asymmetry(left, right)
    return iqms
