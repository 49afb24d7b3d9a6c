"""Initial alignment from image moments (ANTs' ``[fixed,moving,1]`` centre-of-mass start).

Matching intensity centres of mass removes the large translations that would
otherwise trap a local optimizer; rotations and scales are left to the
optimizer, which handles the <= 20 degree range of head scans reliably.
"""

from __future__ import annotations

import torch

from neurolearn_cli.engine.registration.space import apply_matrix


def center_of_mass(data: torch.Tensor, affine: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Intensity-weighted centre (3,) float64 in world mm of a 3D volume (negatives count as zero).

    Computed from the three marginal profiles (sums over the other two axes,
    accumulated in float64), so no (X, Y, Z, 3) coordinate array is built.
    """
    weights = data.detach().clamp(min=0.0)
    if mask is not None:
        weights = weights * (mask > 0)
    total = weights.sum(dtype=torch.float64)
    if not bool(total > 0):
        raise ValueError("centre of mass of an empty (all-zero) volume")
    centre = torch.stack([
        (weights.sum(dim=tuple(a for a in range(3) if a != axis), dtype=torch.float64)
         * torch.arange(n, dtype=torch.float64, device=data.device)).sum()
        for axis, n in enumerate(data.shape)
    ]) / total
    return apply_matrix(affine, centre)


def moments_init(
    fixed: torch.Tensor,
    fixed_affine: torch.Tensor,
    moving: torch.Tensor,
    moving_affine: torch.Tensor,
    fixed_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Translation (4x4 float64, fixed -> moving world map) aligning centres of mass, and the fixed centre.

    The fixed centre is the natural centre of rotation for the optimizer that follows.
    """
    c_fixed = center_of_mass(fixed, fixed_affine, fixed_mask)
    c_moving = center_of_mass(moving, moving_affine)
    matrix = torch.eye(4, dtype=torch.float64, device=fixed.device)
    matrix[:3, 3] = c_moving - c_fixed
    return matrix, c_fixed
