"""Rigid (6 dof) and affine (12 dof) registration on a multi-resolution pyramid.

The map fixed -> moving (world mm, ITK pull-back convention) is
``x -> L (x - c) + c + t`` about the fixed centre of mass ``c``. Parameters
are scaled so one unit moves a point at ``RADIUS_MM`` from ``c`` by about
1 mm (rotation angles times the radius; for affine, the entries of ``L - I``
times the radius), which keeps the problem well conditioned.
Each level runs L-BFGS with a strong-Wolfe line search (a 6-12 parameter
smooth problem converges in tens of evaluations, far fewer than Adam needs);
most evaluations happen on coarse levels, the finest level only refines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch

from neurolearn_cli.engine.geometry import euler_angles, euler_matrix, ints3, voxel_spacing
from neurolearn_cli.engine.metrics import MetricName, dissimilarity
from neurolearn_cli.engine.morphology import dilate
from neurolearn_cli.engine.optimizers import LBFGS
from neurolearn_cli.engine.reduce import fixed_mean
from neurolearn_cli.engine.registration.pyramid import (
    counted_level,
    level_factors,
    schedule,
    shrink,
    shrink_mask,
)
from neurolearn_cli.engine.registration.sampler import FixedSamples
from neurolearn_cli.engine.registration.space import about_center, theta

RADIUS_MM = 50.0


@dataclass(frozen=True)
class LinearSettings:
    """Optimization schedule: level spacings (mm, coarse to fine), L-BFGS iterations per level, and
    the most fixed samples per level (a regular subset of the masked voxels beyond it; None: all)."""

    levels_mm: Sequence[float] = (8.0, 4.0, 2.0)
    iterations: Sequence[int] = (60, 30, 15)
    max_samples: int | None = 2**16


def parameters_to_matrix(params: torch.Tensor, dof: int, center: torch.Tensor) -> torch.Tensor:
    """4x4 float64 world map from the (6,) rigid or (12,) affine parameter vector."""
    if dof == 6:
        linear = euler_matrix(params[:3] / RADIUS_MM)
    else:
        linear = torch.eye(3, dtype=params.dtype, device=params.device) + params[:9].view(3, 3) / RADIUS_MM
    return about_center(linear, params[dof - 3 :], center)


def _initial_parameters(init: torch.Tensor, dof: int, center: torch.Tensor) -> torch.Tensor:
    """Parameters of ``init`` (a translation or an earlier rigid/affine result) for ``dof``."""
    linear, shift = init[:3, :3], init[:3, 3]
    translation = linear @ center + shift - center
    if dof == 12:
        return torch.cat([((linear - torch.eye(3, dtype=linear.dtype, device=linear.device)) * RADIUS_MM).reshape(-1), translation])
    return torch.cat([euler_angles(linear) * RADIUS_MM, translation])


def _loss(
    params: torch.Tensor,
    *,
    samples: FixedSamples,
    moving: torch.Tensor,
    frames: tuple[torch.Tensor, tuple[int, int, int], torch.Tensor, tuple[int, int, int]],
    dof: int,
    metric: MetricName,
    center: torch.Tensor,
    moving_counted: torch.Tensor | None = None,
) -> torch.Tensor:
    """Dissimilarity of the moving level pulled onto the fixed samples through ``params``.

    ``moving_counted`` (the moving level's counted region, 0/1) drops the
    samples that land outside it; it selects samples and is not differentiated.
    """
    world = parameters_to_matrix(params, dof, center)
    warp = theta(*frames, world)[None]
    warped = samples.pull(moving, warp)
    weights = samples.weights
    if moving_counted is not None:
        counted = (samples.pull(moving_counted, warp.detach()) > 0.999).to(warped.dtype)
        weights = counted if weights is None else weights * counted
    return dissimilarity(metric, samples.values, warped, weights)[0]


def _closure(loss_fn: Callable[[torch.Tensor], torch.Tensor], params: torch.Tensor) -> torch.Tensor:
    """L-BFGS closure: fresh gradient of ``loss_fn`` at ``params``."""
    params.grad = None
    loss = loss_fn(params)
    loss.backward()
    return loss


def register_linear(
    fixed: torch.Tensor,
    fixed_affine: torch.Tensor,
    moving: torch.Tensor,
    moving_affine: torch.Tensor,
    init: torch.Tensor,
    center: torch.Tensor,
    *,
    dof: int,
    metric: MetricName,
    fixed_mask: torch.Tensor | None = None,
    moving_mask: torch.Tensor | None = None,
    settings: LinearSettings | None = None,
) -> tuple[torch.Tensor, float]:
    """Estimate the fixed -> moving world map (4x4 float64) and the final metric value.

    ``fixed``/``moving`` are (X, Y, Z) float32 volumes with their 4x4 affines;
    ``fixed_mask`` selects the fixed samples and ``moving_mask`` (nonzero =
    counted, e.g. the complement of a lesion) drops those mapped outside it;
    ``init`` the starting world map, ``center`` the centre of rotation (mm).
    The returned value is the dissimilarity of ``metric`` on the finest level.
    """
    settings = settings or LinearSettings()
    if dof not in (6, 12):
        raise ValueError(f"dof must be 6 or 12, got {dof}")
    scale = fixed_mean(fixed.abs()).clamp(min=1e-6)
    fixed_b = (fixed / scale)[None, None]
    moving_b = (moving / scale)[None, None]
    mask_b = None if fixed_mask is None else (fixed_mask > 0).to(torch.float32)[None, None]
    params = _initial_parameters(init, dof, center).clone().requires_grad_(True)
    loss_value = float("nan")
    for level_mm, f_fac, n_iter in schedule(voxel_spacing(fixed_affine), fixed.shape, settings.levels_mm, settings.iterations):
        m_fac = level_factors(voxel_spacing(moving_affine), level_mm, moving.shape)
        f_lvl, f_aff = shrink(fixed_b, fixed_affine, f_fac)
        m_lvl, m_aff = shrink(moving_b, moving_affine, m_fac)
        m_lvl = m_lvl.contiguous()
        mask_lvl = None if mask_b is None else dilate(shrink_mask(mask_b, f_fac)[0, 0] > 0).float()
        samples = FixedSamples.build(f_lvl[0, 0], mask_lvl, as_grid=metric == "lncc").thinned(settings.max_samples)
        f_shape, m_shape = ints3(f_lvl.shape[2:]), ints3(m_lvl.shape[2:])
        counted = None if moving_mask is None else counted_level(moving_mask, m_fac, 2 if metric == "lncc" else 0)
        level_loss = partial(_loss, samples=samples, moving=m_lvl, frames=(f_aff, f_shape, m_aff, m_shape),
                             dof=dof, metric=metric, center=center, moving_counted=counted)
        optimizer = LBFGS(params, max_iter=n_iter, history_size=10, tolerance_grad=1e-9, tolerance_change=1e-12)
        optimizer.step(partial(_closure, level_loss, params))
        with torch.no_grad():
            loss_value = float(level_loss(params))
    return parameters_to_matrix(params.detach(), dof, center), loss_value

