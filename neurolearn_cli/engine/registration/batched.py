"""Batched rigid registration of many volumes to one reference (head motion).

All volumes are solved together as one tensor program with inverse-
compositional Gauss-Newton (Baker & Matthews): the Jacobian of the residual
comes from the reference's gradient, so it and the 6x6 normal matrix are
computed once per level, and each iteration costs one forward ``grid_sample``
of the whole series at the reference's sample points plus a batched 6x6
solve. The residual is least squares after matching each volume's mean
intensity to the reference, the right model for volumes of one series (same
contrast); it converges in a handful of iterations where Adam needs hundreds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from neurolearn_cli.engine.geometry import (
    center_of_mass,
    euler_matrix,
    index_grid,
    ints3,
    voxel_spacing,
)
from neurolearn_cli.engine.morphology import dilate
from neurolearn_cli.engine.registration.pyramid import level_factors, shrink, shrink_mask
from neurolearn_cli.engine.registration.sampler import FixedSamples
from neurolearn_cli.engine.registration.space import (
    about_center,
    apply_matrix,
    theta,
)


@dataclass(frozen=True)
class MotionSettings:
    """Level spacings (mm, coarse to fine) and Gauss-Newton iterations per level."""

    levels_mm: Sequence[float] = (6.0, 3.0)
    iterations: Sequence[int] = (12, 5)


def _world_gradient(volume: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Intensity gradient (3, X, Y, Z) per world mm of a 3D volume (central differences)."""
    grads = torch.stack(torch.gradient(volume), dim=0)
    to_world = torch.linalg.inv(affine[:3, :3]).T.to(volume.dtype)
    return torch.einsum("ij,j...->i...", to_world, grads)


def register_rigid_batched(
    reference: torch.Tensor,
    reference_affine: torch.Tensor,
    series: torch.Tensor,
    series_affine: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    settings: MotionSettings | None = None,
) -> torch.Tensor:
    """Rigid world maps reference -> volume, (T, 4, 4) float64, for a (X, Y, Z, T) series.

    ``reference`` is (X', Y', Z') with its own affine; ``mask`` (reference
    grid, 0/1) limits the samples, e.g. to the brain. Under the ITK pull-back
    convention, resampling volume ``t`` through map ``t`` aligns it to the
    reference.
    """
    settings = settings or MotionSettings()
    device = reference.device
    n_vols = series.shape[-1]
    ref_shape = ints3(reference.shape)
    ref_b = reference[None, None]
    vols_b = series.permute(3, 0, 1, 2).unsqueeze(1)
    mask_b = None if mask is None else (mask > 0).to(torch.float32)[None, None]
    center = center_of_mass(reference, reference_affine, mask)
    maps = torch.eye(4, dtype=torch.float64, device=device).repeat(n_vols, 1, 1)
    for level_mm, n_iter in zip(settings.levels_mm, settings.iterations, strict=True):
        r_lvl, r_aff = shrink(ref_b, reference_affine, level_factors(voxel_spacing(reference_affine), level_mm, ref_shape))
        s_lvl, s_aff = shrink(vols_b, series_affine, level_factors(voxel_spacing(series_affine), level_mm, series.shape[:3]))
        r_shape, s_shape = ints3(r_lvl.shape[2:]), ints3(s_lvl.shape[2:])
        if mask_b is None:
            m_lvl = torch.ones_like(r_lvl[0, 0])
        else:
            fac = level_factors(voxel_spacing(reference_affine), level_mm, ref_shape)
            m_lvl = dilate(shrink_mask(mask_b, fac)[0, 0] > 0).float()
        samples = FixedSamples.build(r_lvl[0, 0], m_lvl, as_grid=False)
        inside = m_lvl > 0
        points = apply_matrix(r_aff, index_grid(r_shape, device)[inside])
        grad = _world_gradient(r_lvl[0, 0], r_aff)[:, inside].T.to(torch.float64)
        jac64 = torch.cat([grad, torch.linalg.cross(points - center, grad)], dim=1)
        normal = jac64.T @ jac64
        jac = jac64.to(torch.float32)
        fixed_vals = samples.values
        for _ in range(n_iter):
            th = theta(r_aff, r_shape, s_aff, s_shape, maps)
            warped = samples.pull(s_lvl, th, padding="border")
            gain = fixed_vals.mean(1, keepdim=True) / warped.mean(1, keepdim=True).clamp(min=1e-12)
            residual = gain * warped - fixed_vals
            step = torch.linalg.solve(normal, (residual @ jac).to(torch.float64).T).T
            update = about_center(euler_matrix(step[:, 3:]), step[:, :3], center)
            maps = maps @ torch.linalg.inv(update)
    return maps
