"""Sampling volumes at continuous voxel coordinates with ``grid_sample``.

Conventions shared by resampling and displacement fields: voxel ``i`` sits at
normalised coordinate ``2 i / (n - 1) - 1`` (``align_corners=True``), and
``grid_sample``'s last grid dimension is reversed (x indexes the LAST tensor
axis). As in ITK, a point is inside when its continuous index lies within
``[-0.5, n - 0.5]`` on every axis: inside points within half a voxel of the
edge take the edge value, outside points take ``fill``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F


def spatial_shape(volumes: torch.Tensor) -> tuple[int, int, int]:
    """The sizes of the last three axes of ``volumes`` (X, Y, Z)."""
    return int(volumes.shape[-3]), int(volumes.shape[-2]), int(volumes.shape[-1])


def inside_mask(voxel: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """True where continuous voxel coordinates ``(..., 3)`` fall inside ``shape`` (ITK rule)."""
    upper = torch.tensor(shape, dtype=voxel.dtype, device=voxel.device) - 0.5
    return ((voxel >= -0.5) & (voxel <= upper)).all(dim=-1)


def _normalise(voxel: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    scale = 2.0 / torch.tensor(shape[::-1], dtype=voxel.dtype, device=voxel.device).sub(1).clamp(
        min=1
    )
    return voxel.flip(-1).mul_(scale).sub_(1.0)  # flip copies, so in-place is safe


def grid_sample_threaded(
    volume: torch.Tensor, grid: torch.Tensor, *, padding_mode: str = "zeros"
) -> torch.Tensor:
    """Trilinear ``grid_sample`` of one (1, C, X, Y, Z) volume at (1, X', Y', Z', 3) points, on every CPU thread.

    PyTorch's 3D CPU kernel runs its batch items in parallel but each one on
    a single thread, so the points are dealt out as one batch item per
    thread (the volume is expanded, not copied). Same values as a plain call.
    """
    parts = torch.get_num_threads() if volume.device.type == "cpu" else 1
    points = grid[0].reshape(-1, 3)
    if parts < 2 or volume.shape[0] != 1 or points.shape[0] < 1024:
        return F.grid_sample(volume, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)
    per_part = -(-points.shape[0] // parts)
    padded = F.pad(points, (0, 0, 0, per_part * parts - points.shape[0]))
    out = F.grid_sample(volume.expand(parts, -1, -1, -1, -1), padded.view(parts, per_part, 1, 1, 3),
                        mode="bilinear", padding_mode=padding_mode, align_corners=True)
    flat = out.permute(1, 0, 2, 3, 4).reshape(volume.shape[1], -1)[:, : points.shape[0]]
    return flat.reshape(1, volume.shape[1], *grid.shape[1:4])


def sample(
    volumes: torch.Tensor,
    voxel: torch.Tensor,
    *,
    mode: Literal["linear", "nearest"] = "linear",
    fill: float = 0.0,
) -> torch.Tensor:
    """Sample ``volumes`` (N, C, X, Y, Z) at voxel coordinates ``voxel`` (N, X', Y', Z', 3).

    Returns (N, C, X', Y', Z'); ``voxel`` is cast to the volumes' dtype.
    """
    shape = spatial_shape(volumes)
    voxel = voxel.to(volumes.dtype)
    out = F.grid_sample(
        volumes,
        _normalise(voxel, shape),
        mode="bilinear" if mode == "linear" else "nearest",
        padding_mode="border",
        align_corners=True,
    )
    outside = ~inside_mask(voxel, shape)
    return out.masked_fill(outside.unsqueeze(1), fill)
