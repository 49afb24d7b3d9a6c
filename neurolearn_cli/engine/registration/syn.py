"""Symmetric diffeomorphic registration with a stationary velocity field (SyN-like).

The deformation on the fixed side is ``phi = exp(v)``, computed by scaling and
squaring, and the full fixed -> moving map is ``A(phi(x))`` after an affine
``A`` (ANTs' ``-t Warp -t Affine``). As in SyN, both images move half-way and
meet in the middle: the metric compares ``F(exp(-v/2)(y))`` with
``M(A(exp(v/2)(y)))`` by local correlation, so neither image is privileged,
and the inverse ``exp(-v)`` comes for free and is exactly consistent.

The optimizer is SyN's greedy one. Each iteration warps both images and
their spatial gradients to the middle space once (one ``grid_sample`` per
side), takes the gradient of the local correlation with respect to a small
displacement ``d`` of the middle-space points (``+d/2`` on the moving side,
``-d/2`` on the fixed side) in closed form, never through scaling and
squaring, Gaussian-smooths it (the update-field regularization, wider on
coarse levels), scales it so its largest vector is ``step`` level voxels and
adds it to ``v`` (first-order log-domain update). No autograd is involved.

Speed on CPU comes from (1) a velocity grid coarser than the images (the
field is smooth anyway, at least ``velocity_mm`` apart), so scaling and
squaring is cheap, with only as many squarings as the field's size needs;
(2) moving fields between that grid and a level's voxels by three 1D
interpolation matrices (the level's voxels form a regular grid), forward
and adjoint; (3) image sampling spread over every CPU thread; (4) evaluating
the metric only in the bounding box of the fixed mask, sampling the images
only within a window of its voxels; and (5) carrying the maps' linear parts
into the gradient images and onto the velocity grid once per level, not
through every point at every iteration.

A moving mask (ANTs' second ``-x`` mask, e.g. the complement of a lesion)
travels as a fifth channel of the moving level, so it is warped to the middle
space by the same sampling as the image: the metric then counts only the
middle-space points whose window lies wholly inside it (the excluded region
is grown by the window's radius on each level), and the excluded tissue
neither scores nor pulls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neurolearn_cli.engine._sampling import grid_sample_threaded
from neurolearn_cli.engine.geometry import floats3, ints3, voxel_spacing
from neurolearn_cli.engine.image import bounding_box
from neurolearn_cli.engine.metrics import lncc_with_gradient
from neurolearn_cli.engine.morphology import dilate
from neurolearn_cli.engine.reduce import fixed_mean
from neurolearn_cli.engine.registration.pyramid import (
    counted_level,
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

    ``levels_mm``/``iterations``: image pyramid (coarse to fine) and greedy
    steps per level (most on the finest, where the template benchmark's
    error keeps falling); ``velocity_mm``: finest velocity-grid spacing;
    ``smooth_mm``/``smooth_level_vox``: Gaussian sigma of the update field, the larger of ``smooth_mm`` and
    ``smooth_level_vox`` level voxels (as ANTs counts its update-field variance in level voxels: a coarse level
    only makes coarse corrections; with a fixed 6 mm the 8 mm level bent the map away from the truth and the
    finer levels spent their iterations undoing it); ``step``: largest
    update per iteration, in level voxels; ``radius``: local-correlation
    window half-width in level voxels; ``squarings``: scaling-and-squaring
    steps of the final fields (iterations use as few as the field needs);
    ``mask_rim``: level voxels beyond the fixed mask that the metric also
    counts (a brain mask's rim holds the brain's edge against the CSF, the
    contrast that places the brain's outline).
    """

    levels_mm: Sequence[float] = (8.0, 4.0, 2.0)
    iterations: Sequence[int] = (5, 5, 25)
    velocity_mm: float = 4.0
    smooth_mm: float = 6.0
    smooth_level_vox: float = 3.5
    step: float = 0.25
    radius: int = 2
    squarings: int = 6
    mask_rim: int = 0


@dataclass(frozen=True)
class SynResult:
    """Forward and inverse displacement fields (X, Y, Z, 3) in world mm on the fixed grid.

    ``forward(x) = x + u(x)`` maps fixed points into the fixed space before
    the affine; ``inverse`` undoes it. ``metric`` is the local correlation
    (mean squared local r, higher is better) at the last iteration of the
    finest level (NaN when no level iterates).
    """

    forward: torch.Tensor
    inverse: torch.Tensor
    metric: float


def _gaussian_smooth(field: torch.Tensor, sigma_vox: Sequence[float]) -> torch.Tensor:
    """Separable Gaussian smoothing of (1, C, X, Y, Z) with zero padding (the field vanishes outside).

    Per axis, the taps (truncated at 2.5 sigma) weight shifted slices of the
    padded field, added in a fixed order: the result does not depend on the
    thread count, as a CPU ``conv3d``'s does, and it runs faster.
    """
    for axis, sigma in enumerate(sigma_vox):
        if sigma <= 0:
            continue
        radius = max(1, int(math.ceil(2.5 * sigma)))
        offsets = torch.arange(-radius, radius + 1, dtype=field.dtype, device=field.device)
        taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
        weights = (taps / taps.sum()).tolist()
        dim, n = axis + 2, field.shape[axis + 2]
        padding = [0] * 6
        padding[2 * (2 - axis)] = padding[2 * (2 - axis) + 1] = radius
        padded = F.pad(field, padding)
        total = padded.narrow(dim, 0, n) * weights[0]
        for shift in range(1, 2 * radius + 1):
            total.add_(padded.narrow(dim, shift, n), alpha=weights[shift])
        field = total
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


def _squarings_needed(velocity_idx: torch.Tensor, grid_step: Sequence[float], most: int) -> int:
    """Fewest squarings (at most ``most``) that bring the first step under a quarter of a velocity-grid cell."""
    step = torch.tensor(grid_step, dtype=velocity_idx.dtype, device=velocity_idx.device).view(1, 3, 1, 1, 1)
    largest = float((velocity_idx / step).square().sum(dim=1).amax().sqrt())
    if largest <= 0.25:
        return 1
    return int(min(most, max(1, math.ceil(math.log2(largest / 0.25)))))


def _to_normalized(velocity_idx: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Convert (1, 3, ...) fields from fixed-voxel index units (i, j, k) to reversed normalized units."""
    scale = torch.tensor([2.0 / max(n - 1, 1) for n in shape], dtype=velocity_idx.dtype, device=velocity_idx.device)
    return (velocity_idx * scale.view(1, 3, 1, 1, 1)).flip(1)


def _axis_weights(coords: torch.Tensor, n: int) -> torch.Tensor:
    """(len(coords), n) linear-interpolation weights at normalized coordinates of an ``n``-point axis (border)."""
    index = ((coords.to(torch.float64) + 1.0) * 0.5 * (n - 1)).clamp(0, n - 1)
    low = index.floor().clamp(max=max(n - 2, 0))
    frac = (index - low).to(torch.float32)
    rows = torch.arange(coords.numel(), device=coords.device)
    weights = torch.zeros(coords.numel(), n, dtype=torch.float32, device=coords.device)
    weights[rows, low.long()] = 1.0 - frac
    weights[rows, (low.long() + 1).clamp(max=n - 1)] += frac
    return weights


@dataclass(frozen=True)
class _AxisGrid:
    """Trilinear interpolation from the velocity grid onto an axis-aligned point grid, as three 1D matrices.

    The level's voxels form a regular grid in the velocity grid's frame, so
    trilinear interpolation factors into one small matrix per axis: moving
    the field to the points (and its adjoint, splatting forces back onto
    the velocity grid) is three multithreaded matrix products instead of
    ``grid_sample`` and its single-threaded backward pass.
    """

    x: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor

    @classmethod
    def at(cls, coords: Sequence[torch.Tensor], grid_shape: Sequence[int]) -> _AxisGrid:
        """Weights for normalized coordinates ``coords`` (one 1D tensor per tensor axis) on ``grid_shape``."""
        return cls(*(_axis_weights(c, n) for c, n in zip(coords, grid_shape, strict=True)))

    def interpolate(self, field: torch.Tensor) -> torch.Tensor:
        """(C, p, q, r) on the velocity grid -> (C, X, Y, Z) at the points."""
        out = field @ self.z.T
        out = self.y @ out
        channels, p, ny, nz = out.shape
        return (self.x @ out.reshape(channels, p, ny * nz)).reshape(channels, -1, ny, nz)

    def splat(self, values: torch.Tensor) -> torch.Tensor:
        """Adjoint of :meth:`interpolate`: (C, X, Y, Z) at the points -> (C, p, q, r)."""
        channels, nx, ny, nz = values.shape
        out = (self.x.T @ values.reshape(channels, nx, ny * nz)).reshape(channels, -1, ny, nz)
        out = self.y.T @ out
        return out @ self.z


def _axis_coords(points: torch.Tensor) -> list[torch.Tensor]:
    """Per tensor axis, the normalized coordinates of an axis-aligned grid of points (1, X, Y, Z, 3)."""
    return [points[0, :, 0, 0, 2], points[0, 0, :, 0, 1], points[0, 0, 0, :, 0]]


def _map(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply a 4x4 float64 map to float32 points (..., 3)."""
    m = matrix.to(points.dtype)
    return points @ m[:3, :3].T + m[:3, 3]


def _linear(matrix: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Apply the linear part of a 4x4 map to a (3, ...) field of vectors (channels in reversed normalized order)."""
    m = matrix[:3, :3].to(vectors.dtype)
    return (m @ vectors.reshape(3, -1)).reshape(vectors.shape)


def _with_gradient(volume: torch.Tensor, to_volume: torch.Tensor) -> torch.Tensor:
    """(1, 4, X, Y, Z): a (1, 1, X, Y, Z) volume and its derivatives along the reversed normalized full-frame axes.

    ``to_volume`` maps full-frame normalized coordinates to the volume's; its
    linear part carries the gradient to the full frame here, once per level
    (sampling is linear, so sampling this equals transforming each sampled gradient).
    """
    shape = volume.shape[2:]
    grads = torch.gradient(volume[0, 0])
    normalized = torch.stack([grads[axis] * (max(shape[axis] - 1, 1) / 2.0) for axis in (2, 1, 0)])
    return torch.cat([volume[0], _linear(to_volume.T, normalized)])[None]


@dataclass(frozen=True)
class _Level:
    """One pyramid level: fixed/moving volumes with their full-frame gradients (1, 4, ...), the region's shape,
    the flat indices of its sampled points and those points (N, 3) in each volume's normalized coordinates, its
    fixed mask weights, the maps from full-frame normalized coordinates to each volume's, the full fixed shape,
    the velocity grid's cell size in full-frame voxels and the interpolation from the velocity grid to the
    region's points."""

    fixed: torch.Tensor
    moving: torch.Tensor
    region: tuple[int, int, int]
    sampled: torch.Tensor
    fixed_points: torch.Tensor
    moving_points: torch.Tensor
    weights: torch.Tensor | None
    to_fixed: torch.Tensor
    to_moving: torch.Tensor
    shape: tuple[int, int, int]
    grid_step: tuple[float, float, float]
    axes: _AxisGrid


def _sample_region(volume: torch.Tensor, points: torch.Tensor, level: _Level) -> torch.Tensor:
    """(1, C, ...) on the level's region: ``volume`` sampled at its sampled ``points`` (N, 3), zero elsewhere."""
    values = grid_sample_threaded(volume, points.view(1, -1, 1, 1, 3)).view(volume.shape[1], -1)
    region = values.new_zeros(volume.shape[1], math.prod(level.region))
    return region.index_copy_(1, level.sampled, values).view(1, -1, *level.region)


def _greedy_step(
    velocity: torch.Tensor, level: _Level, settings: SynSettings
) -> tuple[torch.Tensor, float]:
    """Gradient of the middle-space local correlation with respect to a velocity update, and its value.

    Both images are sampled once at the current half-way maps; the gradient
    is that of a displacement ``d`` (velocity-grid layout, fixed-voxel units)
    moving the middle-space points by ``+d/2`` on the moving side and ``-d/2``
    on the fixed side, taken at ``d = 0``: the force at the points, splatted
    back onto the velocity grid by the adjoint of the interpolation. Only the
    points within a window of a counted one are sampled: the others change
    neither the value nor the gradient.
    """
    v_norm = _to_normalized(velocity, level.shape)
    k = _squarings_needed(0.5 * velocity, level.grid_step, settings.squarings)
    half_f, half_m = _exp(torch.cat([-0.5 * v_norm, 0.5 * v_norm]), k)
    # the maps' linear parts commute with the interpolation: applied on the small velocity grid
    halves = torch.cat([_linear(level.to_fixed, half_f), _linear(level.to_moving, half_m)])
    halves = level.axes.interpolate(halves).flatten(1).index_select(1, level.sampled).T
    f_warp = _sample_region(level.fixed, level.fixed_points + halves[:, :3], level)
    m_warp = _sample_region(level.moving, level.moving_points + halves[:, 3:], level)
    weights = level.weights
    if m_warp.shape[1] > 4:  # the moving mask, warped with the image
        counted = (m_warp[:, 4] > 0.999).to(m_warp.dtype)
        weights = counted if weights is None else weights * counted
    value, d_f, d_m = lncc_with_gradient(f_warp[:, 0], m_warp[:, 0], weights, settings.radius)
    force = 0.5 * (d_m * m_warp[0, 1:4] - d_f * f_warp[0, 1:])
    grad = level.axes.splat(force)
    # adjoint of _to_normalized: channels back to index order, times each axis's scale
    scale = torch.tensor([2.0 / max(n - 1, 1) for n in level.shape], dtype=grad.dtype, device=grad.device)
    return (grad.flip(0) * scale.view(3, 1, 1, 1)).unsqueeze(0), float(value[0])


def register_syn(
    fixed: torch.Tensor,
    fixed_affine: torch.Tensor,
    moving: torch.Tensor,
    moving_affine: torch.Tensor,
    affine_map: torch.Tensor,
    *,
    fixed_mask: torch.Tensor | None = None,
    moving_mask: torch.Tensor | None = None,
    settings: SynSettings | None = None,
) -> SynResult:
    """Estimate the symmetric diffeomorphic part after the affine fixed -> moving world map ``affine_map``.

    ``fixed``/``moving`` are (X, Y, Z) float32 volumes with 4x4 float64 affines;
    ``fixed_mask``/``moving_mask`` (on their images' grids, nonzero = counted)
    limit the metric to the points both count.
    """
    settings = settings or SynSettings()
    device = fixed.device
    shape = ints3(fixed.shape)
    spacing = list(voxel_spacing(fixed_affine))
    fixed_b = (fixed / fixed_mean(fixed.abs()).clamp(min=1e-6))[None, None]
    moving_b = (moving / fixed_mean(moving.abs()).clamp(min=1e-6))[None, None]
    mask_b = None if fixed_mask is None else (fixed_mask > 0).to(torch.float32)[None, None]
    full_from_norm = world_from_normalized(fixed_affine, shape)
    velocity = torch.zeros(0)
    metric_value = float("nan")
    for level_mm, f_fac, n_iter in schedule(spacing, shape, settings.levels_mm, settings.iterations):
        f_lvl, f_aff = shrink(fixed_b, fixed_affine, f_fac)
        m_fac = level_factors(voxel_spacing(moving_affine), level_mm, moving.shape)
        m_lvl, m_aff = shrink(moving_b, moving_affine, m_fac)
        lvl_shape = ints3(f_lvl.shape[2:])
        # normalized full-frame coordinates of the level's voxels, cropped to the mask's box
        lvl_to_full = normalized_from_index(shape, device) @ torch.linalg.inv(fixed_affine) @ f_aff
        lvl_to_full = lvl_to_full @ torch.linalg.inv(normalized_from_index(lvl_shape, device))
        ident = F.affine_grid(lvl_to_full[:3].to(torch.float32)[None], [1, 1, *lvl_shape], align_corners=True)
        weights = None
        sampled = torch.ones(ident.shape[1:4], dtype=torch.bool, device=device)
        if mask_b is not None:
            # the metric counts the mask's voxels and ``mask_rim`` level voxels beyond them; the region keeps
            # a rim so their windows are whole
            inside = shrink_mask(mask_b, f_fac)[0, 0]
            if settings.mask_rim:
                inside = dilate(inside > 0.5, settings.mask_rim).to(inside.dtype)
            box = bounding_box(inside, settings.radius + 1)
            ident = ident[:, box[0], box[1], box[2]].contiguous()
            weights = inside[box].unsqueeze(0)
            sampled = dilate(weights[0] > 0, settings.radius)
        sampled = sampled.flatten().nonzero()[:, 0]
        to_fixed = normalized_from_world(f_aff, lvl_shape) @ full_from_norm
        to_moving = normalized_from_world(m_aff, ints3(m_lvl.shape[2:])) @ affine_map @ full_from_norm
        vel_shape = [max(2, int(math.ceil((n - 1) * s / max(settings.velocity_mm, level_mm))) + 1)
                     for n, s in zip(shape, spacing, strict=True)]
        if velocity.numel() == 0:
            velocity = torch.zeros(1, 3, *vel_shape, dtype=torch.float32, device=device)
        else:
            velocity = F.interpolate(velocity, size=vel_shape, mode="trilinear", align_corners=True)
        grid_step = floats3((n - 1) / (v - 1) for n, v in zip(shape, vel_shape, strict=True))
        smooth_mm = max(settings.smooth_mm, settings.smooth_level_vox * level_mm)
        sigma = [smooth_mm / (h * s) for h, s in zip(grid_step, spacing, strict=True)]
        step = settings.step * level_mm / min(spacing)
        m_channels = _with_gradient(m_lvl, to_moving)
        if moving_mask is not None:
            m_channels = torch.cat([m_channels, counted_level(moving_mask, m_fac, settings.radius)], dim=1)
        points = ident.reshape(-1, 3)[sampled]
        level = _Level(_with_gradient(f_lvl, to_fixed), m_channels, ints3(ident.shape[1:4]), sampled,
                       _map(to_fixed, points), _map(to_moving, points), weights, to_fixed, to_moving, shape,
                       grid_step, _AxisGrid.at(_axis_coords(ident), vel_shape))
        for _ in range(n_iter):
            grad, metric_value = _greedy_step(velocity, level, settings)
            update = _gaussian_smooth(grad, sigma)
            velocity = velocity + update * (step / update.square().sum(dim=1).amax().sqrt().clamp(min=1e-12))
    v_norm = _to_normalized(velocity, shape)
    full_axes = _AxisGrid.at([torch.linspace(-1.0, 1.0, n, device=device) for n in shape], velocity.shape[2:])
    fields = []
    for disp in _exp(torch.cat([v_norm, -v_norm]), settings.squarings):
        disp_norm = full_axes.interpolate(disp).permute(1, 2, 3, 0)
        fields.append((disp_norm @ full_from_norm[:3, :3].T.to(torch.float32)).contiguous())
    return SynResult(forward=fields[0], inverse=fields[1], metric=metric_value)
