"""Susceptibility field from a reverse phase-encoding EPI pair (PEPOLAR, TOPUP-like).

Two EPIs of one anatomy acquired with opposite phase-encoding (PE) directions
are distorted in opposite senses by the same off-resonance field ``f`` (Hz).
With ``s_k`` the sign of image ``k``'s PE direction and ``T_k`` its total
readout time, a signal at ``r`` is seen at ``r + s_k T_k f(r) e`` (``e`` one
voxel along the PE axis; the convention of :mod:`neurolearn_cli.fmri.fieldmap`)
with its intensity divided by the Jacobian ``1 + s_k T_k df/dx_pe``. So each
image is undistorted by

    ``C_k(r) = I_k(r + s_k T_k f(r) e) (1 + s_k T_k df/dx_pe(r))``

and ``f`` is the smooth field that makes ``C_1 = C_2``: the sum of squared
differences inside the union of the two head masks is minimised over ``f``
with L-BFGS, coarse to fine (images Gaussian-smoothed, the field a
Gaussian-smoothed free volume, each level adding a finer increment to the
field of the level before, and a small penalty on the field's gradient).
The field is returned on the first image's grid, in Hz, ready for
:func:`~neurolearn_cli.fmri.fieldmap.shift_displacement`; motion between the
fieldmap acquisition and the BOLD run is not modelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.morphology import dilate
from neurolearn_cli.engine.optimizers import LBFGS
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.errors import InputError
from neurolearn_cli.fmri.fieldmap import EpiGeometry, gaussian_filter
from neurolearn_cli.fmri.masking import intensity_mask


@dataclass(frozen=True)
class PepolarLevel:
    """One resolution level: image and field smoothing (voxels) and L-BFGS iterations."""

    image_sigma: float
    field_sigma: float
    iterations: int


#: Coarse to fine: wide capture range first, then detail.
DEFAULT_LEVELS = (
    PepolarLevel(image_sigma=2.0, field_sigma=4.0, iterations=30),
    PepolarLevel(image_sigma=1.0, field_sigma=2.0, iterations=30),
    PepolarLevel(image_sigma=0.5, field_sigma=1.5, iterations=20),
)
_SMOOTHNESS = 0.05
_MIN_JACOBIAN = 0.1


def mean_volume(image: Image) -> Image:
    """A 3D image: the volume itself, or the mean over a 4D image's volumes."""
    return image if image.data.dim() == 3 else image.with_data(image.data.mean(dim=-1))


def _same_axis(first: Image, second: Image, axis: int, source: str) -> None:
    """The PE voxel axis must point the same way in world space in both images."""
    a = first.affine[:3, axis] / first.affine[:3, axis].norm()
    b = second.affine[:3, axis] / second.affine[:3, axis].norm()
    if float((a * b).sum().abs()) < 0.99:
        raise InputError(source, "the two phase-encoding axes point in different world directions")


def _sample_along(volume: torch.Tensor, shift_vox: torch.Tensor, axis: int) -> torch.Tensor:
    """``volume(r + shift(r) e_axis)`` by trilinear interpolation, border values outside."""
    shape = volume.shape
    axes = [torch.linspace(-1.0, 1.0, n, device=volume.device) for n in shape]
    coords = list(torch.meshgrid(*axes, indexing="ij"))
    coords[axis] = coords[axis] + shift_vox * (2.0 / max(shape[axis] - 1, 1))
    grid = torch.stack(coords[::-1], dim=-1)[None]
    return F.grid_sample(
        volume[None, None], grid, mode="bilinear", padding_mode="border", align_corners=True
    )[0, 0]


def _derivative(field: torch.Tensor, axis: int) -> torch.Tensor:
    """Central difference along ``axis`` (one-sided at the ends), per voxel."""
    return torch.gradient(field, dim=axis)[0]


def _undistort(
    volume: torch.Tensor, shift: torch.Tensor, sign_scale: float, axis: int
) -> torch.Tensor:
    """``C(r) = I(r + a u(r) e) (1 + a du/dx)`` with ``a`` the signed readout ratio."""
    jacobian = (1.0 + sign_scale * _derivative(shift, axis)).clamp(min=_MIN_JACOBIAN)
    return _sample_along(volume, sign_scale * shift, axis) * jacobian


def _normalized(volume: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Intensities over their mean in ``mask``: the pair may differ in overall scaling."""
    return volume / volume[mask].mean().clamp(min=1e-6)


def estimate_pepolar_field(
    first: Image,
    first_geometry: EpiGeometry,
    second: Image,
    second_geometry: EpiGeometry,
    *,
    source: str = "",
    levels: Sequence[PepolarLevel] = DEFAULT_LEVELS,
) -> Image:
    """Off-resonance field (Hz) on ``first``'s grid from an opposite-PE pair.

    Parameters
    ----------
    first, second : Image
        The two EPIs (3D, or 4D averaged over volumes); ``second`` is
        resampled by world coordinates onto ``first``'s grid.
    first_geometry, second_geometry : EpiGeometry
        PE axis, sign and total readout time of each, from its sidecar.
    source : str
        Named in errors (the fieldmap's path).
    levels : sequence of PepolarLevel
        The coarse-to-fine schedule.

    Raises
    ------
    InputError
        The PE axes differ or the directions are not opposite.
    """
    if first_geometry.axis != second_geometry.axis:
        raise InputError(source, "the EPI pair is phase-encoded along different axes")
    if first_geometry.sign == second_geometry.sign:
        raise InputError(source, "the EPI pair has the same phase-encoding direction")
    one, two = mean_volume(first), mean_volume(second)
    _same_axis(one, two, first_geometry.axis, source)
    if two.grid != one.grid:
        two = resample(two, one.grid, order="linear")
    axis = first_geometry.axis
    readout = first_geometry.total_readout_time
    scales = (
        float(first_geometry.sign),
        second_geometry.sign * second_geometry.total_readout_time / readout,
    )
    mask = dilate(intensity_mask(one.data) | intensity_mask(two.data), 2)
    images = (_normalized(one.data, mask), _normalized(two.data, mask))
    weight = mask.to(torch.float32)
    shift = torch.zeros_like(one.data)
    for level in levels:
        shift = shift + _fit_level(images, shift, scales, axis, weight, level)
    return one.with_data(shift / readout)


def _fit_level(
    images: tuple[torch.Tensor, torch.Tensor],
    shift: torch.Tensor,
    scales: tuple[float, float],
    axis: int,
    weight: torch.Tensor,
    level: PepolarLevel,
) -> torch.Tensor:
    """The smooth increment (voxels) to ``shift`` that best matches the undistorted pair at one level."""
    smooth = [gaussian_filter(image, (level.image_sigma,) * 3) for image in images]
    field_sigma = (level.field_sigma,) * 3
    increment = torch.zeros_like(shift, requires_grad=True)
    optimizer = LBFGS(increment, max_iter=level.iterations, history_size=10, tolerance_grad=1e-7,
                      tolerance_change=1e-9)  # torch.optim.LBFGS's defaults

    def closure() -> torch.Tensor:
        increment.grad = None
        total = shift + gaussian_filter(increment, field_sigma)
        diff = _undistort(smooth[0], total, scales[0], axis) - _undistort(
            smooth[1], total, scales[1], axis
        )
        data = (diff * diff * weight).sum() / weight.sum()
        penalty = sum((g * g).mean() for g in torch.gradient(total))
        loss = data + _SMOOTHNESS * penalty
        loss.backward()
        return loss

    optimizer.step(closure)
    return gaussian_filter(increment.detach(), field_sigma)
