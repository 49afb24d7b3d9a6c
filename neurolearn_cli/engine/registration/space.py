"""Coordinate frames shared by the registration code.

Registration runs on ``grid_sample``: a voxel ``i`` of an axis of length ``n``
sits at the normalized coordinate ``2 i / (n - 1) - 1`` (``align_corners=True``)
and the normalized vector lists the axes in reverse order (x indexes the last
tensor axis). These helpers turn world (RAS mm) maps into the 3x4 ``theta``
that ``affine_grid`` takes, and back, in float64.
"""

from __future__ import annotations

import torch


def normalized_from_index(shape: tuple[int, int, int], device: torch.device) -> torch.Tensor:
    """4x4 float64 map from voxel index (i, j, k) to reversed normalized coordinates."""
    m = torch.zeros(4, 4, dtype=torch.float64, device=device)
    for axis, n in enumerate(shape):
        row = 2 - axis
        m[row, axis] = 2.0 / max(n - 1, 1)
        m[row, 3] = -1.0
    m[3, 3] = 1.0
    return m


def normalized_from_world(affine: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """4x4 map from world mm to the reversed normalized coordinates of a grid."""
    return normalized_from_index(shape, affine.device) @ torch.linalg.inv(affine)


def world_from_normalized(affine: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """4x4 map from a grid's reversed normalized coordinates to world mm."""
    return affine @ torch.linalg.inv(normalized_from_index(shape, affine.device))


def theta(
    fixed_affine: torch.Tensor,
    fixed_shape: tuple[int, int, int],
    moving_affine: torch.Tensor,
    moving_shape: tuple[int, int, int],
    world_map: torch.Tensor,
) -> torch.Tensor:
    """``affine_grid`` parameters (..., 3, 4) float32 for a world map fixed -> moving (..., 4, 4).

    The result sends normalized fixed coordinates to normalized moving ones,
    so ``grid_sample(moving, affine_grid(theta, fixed size))`` pulls the
    moving image onto the fixed grid through ``world_map``.
    """
    full = (
        normalized_from_world(moving_affine, moving_shape)
        @ world_map
        @ world_from_normalized(fixed_affine, fixed_shape)
    )
    return full[..., :3, :].to(torch.float32)


def apply_matrix(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply a 4x4 affine to points (..., 3)."""
    return points @ matrix[:3, :3].T.to(points.dtype) + matrix[:3, 3].to(points.dtype)


def about_center(linear: torch.Tensor, translation: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """4x4 maps (..., 4, 4) of ``x -> linear (x - center) + center + translation``."""
    batch = linear.shape[:-2]
    out = torch.zeros(*batch, 4, 4, dtype=linear.dtype, device=linear.device)
    out[..., :3, :3] = linear
    out[..., :3, 3] = translation + center - (linear @ center.unsqueeze(-1)).squeeze(-1)
    out[..., 3, 3] = 1.0
    return out
