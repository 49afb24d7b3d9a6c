"""A planted lesion: a blob of a T1w replaced with lesion-like intensity, and its BIDS roi mask.

Chronic stroke lesions are dark on T1w (fluid-filled tissue loss, near CSF
intensity) with a ragged edge. The blob is an ellipsoid whose radius is
modulated by a few seeded low-order waves, filled with a seeded, slightly
textured dark intensity, so registration and segmentation meet something
neither template nor tissue classes explain. Used by the tests and the
lesion benchmark on real scans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlantedLesion:
    """The T1w data with the lesion planted and the lesion mask (uint8 0/1) on the same grid."""

    t1w: np.ndarray
    mask: np.ndarray


def lesion_blob(shape: tuple[int, ...], affine: np.ndarray, centre_mm: np.ndarray, radii_mm: np.ndarray,
                seed: int = 0) -> np.ndarray:
    """Boolean mask of a ragged ellipsoid (``radii_mm`` semi-axes, +-20 % ragged) centred at ``centre_mm``."""
    rng = np.random.default_rng(seed)
    index = np.stack(np.meshgrid(*(np.arange(n) for n in shape[:3]), indexing="ij"), axis=-1)
    world = index @ affine[:3, :3].T + affine[:3, 3]
    offset = (world - centre_mm) / radii_mm
    distance = np.linalg.norm(offset, axis=-1)
    direction = offset / np.maximum(distance, 1e-6)[..., None]
    ragged = np.ones(shape[:3])
    for _ in range(4):
        axis = rng.normal(size=3)
        ragged += 0.05 * np.cos(np.pi * rng.integers(1, 4) * direction @ (axis / np.linalg.norm(axis))
                                + rng.uniform(0, 2 * np.pi))
    return distance <= ragged


def plant_lesion(t1w: np.ndarray, affine: np.ndarray, centre_mm: np.ndarray, radii_mm: np.ndarray, *,
                 intensity: float, seed: int = 0) -> PlantedLesion:
    """``t1w`` with a :func:`lesion_blob` set to ``intensity`` (+-5 % seeded texture) and the blob as mask."""
    blob = lesion_blob(t1w.shape, np.asarray(affine, dtype=np.float64), np.asarray(centre_mm, dtype=np.float64),
                       np.asarray(radii_mm, dtype=np.float64), seed)
    texture = 1.0 + 0.05 * np.random.default_rng(seed + 1).standard_normal(int(blob.sum()))
    planted = t1w.astype(np.float32, copy=True)
    planted[blob] = (intensity * texture).astype(np.float32)
    return PlantedLesion(planted, blob.astype(np.uint8))
