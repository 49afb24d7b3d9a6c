"""Moving mesh vertices onto boundaries in a volume: the white surface to the WM 0.5 level, the pial outward.

Vertices are in world millimetres; volumes are sampled trilinearly through
the inverse of their affine (torch, on the volume's device).
"""

from __future__ import annotations

import numpy as np
import torch

from neurolearn_cli.engine._sampling import sample
from neurolearn_cli.surfaces.mesh import (
    Mesh,
    adjacency,
    neighbour_mean,
    smooth_values,
    vertex_normals,
)

#: FreeSurfer's cap on cortical thickness, also the farthest the pial surface moves from the white.
MAX_THICKNESS_MM = 5.0


def sample_world(volume: torch.Tensor, affine: torch.Tensor, points: np.ndarray) -> np.ndarray:
    """Trilinear samples of a 3D ``volume`` at world ``points`` (..., 3); zero outside the grid."""
    inverse = torch.linalg.inv(affine.double())
    world = torch.as_tensor(points.reshape(-1, 3), dtype=torch.float64, device=volume.device)
    voxel = world @ inverse[:3, :3].T + inverse[:3, 3]
    values = sample(volume[None, None].float(), voxel.reshape(1, -1, 1, 1, 3))
    return values.reshape(points.shape[:-1]).double().cpu().numpy()


def crossing_offsets(profiles: np.ndarray, offsets: np.ndarray, level: float) -> np.ndarray:
    """Per row of ``profiles`` (sampled at ``offsets``), the interpolated offset where it crosses ``level``
    nearest to offset 0; NaN where it never crosses."""
    above = profiles >= level
    change = above[:, 1:] != above[:, :-1]
    low, high = profiles[:, :-1], profiles[:, 1:]
    fraction = np.clip((level - low) / np.where(high != low, high - low, 1.0), 0.0, 1.0)
    where = offsets[:-1] + fraction * (offsets[1:] - offsets[:-1])
    distance = np.where(change, np.abs(where), np.inf)
    best = distance.argmin(axis=1)
    found = np.isfinite(distance[np.arange(len(best)), best])
    return np.where(found, where[np.arange(len(best)), best], np.nan)


def place_white(mesh: Mesh, wm: torch.Tensor, affine: torch.Tensor, *, iterations: int = 8,
                reach_mm: float = 1.0, step_mm: float = 0.1) -> Mesh:
    """Move a voxel-staircase mesh onto the 0.5 level of the WM field ``wm``, smoothing as it goes.

    Each iteration halves the umbrella Laplacian (smoothness) and moves every
    vertex along its normal to the nearest 0.5 crossing of ``wm`` within
    ``reach_mm`` (half the reach where there is none, towards it).
    """
    matrix = adjacency(mesh)
    offsets = np.arange(-reach_mm, reach_mm + step_mm / 2, step_mm)
    vertices = mesh.vertices.copy()
    for _ in range(iterations):
        vertices = 0.5 * vertices + 0.5 * neighbour_mean(mesh, vertices, matrix)
        current = mesh.with_vertices(vertices)
        normals = vertex_normals(current)
        profiles = sample_world(wm, affine, vertices[:, None, :] + offsets[None, :, None] * normals[:, None, :])
        move = crossing_offsets(profiles, offsets, 0.5)
        inside = profiles[:, len(offsets) // 2] >= 0.5
        move = np.where(np.isnan(move), np.where(inside, reach_mm / 2, -reach_mm / 2), move)
        vertices = vertices + move[:, None] * normals
    return mesh.with_vertices(vertices)


def pial_distances(white: Mesh, inside: torch.Tensor, wm_distance: torch.Tensor, affine: torch.Tensor, *,
                   step_mm: float = 0.2, max_mm: float = MAX_THICKNESS_MM) -> np.ndarray:
    """How far each white vertex's pial point lies along the outward normal.

    The pial boundary is where ``inside`` (the WM + GM probability) falls
    below 0.5, or, in a sulcus whose banks touch, where the distance to the
    white matter (``wm_distance``, mm) stops growing (the middle of the sulcus),
    or ``max_mm``, whichever comes first.
    """
    normals = smooth_values(white, vertex_normals(white), 3)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    offsets = np.arange(0.0, max_mm + step_mm / 2, step_mm)
    points = white.vertices[:, None, :] + offsets[None, :, None] * normals[:, None, :]
    tissue = sample_world(inside, affine, points)
    depth = sample_world(wm_distance, affine, points)
    csf = crossing_offsets(np.where(np.arange(len(offsets)) == 0, 1.0, tissue), offsets, 0.5)
    receding = np.diff(depth, axis=1) < -0.25 * step_mm
    receding[:, 0] = False
    first = np.where(receding.any(axis=1), receding.argmax(axis=1), len(offsets) - 1)
    middle = offsets[first]
    return np.fmin(np.fmin(csf, middle), max_mm)


def place_pial(white: Mesh, distances: np.ndarray, *, smoothing: int = 2) -> Mesh:
    """The pial surface: each white vertex moved outward by its (lightly smoothed) pial distance."""
    distances = smooth_values(white, distances, smoothing)
    normals = smooth_values(white, vertex_normals(white), 3)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return white.with_vertices(white.vertices + distances[:, None] * normals)
