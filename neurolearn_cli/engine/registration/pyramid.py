"""Multi-resolution pyramids that keep exact world geometry.

A level is made by box-averaging blocks of ``f`` voxels per axis (one
``avg_pool3d``: cheap, and anti-aliasing enough for registration). Block
``j`` then covers original voxels ``j f .. j f + f - 1``, so its centre sits
at index ``j f + (f - 1) / 2``; the level's affine says exactly that, and a
transform estimated on a level applies unchanged to the full-resolution image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from neurolearn_cli.engine.geometry import ints3
from neurolearn_cli.engine.morphology import dilate


def level_factors(spacing: Sequence[float], level_mm: float, shape: Sequence[int]) -> tuple[int, int, int]:
    """Integer shrink factor per axis that brings ``spacing`` closest to ``level_mm``.

    A factor never exceeds a quarter of the axis length, so a level keeps at
    least four voxels per axis.
    """
    return ints3(
        int(max(1, min(round(level_mm / s), max(n // 4, 1)))) for s, n in zip(spacing, shape, strict=True)
    )


def shrink(
    volumes: torch.Tensor, affine: torch.Tensor, factors: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-average (B, C, X, Y, Z) by ``factors`` and return it with its 4x4 affine.

    Voxels past the last whole block at the far edge of an axis are dropped.
    """
    if factors == (1, 1, 1):
        return volumes, affine
    small = F.avg_pool3d(volumes, factors, stride=factors)
    scale = torch.diag(torch.tensor([*map(float, factors), 1.0], dtype=torch.float64, device=affine.device))
    scale[:3, 3] = torch.tensor([(f - 1) / 2.0 for f in factors], dtype=torch.float64, device=affine.device)
    return small, affine @ scale


def shrink_mask(mask: torch.Tensor, factors: tuple[int, int, int]) -> torch.Tensor:
    """Shrink a (B, 1, X, Y, Z) 0/1 mask: a block is in when any of its voxels is."""
    if factors == (1, 1, 1):
        return mask
    return F.max_pool3d(mask, factors, stride=factors)


def counted_level(mask: torch.Tensor, factors: tuple[int, int, int], margin: int) -> torch.Tensor:
    """The (1, 1, ...) 0/1 level of a counted-region ``mask`` (nonzero = counted) shrunk by ``factors``.

    A block is out when any of its voxels is, and the excluded region then
    grows by ``margin`` level voxels (a local metric window's reach), so no
    counted point's window holds an excluded voxel.
    """
    excluded = shrink_mask((mask <= 0).to(torch.float32)[None, None], factors)[0, 0] > 0
    if margin > 0 and bool(excluded.any()):
        excluded = dilate(excluded, margin)
    return (~excluded).to(torch.float32)[None, None]


def schedule(
    spacing: Sequence[float], shape: Sequence[int], levels_mm: Sequence[float], iterations: Sequence[int]
) -> list[tuple[float, tuple[int, int, int], int]]:
    """(level mm, shrink factors, iterations) per level, dropping levels no finer than the one before.

    On an image coarser than the finest level (e.g. 4 mm data with a 2 mm
    level) the extra levels would repeat the full resolution, so they go.
    """
    if len(levels_mm) != len(iterations) or not levels_mm:
        raise ValueError("need one iteration count per pyramid level, and at least one level")
    out: list[tuple[float, tuple[int, int, int], int]] = []
    for level_mm, n_iter in zip(levels_mm, iterations, strict=True):
        factors = level_factors(spacing, level_mm, shape)
        if not out or factors != out[-1][1]:
            out.append((level_mm, factors, n_iter))
    return out
