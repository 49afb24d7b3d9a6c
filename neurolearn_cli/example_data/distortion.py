"""Susceptibility distortion of an EPI volume along its phase-encoding axis (forward model).

What a reverse phase-encoding pair looks like when the true image is seen
through a known field: each voxel is displaced along the phase-encoding axis
by the field (Hz) times the total readout time, and its intensity scaled by
the Jacobian of that displacement (signal piles up where voxels are
compressed). Used to test and benchmark the PEPOLAR field estimate against a
field that is known.
"""

from __future__ import annotations

import torch

#: Fixed-point iterations inverting the displacement; enough for shifts of a few voxels.
_INVERSION_ITERATIONS = 60


def _along_axis(volume: torch.Tensor, shift: torch.Tensor, axis: int) -> torch.Tensor:
    """Linear interpolation of ``volume`` at ``r + shift(r)`` along ``axis`` (clamped at the ends)."""
    n = volume.shape[axis]
    view = [1] * volume.dim()
    view[axis] = n
    position = (torch.arange(n, dtype=volume.dtype, device=volume.device).view(view) + shift).clamp(0, n - 1)
    low = position.floor().long().clamp(max=n - 2)
    frac = position - low
    return volume.gather(axis, low) * (1 - frac) + volume.gather(axis, low + 1) * frac


def distort(volume: torch.Tensor, shift_vox: torch.Tensor, axis: int) -> torch.Tensor:
    """The EPI observed through a voxel shift: ``I(y) = true(r) dr/dy`` with ``y = r + shift(r)``.

    Parameters
    ----------
    volume : Tensor
        The undistorted 3D image.
    shift_vox : Tensor
        Displacement along ``axis`` in voxels, same shape: the field (Hz) times
        the total readout time, signed by the phase-encoding polarity.
    axis : int
        The phase-encoding axis.
    """
    delta = torch.zeros_like(volume)
    for _ in range(_INVERSION_ITERATIONS):
        delta = -_along_axis(shift_vox, delta, axis)
    return _along_axis(volume, delta, axis) * (1.0 + torch.gradient(delta, dim=axis)[0])
