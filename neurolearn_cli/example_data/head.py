"""A synthetic head around the template brain: CSF margin, skull, scalp, neck and face.

The template is skull-stripped; real T1w and BOLD images are not, and QC
metrics and brain extraction need the non-brain tissue and the air around it.
Layers are shells at fixed distances outside a smooth hull of the brain, plus
an elliptic neck column and a face block of soft tissue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel.affines import voxel_sizes
from scipy.ndimage import distance_transform_edt, gaussian_filter

from neurolearn_cli.example_data.geometry import world_coordinates

#: Outer limits of the extra-cerebral layers, in mm from the brain hull.
CSF_MM, SKULL_MM, HEAD_MM = 3.0, 9.0, 15.0
#: Thickness of the bright scalp (skin and fat), in mm from the head surface.
SCALP_MM = 5.0


@dataclass(frozen=True)
class HeadLayers:
    """Fractions 0..1 of each non-brain tissue; with the brain they sum to at most 1."""

    csf: np.ndarray
    skull: np.ndarray
    scalp: np.ndarray
    soft: np.ndarray


def _neck_and_face(coords: np.ndarray) -> np.ndarray:
    """Soft tissue below the brain: an elliptic neck column and an ellipsoidal face (MNI mm)."""
    x, y, z = coords
    neck = ((x / 50.0) ** 2 + ((y + 25.0) / 50.0) ** 2 <= 1.0) & (z < -30.0)
    face = (x / 62.0) ** 2 + ((y - 30.0) / 62.0) ** 2 + ((z + 55.0) / 42.0) ** 2 <= 1.0
    return neck | face


def build_head(brain: np.ndarray, affine: np.ndarray) -> HeadLayers:
    """Build head layers around a brain-fraction map on the grid of ``affine``."""
    spacing = voxel_sizes(affine)
    brain_mask = brain > 0.5
    hull = gaussian_filter(brain_mask.astype(np.float32), sigma=5.0 / spacing) > 0.25
    outside = distance_transform_edt(~hull, sampling=spacing)
    head = (outside <= HEAD_MM) | _neck_and_face(world_coordinates(brain.shape, affine))
    depth = distance_transform_edt(head, sampling=spacing)
    csf = outside <= CSF_MM
    scalp = head & (depth <= SCALP_MM) & ~csf
    skull = (outside <= SKULL_MM) & ~csf & ~scalp
    soft = head & ~csf & ~scalp & ~skull
    room = 1.0 - brain
    layers = [gaussian_filter(mask.astype(np.float32), sigma=0.5) for mask in (csf, skull, scalp, soft)]
    scale = room / np.maximum(sum(layers), 1.0)
    return HeadLayers(*(np.clip(layer * scale, 0.0, 1.0) for layer in layers))
