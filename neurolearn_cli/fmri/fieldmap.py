"""Susceptibility distortion correction from a phase-difference (GRE) fieldmap.

Steps: the phase difference (rad, rescaled from scanner units) is unwrapped
inside the magnitude's mask and turned into the off-resonance field
``f = dphi / (2 pi dTE)`` (Hz), ``dTE = EchoTime2 - EchoTime1``; the field is
smoothed within the mask and extrapolated outside by normalized Gaussian
convolution, resampled by world coordinates onto the BOLD grid, and turned
into the voxel shift ``s = f * TotalReadoutTime`` along the BOLD's
phase-encoding axis (sign from PhaseEncodingDirection). A signal at ``r`` is
seen at ``r + s(r) d`` (``d`` the PE direction), so the corrected image pulls
from ``r + s(r) d``: an engine :class:`DisplacementField` that composes with
head motion and coregistration into one resampling.

Axis letters (i, j, k) refer to the BOLD's stored voxel axes, so the BOLD image
must not be reoriented before this step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from neurolearn_cli.engine.image import Grid, Image
from neurolearn_cli.engine.morphology import erode
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.engine.transforms import DisplacementField
from neurolearn_cli.errors import InputError, NeurolearnError
from neurolearn_cli.fmri.masking import intensity_mask
from neurolearn_cli.fmri.unwrap import laplacian_unwrap

_AXES = {"i": 0, "j": 1, "k": 2}
_SMOOTH_FWHM_MM = 4.0
_EXTRAPOLATE_FWHM_MM = 16.0
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


class FieldmapSkipped(NeurolearnError):
    """Fieldmap metadata are missing: the workflow skips SDC and logs this message."""

    def __init__(self, path: str | Path | None, missing: list[str]) -> None:
        self.path = None if path is None else str(path)
        self.missing = missing
        super().__init__(
            f"{self.path}: distortion correction skipped, missing {', '.join(missing)}"
        )


@dataclass(frozen=True)
class EpiGeometry:
    """Phase-encoding axis (0-2), its sign (+1 or -1) and the total readout time (s)."""

    axis: int
    sign: int
    total_readout_time: float


def echo_time_difference(metadata: Mapping, sidecar: str | Path | None = None) -> float:
    """``EchoTime2 - EchoTime1`` (s) of a phasediff sidecar; :class:`FieldmapSkipped` if absent."""
    missing = [key for key in ("EchoTime1", "EchoTime2") if metadata.get(key) is None]
    if missing:
        raise FieldmapSkipped(sidecar, missing)
    delta = float(metadata["EchoTime2"]) - float(metadata["EchoTime1"])
    if not delta > 0:
        raise InputError(sidecar, f"EchoTime2 must exceed EchoTime1 (difference {delta} s)")
    return delta


def epi_geometry(metadata: Mapping, sidecar: str | Path | None = None) -> EpiGeometry:
    """PE axis, sign and readout time from a BOLD sidecar; :class:`FieldmapSkipped` if absent."""
    missing = [
        key for key in ("PhaseEncodingDirection", "TotalReadoutTime") if metadata.get(key) is None
    ]
    if missing:
        raise FieldmapSkipped(sidecar, missing)
    direction = str(metadata["PhaseEncodingDirection"]).strip()
    if direction not in {"i", "j", "k", "i-", "j-", "k-"}:
        raise InputError(
            sidecar, f"PhaseEncodingDirection {direction!r} is not one of i, j, k, i-, j-, k-"
        )
    readout = float(metadata["TotalReadoutTime"])
    if not 0 < readout < 1:
        raise InputError(sidecar, f"TotalReadoutTime {readout} s is not in (0, 1)")
    return EpiGeometry(_AXES[direction[0]], -1 if direction.endswith("-") else 1, readout)


def phase_to_radians(phase: torch.Tensor) -> torch.Tensor:
    """Phase in [-pi, pi): scanner units (e.g. Siemens -4096..4095) are rescaled linearly."""
    low, high = float(phase.min()), float(phase.max())
    if low >= -math.pi - 1e-3 and high <= math.pi + 1e-3:
        return phase.to(torch.float32)
    return ((phase - low) / (high - low) * 2.0 * math.pi - math.pi).to(torch.float32)


def gaussian_filter(volume: torch.Tensor, sigma_vox: tuple[float, float, float]) -> torch.Tensor:
    """Separable Gaussian filter of a 3D volume (zero padding), sigma per axis in voxels."""
    out = volume[None, None]
    for axis, sigma in enumerate(sigma_vox):
        radius = max(1, int(math.ceil(3.0 * sigma)))
        x = torch.arange(-radius, radius + 1, dtype=volume.dtype, device=volume.device)
        kernel = torch.exp(-0.5 * (x / max(sigma, 1e-6)) ** 2)
        kernel = kernel / kernel.sum()
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = kernel.numel()
        padding = [0, 0, 0]
        padding[axis] = radius
        out = F.conv3d(out, kernel.view(shape), padding=tuple(padding))
    return out[0, 0]


def masked_smooth(
    values: torch.Tensor, mask: torch.Tensor, spacing: tuple[float, float, float], fwhm_mm: float
) -> torch.Tensor:
    """Normalized convolution ``G*(v m) / G*m``: smooths inside, extrapolates outside the mask."""
    sx, sy, sz = (fwhm_mm * _FWHM_TO_SIGMA / s for s in spacing)
    sigma = (sx, sy, sz)
    weight = mask.to(values.dtype)
    numerator = gaussian_filter(values * weight, sigma)
    denominator = gaussian_filter(weight, sigma)
    return numerator / denominator.clamp(min=1e-6)


def phasediff_field(
    phasediff: Image, magnitude: Image, delta_te: float
) -> tuple[Image, torch.Tensor]:
    """Smooth off-resonance field (Hz) on the fieldmap grid and the magnitude mask used.

    ``f = unwrap(dphi) / (2 pi dTE)``; smoothed (4 mm FWHM) within the eroded
    magnitude mask and extrapolated (16 mm FWHM) outside it.
    """
    if phasediff.shape3 != magnitude.shape3:
        raise InputError(
            None, f"phasediff {phasediff.shape3} and magnitude {magnitude.shape3} grids differ"
        )
    phase = phase_to_radians(
        phasediff.data if phasediff.data.dim() == 3 else phasediff.data[..., 0]
    )
    magnitude_data = magnitude.data if magnitude.data.dim() == 3 else magnitude.data[..., 0]
    mask = erode(intensity_mask(magnitude_data))
    spacing = phasediff.spacing
    field = laplacian_unwrap(phase, mask, spacing) / (2.0 * math.pi * delta_te)
    inner = masked_smooth(field, mask, spacing, _SMOOTH_FWHM_MM)
    outer = masked_smooth(field, mask, spacing, _EXTRAPOLATE_FWHM_MM)
    return phasediff.with_data(torch.where(mask, inner, outer)), mask


def shift_displacement(
    field_hz: Image, bold_grid: Grid, geometry: EpiGeometry
) -> DisplacementField:
    """Pull-back displacement (mm) on the BOLD grid correcting the EPI distortion of ``field_hz``.

    ``u(r) = sign * f(r) * TotalReadoutTime * a_pe`` with ``a_pe`` the BOLD
    affine's column of the PE axis (one voxel step in mm).
    """
    field = resample(field_hz, bold_grid, order="linear").data
    shift_vox = field * (geometry.sign * geometry.total_readout_time)
    step = bold_grid.affine[:3, geometry.axis].to(torch.float32)
    return DisplacementField(shift_vox[..., None] * step, bold_grid)
