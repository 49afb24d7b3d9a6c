"""Voxel geometry in one place: voxel sizes, index grids, centres of mass and Euler rotations.

Euler convention
----------------
``R = Rx(a) @ Ry(b) @ Rz(c)`` for angles ``(a, b, c)`` in radians about the
world (RAS) x, y and z axes: intrinsic rotations about x, then the new y,
then the new z (``scipy.spatial.transform.Rotation.from_euler("XYZ", ...)``).
These are the angles written as fMRIPrep's ``rot_x, rot_y, rot_z`` motion
confounds (:meth:`~neurolearn_cli.engine.transforms.AffineTransform.rigid`);
the rigid registrations optimise the same three angles. Transform files hold
matrices, never angles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import SupportsFloat, SupportsIndex

import numpy as np
import torch


def ints3(sizes: Iterable[SupportsIndex]) -> tuple[int, int, int]:
    """Three Python ints from a 3D shape (``torch.Size``, numpy shape or sequence).

    Raises ``ValueError`` unless there are exactly three sizes; use it where a
    shape or a per-axis count is built, so the result is a checked 3-tuple.
    """
    values = tuple(int(n) for n in sizes)
    if len(values) != 3:
        raise ValueError(f"expected three sizes (X, Y, Z), got {values}")
    return values[0], values[1], values[2]


def floats3(values: Iterable[SupportsFloat]) -> tuple[float, float, float]:
    """Three Python floats (a spacing, per-axis mm): ``ValueError`` unless exactly three."""
    floats = tuple(float(v) for v in values)
    if len(floats) != 3:
        raise ValueError(f"expected three values (X, Y, Z), got {floats}")
    return floats[0], floats[1], floats[2]


def voxel_spacing(affine: torch.Tensor | np.ndarray) -> tuple[float, float, float]:
    """Voxel sizes in mm of a 4x4 voxel-to-world affine: the norms of its first three columns.

    Computed in float64 on the host, so a tensor on any device gives the same
    numbers (as ``nibabel.affines.voxel_sizes``).
    """
    matrix = torch.as_tensor(affine).detach().to("cpu", torch.float64)
    return floats3(torch.linalg.norm(matrix[:3, :3], dim=0))


def anisotropic(voxel_mm: Sequence[float]) -> bool:
    """Whether the coarsest voxel side is more than 1.5 times the finest (thick slices)."""
    return max(voxel_mm) > 1.5 * min(voxel_mm)


def index_grid(
    shape: Sequence[int], device: torch.device | str, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Voxel indices (X, Y, Z, 3) of a grid: ``grid[i, j, k] == (i, j, k)``."""
    axes = [torch.arange(int(n), dtype=dtype, device=device) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def center_of_mass(data: torch.Tensor, affine: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Intensity-weighted centre (3,) float64 in world mm of a 3D volume (negatives count as zero).

    Computed from the three marginal profiles (sums over the other two axes,
    accumulated in float64), so no (X, Y, Z, 3) coordinate array is built.
    The total weight is a profile's sum: torch splits a sum of the whole
    volume to one value over threads (so its last bits, and the registrations
    this centre starts, depended on the thread count), while a sum to one
    value per slice is split over the slices and each is summed whole.
    ``mask`` restricts the weights to its nonzero voxels.
    """
    weights = data.detach().clamp(min=0.0)
    if mask is not None:
        weights = weights * (mask > 0)
    profiles = [weights.sum(dim=tuple(a for a in range(3) if a != axis), dtype=torch.float64) for axis in range(3)]
    total = profiles[0].sum()  # a few hundred values: fewer than torch's parallel grain, summed on one thread
    if not bool(total > 0):
        raise ValueError("centre of mass of an empty (all-zero) volume")
    centre = torch.stack([
        (profile * torch.arange(profile.numel(), dtype=torch.float64, device=data.device)).sum() for profile in profiles
    ]) / total
    return centre @ affine[:3, :3].T.to(torch.float64) + affine[:3, 3].to(torch.float64)


def euler_matrix(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) ``Rx(a) @ Ry(b) @ Rz(c)`` from angles (..., 3) = (a, b, c) radians.

    Differentiable, so optimizers can work on the angles.
    """
    a, b, c = angles.unbind(-1)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    rx = torch.stack([one, zero, zero, zero, a.cos(), -a.sin(), zero, a.sin(), a.cos()], -1)
    ry = torch.stack([b.cos(), zero, b.sin(), zero, one, zero, -b.sin(), zero, b.cos()], -1)
    rz = torch.stack([c.cos(), -c.sin(), zero, c.sin(), c.cos(), zero, zero, zero, one], -1)
    shape = angles.shape[:-1] + (3, 3)
    return rx.reshape(shape) @ ry.reshape(shape) @ rz.reshape(shape)


def euler_angles(rotation: torch.Tensor) -> torch.Tensor:
    """Angles (..., 3) of :func:`euler_matrix` for rotation matrices (..., 3, 3); ``b`` in [-pi/2, pi/2]."""
    r = rotation
    return torch.stack(
        [
            torch.atan2(-r[..., 1, 2], r[..., 2, 2]),
            torch.asin(r[..., 0, 2].clamp(-1.0, 1.0)),
            torch.atan2(-r[..., 0, 1], r[..., 0, 0]),
        ],
        dim=-1,
    )
