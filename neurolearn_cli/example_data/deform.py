"""Random smooth fields and poses: nonlinear warps, head placement, bias fields.

A field is a sum of Gaussian bumps on a coarse lattice with random weights,
evaluated separably (one small matrix per axis), so it is smooth everywhere and
cheap to compute on a full grid.
"""

from __future__ import annotations

import numpy as np
from nibabel.affines import from_matvec

from neurolearn_cli.example_data.geometry import grid_points, rigid_matrix, voxel_map


def _axis_basis(size: int, spacing: float) -> np.ndarray:
    """Gaussian bumps every ``spacing`` voxels (one margin node each side), sampled at ``size`` voxels."""
    nodes = np.arange(-spacing, size + spacing, spacing)
    distance = (np.arange(size)[:, None] - nodes[None, :]) / spacing
    return np.exp(-0.5 * distance**2).astype(np.float32)


def smooth_random_field(
    rng: np.random.Generator, shape: tuple[int, int, int], spacing: float, count: int = 1
) -> np.ndarray:
    """``count`` independent smooth random fields on ``shape``, each with zero mean and unit RMS.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the random lattice weights.
    shape : tuple of int
        Grid shape.
    spacing : float
        Lattice spacing in voxels; features are about this size.
    count : int
        Number of fields returned (stacked on the first axis).
    """
    bases = [_axis_basis(size, spacing) for size in shape]
    weights = rng.standard_normal((count, *(basis.shape[1] for basis in bases))).astype(np.float32)
    field = np.einsum("fabc,ia,jb,kc->fijk", weights, *bases, optimize=True)
    field -= field.mean(axis=(1, 2, 3), keepdims=True)
    field /= np.sqrt((field**2).mean(axis=(1, 2, 3), keepdims=True))
    return field


def bias_field(rng: np.random.Generator, shape: tuple[int, int, int], spacing: float, spread: float) -> np.ndarray:
    """Multiplicative field ``exp(spread * f)`` with ``f`` smooth and unit-RMS (about 1 +- 2*spread at the extremes)."""
    return np.exp(spread * smooth_random_field(rng, shape, spacing)[0])


def random_pose(
    rng: np.random.Generator, shift_mm: float, tilt_deg: float, size_sd: float, size_mean: float = 1.0
) -> np.ndarray:
    """Random similarity transform (4x4, world mm): isotropic size change, rotation, then shift.

    The size factor scales the head (above 1: larger); it is drawn within
    2 SD of ``size_mean`` so no participant gets an implausible head (an
    unbounded draw once gave a 2.7 L brain).
    """
    rotation = rigid_matrix(np.concatenate([np.zeros(3), np.radians(rng.normal(0.0, tilt_deg, 3))]))[:3, :3]
    size = size_mean + float(np.clip(rng.normal(0.0, size_sd), -2.0 * size_sd, 2.0 * size_sd))
    return from_matvec(size * rotation, rng.normal(0.0, shift_mm, 3))


def warp_points(pose: np.ndarray, displacement_mm: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Template voxel sampled by each voxel of a subject image on the template's own grid.

    A subject voxel at world ``x`` shows template point ``pose^-1 x + u(x)``,
    with ``u`` the displacement (``(3, *shape)``, mm) on the subject grid.
    Returns ``(3, n)`` float32 voxel coordinates in the template grid.
    """
    shape = displacement_mm.shape[1:]
    points = grid_points(shape, voxel_map(affine, pose, affine))
    inverse_linear = np.linalg.inv(affine[:3, :3]).astype(np.float32)
    return points + inverse_linear @ displacement_mm.reshape(3, -1)
