"""Initial alignment from image moments (ANTs' ``[fixed,moving,1]`` centre-of-mass start).

Matching intensity centres of mass removes the large translations that would
otherwise trap a local optimizer; rotations and scales are left to the
optimizer, which handles the <= 20 degree range of head scans reliably.
"""

from __future__ import annotations

import torch

from neurolearn_cli.engine.geometry import center_of_mass


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
