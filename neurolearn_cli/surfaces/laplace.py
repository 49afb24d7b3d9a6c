"""Where the pial surface should be: streamlines of a Laplace potential from the white matter to the GM/CSF
boundary, stopped at the CSF skeleton between sulcal banks.

The potential is 0 on the white matter and 1 outside the cortex (where the
grey-or-white probability falls below a half, on the sulcal skeleton, and
farther than the maximum thickness from the white matter); in between it
solves Laplace's equation. Its gradient lines run from every point of the
white surface to the outer boundary and never cross one another (Jones et
al., Hum Brain Mapp 2000), so endpoints traced along them give a pial
surface that folds far less than offsets along surface normals do.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from neurolearn_cli.engine.geometry import voxel_spacing
from neurolearn_cli.engine.image import bounding_box
from neurolearn_cli.surfaces.placement import sample_world

#: Two neighbouring voxels lie on opposite sulcal banks when their nearest white-matter voxels are this far apart
#: (mm) and the directions to them differ by more than a right angle.
BANK_SEPARATION_MM = 3.0
#: Jacobi sweeps of the potential (the cortex is at most a few voxels thick, so a few hundred converge).
JACOBI_SWEEPS = 200


def sulcal_skeleton(white_matter: np.ndarray, cortex: np.ndarray,
                    spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The voxels of ``cortex`` on the medial surface between opposite banks of white matter, and every
    voxel's distance (mm) to the white matter.

    A voxel is on it when one of its six neighbours has its nearest
    white-matter voxel at least :data:`BANK_SEPARATION_MM` away from the
    voxel's own and on the other side (the two directions at more than a
    right angle); of the pair, the one farther from the white matter is kept.
    """
    distance, nearest = ndimage.distance_transform_edt(~white_matter, sampling=spacing, return_indices=True)
    scale = np.asarray(spacing, dtype=np.float32)[:, None, None, None]
    direction = (nearest - np.indices(white_matter.shape)).astype(np.float32) * scale
    skeleton = np.zeros(white_matter.shape, dtype=bool)
    for axis in range(3):
        low = tuple(slice(0, -1) if a == axis else slice(None) for a in range(3))
        high = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
        all_low, all_high = (slice(None), *low), (slice(None), *high)
        separation = np.sqrt(((nearest[all_low] - nearest[all_high]) ** 2 * scale**2).sum(0))
        opposite = (direction[all_low] * direction[all_high]).sum(0) < 0
        ridge = (separation >= BANK_SEPARATION_MM) & opposite
        skeleton[low] |= ridge & (distance[low] >= distance[high])
        skeleton[high] |= ridge & (distance[high] >= distance[low])
    return skeleton & cortex, distance


def laplace_potential(inner: torch.Tensor, outer: torch.Tensor, sweeps: int = JACOBI_SWEEPS) -> torch.Tensor:
    """The potential that is 0 on ``inner``, 1 on ``outer`` and harmonic between (Jacobi sweeps of the
    six-neighbour mean, edges replicated)."""
    fixed = inner | outer
    value = outer.float()
    potential = torch.where(fixed, value, torch.full_like(value, 0.5))
    for _ in range(sweeps):
        padded = torch.nn.functional.pad(potential[None, None], (1, 1, 1, 1, 1, 1), mode="replicate")[0, 0]
        mean = (padded[:-2, 1:-1, 1:-1] + padded[2:, 1:-1, 1:-1] + padded[1:-1, :-2, 1:-1]
                + padded[1:-1, 2:, 1:-1] + padded[1:-1, 1:-1, :-2] + padded[1:-1, 1:-1, 2:]) / 6.0
        potential = torch.where(fixed, value, mean)
    return potential


def pial_targets(start: np.ndarray, normals: np.ndarray, white_matter: torch.Tensor, inside: torch.Tensor,
                 affine: torch.Tensor, *, max_mm: float, step_mm: float = 0.2, level: float = 0.5,
                 fractions: tuple[float, ...] = (1.0,)) -> list[np.ndarray]:
    """Where the streamline from each of ``start`` (white-surface vertices, world mm) meets the pial boundary,
    and the points at the other ``fractions`` of its length (one (V, 3) array per fraction).

    ``white_matter``: the hemisphere's (topology-corrected) white matter,
    bool on the grid of ``affine``; ``inside``: its grey-or-white
    probability; both are cropped to the white matter's box grown by
    ``max_mm``. A streamline follows the potential's gradient (``normals``
    where it vanishes) in ``step_mm`` steps and ends where ``inside`` falls
    to ``level`` (interpolated within the step), before a step past the
    potential's ridge (where its gradient turns back: the middle of the
    sulcal skeleton, between two banks), or after ``max_mm``. Since
    streamlines do not cross, the
    points at one fraction of their lengths make a surface between white and
    pial that folds little either.
    """
    spacing = voxel_spacing(affine)
    box = bounding_box(white_matter, margin=[int(np.ceil(max_mm / s)) + 2 for s in spacing])
    shift = torch.eye(4, dtype=torch.float64, device=affine.device)
    shift[:3, 3] = torch.tensor([float(b.start) for b in box], dtype=torch.float64)
    affine = affine.double() @ shift
    inside = inside[box]
    wm = white_matter[box].cpu().numpy()
    cortex = (inside.cpu().numpy() >= level) & ~wm
    skeleton, distance = sulcal_skeleton(wm, cortex, spacing)
    outer = ~wm & (~cortex | skeleton | (distance > max_mm))
    device = inside.device
    potential = laplace_potential(torch.from_numpy(wm).to(device), torch.from_numpy(outer).to(device))
    gradient = torch.stack(torch.gradient(potential, spacing=list(spacing)))
    points, length = start.copy(), np.zeros(len(start))
    path = [start.copy()]
    moving = np.ones(len(start), dtype=bool)
    heading = np.zeros_like(normals)
    for _ in range(int(np.ceil(max_mm / step_mm))):
        here = points[moving]
        slope = _gradient_at(gradient, affine, here)
        size = np.linalg.norm(slope, axis=1, keepdims=True)
        direction = np.where(size > 1e-4, slope / np.maximum(size, 1e-12), normals[moving])
        ahead = here + step_mm * direction
        before, after = sample_world(inside, affine, here), sample_world(inside, affine, ahead)
        fraction = np.where(after >= level, 1.0,
                            np.clip((before - level) / np.maximum(before - after, 1e-6), 0.0, 1.0))
        turning_back = (direction * heading[moving]).sum(axis=1) < 0.0
        ridge_ahead = (_gradient_at(gradient, affine, ahead) * direction).sum(axis=1) <= 0.0
        fraction[turning_back | ((size[:, 0] > 1e-4) & ridge_ahead)] = 0.0
        heading[moving] = direction
        fraction = np.minimum(fraction, (max_mm - length[moving]) / step_mm)
        points[moving] = here + (fraction * step_mm)[:, None] * direction
        length[moving] += fraction * step_mm
        path.append(points.copy())
        still = np.flatnonzero(moving)[fraction >= 1.0]
        moving[:] = False
        moving[still] = True
        if not moving.any():
            break
    return [_along(np.stack(path), length, f * length, step_mm) for f in fractions]


def _gradient_at(gradient: torch.Tensor, affine: torch.Tensor, points: np.ndarray) -> np.ndarray:
    """The world-space gradient (V, 3) at world ``points`` of a field whose per-axis voxel gradient (3, X, Y, Z)
    was taken in mm along the grid axes of ``affine``."""
    rotation = affine[:3, :3].double().cpu().numpy() / np.asarray(voxel_spacing(affine))[None, :]
    return np.stack([sample_world(g, affine, points) for g in gradient], axis=1) @ rotation.T


def _along(path: np.ndarray, length: np.ndarray, wanted: np.ndarray, step_mm: float) -> np.ndarray:
    """The point ``wanted`` mm along each streamline: ``path`` (S, V, 3) holds its points after each step,
    all full steps but the last, which ends at ``length``."""
    index = np.minimum(np.floor(wanted / step_mm).astype(np.int64), len(path) - 2)
    before = index * step_mm
    after = np.minimum((index + 1) * step_mm, length)
    t = np.clip((wanted - before) / np.maximum(after - before, 1e-12), 0.0, 1.0)[:, None]
    rows = np.arange(path.shape[1])
    return path[index, rows] + t * (path[index + 1, rows] - path[index, rows])
