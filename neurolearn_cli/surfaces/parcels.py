"""Per-parcel cortical thickness: every vertex takes the parcel of its nearest cortical voxel.

A cortical voxel is a voxel of the cortical ribbon (between white and pial)
that smri's parcellation labels, on the T1w grid; each midthickness vertex
takes the label of the nearest one, as FreeSurfer's ``aparc`` is compared
with a volume parcellation by labelling each vertex from the nearest cortical
voxel. A vertex farther than :data:`MAX_LABEL_DISTANCE_MM` from every
cortical voxel (the medial wall, where the surface closes over the deep grey)
stays unlabelled. A parcel no vertex reaches has no thickness (missing, never 0).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from neurolearn_cli.surfaces.reconstruct import HemisphereSurfaces

#: Farthest a vertex may be from a cortical voxel and still take its label (FreeSurfer's thickness cap).
MAX_LABEL_DISTANCE_MM = 5.0
#: The label of a vertex that no cortical voxel is near.
UNLABELLED = 0


def vertex_labels(points: np.ndarray, labels: np.ndarray, cortex: np.ndarray, affine: np.ndarray,
                  max_mm: float = MAX_LABEL_DISTANCE_MM) -> np.ndarray:
    """The parcel label of each world point (N, 3): that of the nearest labelled voxel of ``cortex``.

    ``labels`` (integer) and ``cortex`` (bool) are on the grid of ``affine``;
    points farther than ``max_mm`` from every labelled cortical voxel get
    :data:`UNLABELLED`.
    """
    candidates = np.argwhere(cortex & (labels > 0))
    if len(candidates) == 0:
        return np.full(len(points), UNLABELLED, dtype=np.int64)
    centres = candidates @ affine[:3, :3].T + affine[:3, 3]
    distance, nearest = cKDTree(centres).query(points)
    found = labels[tuple(candidates[nearest].T)].astype(np.int64)
    return np.where(distance <= max_mm, found, UNLABELLED)


def parcel_means(values: np.ndarray, labels: np.ndarray, table: pd.DataFrame) -> dict[str, float]:
    """The mean of ``values`` over the vertices of each parcel of ``table`` (``index``, ``name``); NaN where none."""
    means = {}
    for index, name in zip(table["index"], table["name"], strict=True):
        chosen = values[labels == int(index)]
        means[str(name)] = float(chosen.mean()) if chosen.size else float("nan")
    return means


def parcel_thickness(hemispheres: Mapping[str, HemisphereSurfaces], ribbons: Mapping[str, np.ndarray],
                     labels: np.ndarray, affine: np.ndarray, table: pd.DataFrame) -> dict[str, float]:
    """Mean thickness (mm) of each parcel of ``table`` over both hemispheres; NaN for a parcel no vertex reaches.

    Each hemisphere's midthickness vertices are labelled from its own ribbon
    (``ribbons``, bool on the grid of ``labels`` and ``affine``), so no vertex
    takes a parcel across the midline.
    """
    values, found = [], []
    for hemisphere, surfaces in hemispheres.items():
        values.append(surfaces.thickness)
        found.append(vertex_labels(surfaces.midthickness.vertices, labels, ribbons[hemisphere], affine))
    return parcel_means(np.concatenate(values), np.concatenate(found), table)
