"""Fixed-image samples and the pull-back of a moving image onto them.

Global metrics (mse, ncc, nmi) only need the fixed samples inside the mask, so
with a mask the fixed image becomes a list of points and each evaluation
samples the moving image there alone (4-5x fewer samples for a brain in its
field of view). Local correlation needs neighbourhoods, so it keeps the full
grid and uses the mask as weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neurolearn_cli.engine._sampling import spatial_shape
from neurolearn_cli.engine.geometry import index_grid
from neurolearn_cli.engine.registration.space import normalized_from_index


@dataclass(frozen=True)
class FixedSamples:
    """Fixed values with their normalized coordinates, in point or grid layout.

    ``values`` is (1, N) for points or (1, X, Y, Z) for the grid; ``points``
    (N, 3) float32 reversed normalized coordinates, or None for the grid;
    ``weights`` the mask in the layout of ``values``, or None.
    """

    values: torch.Tensor
    points: torch.Tensor | None
    weights: torch.Tensor | None
    shape: tuple[int, int, int]

    @classmethod
    def build(cls, fixed: torch.Tensor, mask: torch.Tensor | None, as_grid: bool) -> FixedSamples:
        """Samples of a (X, Y, Z) fixed level and optional 0/1 mask of the same shape."""
        shape = spatial_shape(fixed)
        if as_grid or mask is None:
            weights = None if mask is None else mask.unsqueeze(0)
            return cls(fixed.unsqueeze(0), None, weights, shape)
        inside = mask > 0
        idx = index_grid(shape, fixed.device)[inside]
        norm = idx @ normalized_from_index(shape, fixed.device)[:3, :3].T
        norm = norm + normalized_from_index(shape, fixed.device)[:3, 3]
        return cls(fixed[inside].unsqueeze(0), norm.to(torch.float32), None, shape)

    def thinned(self, max_points: int | None) -> FixedSamples:
        """Every k-th point in raster order, k chosen so at most ``max_points`` remain.

        ANTs-style regular sampling: the cost of an evaluation stops growing
        with the resolution. Grid layouts (local metrics) are returned whole.
        """
        if self.points is None or max_points is None or self.values.shape[1] <= max_points:
            return self
        stride = -(-self.values.shape[1] // max_points)
        return FixedSamples(
            self.values[:, ::stride].contiguous(), self.points[::stride].contiguous(), None, self.shape
        )

    def pull(self, moving: torch.Tensor, theta: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
        """Sample ``moving`` (B, 1, X', Y', Z') through ``theta`` (B, 3, 4) in the layout of ``values``.

        Returns (B, N) for points or (B, X, Y, Z) for the grid.
        """
        batch = theta.shape[0]
        if self.points is None:
            grid = F.affine_grid(theta, [batch, 1, *self.shape], align_corners=True)
        else:
            grid = (self.points @ theta[:, :, :3].transpose(1, 2) + theta[:, None, :, 3]).view(
                batch, 1, 1, -1, 3
            )
        if moving.shape[0] != batch:
            moving = moving.expand(batch, *moving.shape[1:])
        out = F.grid_sample(moving, grid, mode="bilinear", padding_mode=padding, align_corners=True)
        return out[:, 0, 0, 0] if self.points is not None else out[:, 0]
