"""Symmetric diffeomorphic registration with a stationary velocity field (SyN-like).

The deformation on the fixed side is ``phi = exp(v)``, computed by scaling and
squaring, and the full fixed -> moving map is ``A(phi(x))`` after an affine
``A`` (ANTs' ``-t Warp -t Affine``). As in SyN, both images move half-way and
meet in the middle: the loss compares ``F(exp(-v/2)(y))`` with
``M(A(exp(v/2)(y)))`` by local correlation, so neither image is privileged,
and the inverse ``exp(-v)`` comes for free and is exactly consistent.

Speed on CPU comes from (1) a velocity grid coarser than the images (the
field is smooth anyway, at least ``velocity_mm`` apart), (2) a pyramid with
most iterations on coarse levels, and (3) evaluating the metric only in the
bounding box of the fixed mask. The optimizer is SyN's: the metric's
gradient with respect to the velocity is Gaussian-smoothed (the update-field
regularization, ``smooth_mm``) and scaled so its largest vector is ``step``
level voxels, then subtracted; smoothing stays outside the autograd graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neurolearn_cli.engine.metrics import lncc
from neurolearn_cli.engine.registration.pyramid import (
    dilate,
    level_factors,
    schedule,
    shrink,
    shrink_mask,
)
from neurolearn_cli.engine.registration.space import (
    normalized_from_index,
    normalized_from_world,
    world_from_normalized,
)


@dataclass(frozen=True)
class SynSettings:
    """Schedule and regularization of the symmetric diffeomorphic stage.

    ``levels_mm``/``iterations``: image pyramid (coarse to fine) and gradient
    steps per level; ``velocity_mm``: finest velocity-grid spacing;
    ``smooth_mm``: Gaussian sigma of the update field; ``step``: largest
    update per iteration, in level voxels; ``radius``: local-correlation
    window half-width in level voxels; ``squarings``: scaling-and-squaring steps.
    """

    levels_mm: Sequence[float] = (8.0, 4.0, 2.0)
    iterations: Sequence[int] = (40, 30, 10)
    velocity_mm: float = 4.0
    smooth_mm: float = 6.0
    step: float = 0.25
    radius: int = 2
    squarings: int = 5


@dataclass(frozen=True)
class SynResult:
    """Forward and inverse displacement fields (X, Y, Z, 3) in world mm on the fixed grid.

    ``forward(x) = x + u(x)`` maps fixed points into the fixed space before
    the affine; ``inverse`` undoes it. ``metric`` is the final local
    correlation (mean squared local r, higher is better) on the finest level.
    """

    forward: torch.Tensor
    inverse: torch.Tensor
    metric: float


def _gaussian_smooth(field: torch.Tensor, sigma_vox: Sequence[float]) -> torch.Tensor:
    """Separable Gaussian smoothing of (1, C, X, Y, Z) with zero padding (the field vanishes outside)."""
    for axis, sigma in enumerate(sigma_vox):
        if sigma <= 0:
            continue
        radius = max(1, int(math.ceil(2.5 * sigma)))
        offsets = torch.arange(-radius, radius + 1, dtype=field.dtype, device=field.device)
        kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
        kernel = kernel / kernel.sum()
        dim = 2 + axis
        n = field.shape[dim]
        pad = [0] * 6
        pad[2 * (4 - dim)] = radius
        pad[2 * (4 - dim) + 1] = radius
        padded = F.pad(field, pad)
        field = sum(kernel[j] * padded.narrow(dim, j, n) for j in range(kernel.numel()))
    return field


def _identity_grid(shape: Sequence[int], device: torch.device) -> torch.Tensor:
    """Normalized (reversed) coordinates (1, X, Y, Z, 3) of a grid's own voxels."""
    eye = torch.eye(3, 4, device=device).unsqueeze(0)
    return F.affine_grid(eye, [1, 1, *shape], align_corners=True)


def _exp(velocity: torch.Tensor, squarings: int) -> torch.Tensor:
    """Displacement (1, 3, X, Y, Z), normalized reversed units, of the flow of a velocity field."""
    identity = _identity_grid(velocity.shape[2:], velocity.device)
    disp = velocity / (2**squarings)
    for _ in range(squarings):
        moved = identity + disp.permute(0, 2, 3, 4, 1)
        disp = disp + F.grid_sample(disp, moved, mode="bilinear", padding_mode="border", align_corners=True)
    return disp


def _to_normalized(velocity_idx: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Convert (1, 3, ...) fields from fixed-voxel index units (i, j, k) to reversed normalized units."""
    scale = torch.tensor([2.0 / max(n - 1, 1) for n in shape], dtype=velocity_idx.dtype, device=velocity_idx.device)
    return (velocity_idx * scale.view(1, 3, 1, 1, 1)).flip(1)


def _at(field: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Sample a (1, 3, ...) field at normalized points (1, X, Y, Z, 3); returns (1, X, Y, Z, 3)."""
    out = F.grid_sample(field, points, mode="bilinear", padding_mode="border", align_corners=True)
    return out.permute(0, 2, 3, 4, 1)


def _map(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply a 4x4 float64 map to float32 points (..., 3)."""
    m = matrix.to(points.dtype)
    return points @ m[:3, :3].T + m[:3, 3]


def _bbox(mask: torch.Tensor, margin: int) -> tuple[slice, slice, slice]:
    """Bounding box of a 3D 0/1 mask, grown by ``margin`` voxels."""
    boxes = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = torch.nonzero(mask.amax(dim=other) > 0).flatten()
        lo = max(int(hits[0]) - margin, 0)
        hi = min(int(hits[-1]) + margin + 1, mask.shape[axis])
        boxes.append(slice(lo, hi))
    return tuple(boxes)


@dataclass(frozen=True)
class _Level:
    """One pyramid level: fixed/moving volumes (1, 1, ...), the sampled region's normalized
    full-frame coordinates (1, X, Y, Z, 3), its mask weights, the maps from full-frame
    normalized coordinates to each volume's, and the full fixed shape."""

    fixed: torch.Tensor
    moving: torch.Tensor
    ident: torch.Tensor
    weights: torch.Tensor | None
    to_fixed: torch.Tensor
    to_moving: torch.Tensor
    shape: tuple[int, int, int]


def _similarity(velocity: torch.Tensor, level: _Level, settings: SynSettings) -> torch.Tensor:
    """Local correlation in the middle space: F(exp(-v/2)(y)) against M(A(exp(v/2)(y)))."""
    v_norm = _to_normalized(velocity, level.shape)
    half_fwd = _at(_exp(0.5 * v_norm, settings.squarings), level.ident)
    half_bwd = _at(_exp(-0.5 * v_norm, settings.squarings), level.ident)
    f_warp = F.grid_sample(level.fixed, _map(level.to_fixed, level.ident + half_bwd), align_corners=True)[:, 0]
    m_warp = F.grid_sample(level.moving, _map(level.to_moving, level.ident + half_fwd), align_corners=True)[:, 0]
    return lncc(f_warp, m_warp, level.weights, settings.radius)[0]


def register_syn(
    fixed: torch.Tensor,
    fixed_affine: torch.Tensor,
    moving: torch.Tensor,
    moving_affine: torch.Tensor,
    affine_map: torch.Tensor,
    *,
    fixed_mask: torch.Tensor | None = None,
    settings: SynSettings | None = None,
) -> SynResult:
    """Estimate the symmetric diffeomorphic part after the affine fixed -> moving world map ``affine_map``.

    ``fixed``/``moving`` are (X, Y, Z) float32 volumes with 4x4 float64 affines.
    """
    settings = settings or SynSettings()
    device = fixed.device
    shape = tuple(int(n) for n in fixed.shape)
    spacing = [float(v) for v in torch.linalg.norm(fixed_affine[:3, :3], dim=0)]
    fixed_b = (fixed / fixed.abs().mean().clamp(min=1e-6))[None, None]
    moving_b = (moving / moving.abs().mean().clamp(min=1e-6))[None, None]
    mask_b = None if fixed_mask is None else (fixed_mask > 0).to(torch.float32)[None, None]
    full_from_norm = world_from_normalized(fixed_affine, shape)
    velocity = torch.zeros(0)
    metric_value = float("nan")
    for level_mm, f_fac, n_iter in schedule(spacing, shape, settings.levels_mm, settings.iterations):
        f_lvl, f_aff = shrink(fixed_b, fixed_affine, f_fac)
        m_lvl, m_aff = shrink(moving_b, moving_affine, level_factors(
            [float(v) for v in torch.linalg.norm(moving_affine[:3, :3], dim=0)], level_mm, moving.shape))
        lvl_shape = tuple(f_lvl.shape[2:])
        # normalized full-frame coordinates of the level's voxels, cropped to the mask's box
        lvl_to_full = normalized_from_index(shape, device) @ torch.linalg.inv(fixed_affine) @ f_aff
        lvl_to_full = lvl_to_full @ torch.linalg.inv(normalized_from_index(lvl_shape, device))
        ident = F.affine_grid(lvl_to_full[:3].to(torch.float32)[None], [1, 1, *lvl_shape], align_corners=True)
        weights = None
        if mask_b is not None:
            m_small = dilate(shrink_mask(mask_b, f_fac), settings.radius + 1)[0, 0]
            box = _bbox(m_small, 0)
            ident = ident[:, box[0], box[1], box[2]]
            weights = m_small[box].unsqueeze(0)
        to_fixed = normalized_from_world(f_aff, lvl_shape) @ full_from_norm
        to_moving = normalized_from_world(m_aff, tuple(m_lvl.shape[2:])) @ affine_map @ full_from_norm
        vel_shape = [max(2, int(math.ceil((n - 1) * s / max(settings.velocity_mm, level_mm))) + 1)
                     for n, s in zip(shape, spacing, strict=True)]
        if velocity.numel() == 0:
            velocity = torch.zeros(1, 3, *vel_shape, dtype=torch.float32, device=device)
        else:
            velocity = F.interpolate(velocity.detach(), size=vel_shape, mode="trilinear", align_corners=True)
        velocity.requires_grad_(True)
        level_spacing = [(n - 1) * s / (v - 1) for n, s, v in zip(shape, spacing, vel_shape, strict=True)]
        sigma = [settings.smooth_mm / h for h in level_spacing]
        step = settings.step * level_mm / min(spacing)

        level = _Level(f_lvl, m_lvl, ident, weights, to_fixed, to_moving, shape)
        for _ in range(n_iter):
            (grad,) = torch.autograd.grad(-_similarity(velocity, level, settings), velocity)
            with torch.no_grad():
                update = _gaussian_smooth(grad, sigma)
                velocity -= update * (step / update.norm(dim=1).amax().clamp(min=1e-12))
        with torch.no_grad():
            metric_value = float(_similarity(velocity, level, settings))
    with torch.no_grad():
        v_norm = _to_normalized(velocity, shape)
        full_ident = _identity_grid(shape, device)
        fields = []
        for sign in (1.0, -1.0):
            disp_norm = _at(_exp(sign * v_norm, settings.squarings), full_ident)
            disp_world = disp_norm.to(torch.float64)[0] @ full_from_norm[:3, :3].T
            fields.append(disp_world.to(torch.float32))
    return SynResult(forward=fields[0], inverse=fields[1], metric=metric_value)
