"""Moving mesh vertices onto boundaries in a volume without the mesh crossing itself: the white surface onto a 0.5
level, and the crossing check (:func:`untangle`) the pial placement shares.

Vertices are in world millimetres; volumes are sampled trilinearly through
the inverse of their affine (torch, on the volume's device).
"""

from __future__ import annotations

import numpy as np
import torch

from neurolearn_cli.engine._sampling import sample
from neurolearn_cli.engine.reduce import fixed_sum
from neurolearn_cli.smri.priors import gaussian_smooth
from neurolearn_cli.surfaces.mesh import (
    Mesh,
    adjacency,
    intersecting_faces,
    neighbour_mean,
    vertex_normals,
)

#: FreeSurfer's cap on cortical thickness, also the farthest the pial surface moves from the white.
MAX_THICKNESS_MM = 5.0
#: Width of the neighbourhood over which the grey and white matter intensities are averaged for the white surface.
CONTRAST_FWHM_MM = 20.0
#: Where the white surface lies, as the fraction of the way from the local grey-matter mean intensity to the
#: white-matter mean (of voxels confidently of each tissue): FreeSurfer's white surface lies there, outside the
#: midway point (the median over its smoothwm vertices on aomic, with the partial-volume tissue mixture's maps;
#: see "white contrast level" in benchmarks/RESULTS.md).
WHITE_CONTRAST_LEVEL = 0.35


def sample_world(volume: torch.Tensor, affine: torch.Tensor, points: np.ndarray) -> np.ndarray:
    """Trilinear samples of a 3D ``volume`` at world ``points`` (..., 3); zero outside the grid."""
    inverse = torch.linalg.inv(affine.double())
    world = torch.as_tensor(points.reshape(-1, 3), dtype=torch.float64, device=volume.device)
    voxel = world @ inverse[:3, :3].T + inverse[:3, 3]
    values = sample(volume[None, None].float(), voxel.reshape(1, -1, 1, 1, 3))
    return values.reshape(points.shape[:-1]).double().cpu().numpy()


def tissue_contrast(t1w: torch.Tensor, wm: torch.Tensor, gm: torch.Tensor, spacing: tuple[float, float, float], *,
                    confident: float = 0.9, fwhm_mm: float | None = CONTRAST_FWHM_MM,
                    level: float = WHITE_CONTRAST_LEVEL) -> torch.Tensor:
    """The bias-corrected ``t1w`` scaled to rise by 1 from the local mean of confident grey matter to that of
    white matter, and to be 0.5 where the intensity is ``level`` of the way between them.

    Its 0.5 level is the white surface, by FreeSurfer's criterion: an
    intensity between the two tissues', placed the same way whatever the
    tissue maps' share of each partial-volume voxel. The means are Gaussian-weighted (``fwhm_mm``; ``None``: over the whole
    brain), so that what bias is left and regional contrast differences do not
    move the surface.
    """
    white_voxels, grey_voxels = (wm > confident).float(), (gm > confident).float()
    white = fixed_sum(t1w * white_voxels) / fixed_sum(white_voxels)
    grey = fixed_sum(t1w * grey_voxels) / fixed_sum(grey_voxels)
    if fwhm_mm is not None:
        sums = gaussian_smooth(torch.stack([t1w * white_voxels, white_voxels, t1w * grey_voxels, grey_voxels]),
                               spacing, fwhm_mm)
        enough = 0.05
        white = torch.where(sums[1] > enough, sums[0] / sums[1].clamp(min=enough), white)
        grey = torch.where(sums[3] > enough, sums[2] / sums[3].clamp(min=enough), grey)
    return (t1w - grey) / (white - grey).clamp(min=1e-6) + (0.5 - level)


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


def untangle(previous: np.ndarray, proposed: np.ndarray, mesh: Mesh, *, halvings: int = 0) -> np.ndarray:
    """``proposed`` vertex positions with every crossing undone: the moves of the vertices of crossing faces
    are halved, ``halvings`` times at most, then put back to ``previous``, until the mesh crosses itself
    nowhere.

    Each round shortens or puts back at least one move, so the loop ends: at
    worst on ``previous``, which is returned with its own crossings, if any.
    After the first round only pairs with a face that was moved can newly
    cross, so only those are tested.
    """
    current = proposed.copy()
    shortened = np.zeros(len(current), dtype=np.int64)
    changed = None
    while True:
        crossing = intersecting_faces(mesh.with_vertices(current), changed)
        back = np.zeros(len(current), dtype=bool)
        back[mesh.faces[crossing].ravel()] = True
        back &= (current != previous).any(axis=1)
        if not back.any():
            return current
        shortened[back] += 1
        last = back & (shortened > halvings)
        half = back & ~last
        current[half] = previous[half] + 0.5 * (current[half] - previous[half])
        current[last] = previous[last]
        changed = back[mesh.faces].any(axis=1)


def place_white(mesh: Mesh, field: torch.Tensor, affine: torch.Tensor, *, iterations: int = 8,
                reach_mm: float = 1.0, step_mm: float = 0.1) -> Mesh:
    """Move a voxel-staircase mesh onto the 0.5 level of ``field``, smoothing as it goes, never crossing itself.

    Each iteration halves the umbrella Laplacian (smoothness) and moves every
    vertex along its normal to the nearest 0.5 crossing of ``field`` within
    ``reach_mm`` (half the reach where there is none, towards it); moves that
    make the mesh cross itself are undone (:func:`untangle`).
    """
    matrix = adjacency(mesh)
    offsets = np.arange(-reach_mm, reach_mm + step_mm / 2, step_mm)
    vertices = mesh.vertices.copy()
    for _ in range(iterations):
        previous = vertices
        vertices = 0.5 * vertices + 0.5 * neighbour_mean(mesh, vertices, matrix)
        normals = vertex_normals(mesh.with_vertices(vertices))
        profiles = sample_world(field, affine, vertices[:, None, :] + offsets[None, :, None] * normals[:, None, :])
        move = crossing_offsets(profiles, offsets, 0.5)
        inside = profiles[:, len(offsets) // 2] >= 0.5
        move = np.where(np.isnan(move), np.where(inside, reach_mm / 2, -reach_mm / 2), move)
        vertices = untangle(previous, vertices + move[:, None] * normals, mesh)
    return mesh.with_vertices(vertices)
