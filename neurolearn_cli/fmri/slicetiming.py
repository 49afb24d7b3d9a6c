"""Slice-timing correction by Fourier (sinc) temporal interpolation.

Slice ``k`` of volume ``t`` is acquired at ``t TR + s_k``; correction resamples
every voxel's time series to the common times ``t TR + t0``. A delay of
``d_k = (t0 - s_k) / TR`` samples is a phase ramp in the temporal frequency
domain, ``Y(f) = X(f) exp(2 pi i f d_k)`` (AFNI ``3dTshift -Fourier``). To avoid
wrap-around, each series has its least-squares line removed (and re-added at the
shifted times) and is mirrored before the FFT. Slices with equal acquisition
times (multiband) share one phase ramp and are shifted in one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from neurolearn_cli.dataset.validation import slice_encoding_error, slice_timing_error
from neurolearn_cli.errors import InputError

_AXES = {"i": 0, "j": 1, "k": 2}


@dataclass(frozen=True)
class SliceTimingResult:
    """Corrected series and the time (s, from the volume's start) it now refers to."""

    data: torch.Tensor
    reference_time: float


def slice_axis(direction: str | None, sidecar: str | Path | None = None) -> tuple[int, bool]:
    """Voxel axis and reversal flag from ``SliceEncodingDirection`` (``i``, ``j``, ``k``, optional ``-``).

    BIDS: absent means ``k``; with ``-`` the SliceTiming entries run from the
    last slice index to the first.
    """
    direction = (direction or "k").strip()
    error = slice_encoding_error(direction)
    if error:
        raise InputError(sidecar, error)
    return _AXES[direction[0]], direction.endswith("-")


def validate_slice_timing(
    slice_times: Sequence[float],
    n_slices: int,
    repetition_time: float,
    sidecar: str | Path | None = None,
) -> torch.Tensor:
    """Check SliceTiming against the slice count and the TR; return it as float64.

    Raises :class:`InputError` naming ``sidecar`` when the length differs from
    ``n_slices`` or a time lies outside ``[0, TR)``.
    """
    if repetition_time is None or not repetition_time > 0:
        raise InputError(sidecar, f"RepetitionTime must be positive, got {repetition_time!r}")
    error = slice_timing_error(slice_times, n_slices, repetition_time)
    if error:
        raise InputError(sidecar, error)
    return torch.as_tensor([float(t) for t in slice_times], dtype=torch.float64)


def reference_time(slice_times: torch.Tensor, slice_time_ref: float) -> float:
    """fMRIPrep's target time ``t0 = min(s) + ref (max(s) - min(s))``, rounded to 1 ms.

    ``slice_time_ref`` is the fraction of the acquisition (0 start, 0.5 middle, 1 end).
    """
    if not 0.0 <= slice_time_ref <= 1.0:
        raise ValueError(f"slice_time_ref {slice_time_ref} must lie in [0, 1]")
    first, last = float(slice_times.min()), float(slice_times.max())
    return round(first + slice_time_ref * (last - first), 3)


def shift_series(series: torch.Tensor, delay: torch.Tensor) -> torch.Tensor:
    """Fourier-interpolate series (..., T) at sample times ``t + delay`` (delay broadcast over ...).

    The least-squares line is removed and re-added at the shifted times; the
    residual is mirrored to length 2T (continuous periodic extension) before
    the phase ramp ``exp(2 pi i f delay)`` is applied.
    """
    n = series.shape[-1]
    work = series.to(torch.float32)
    t = torch.arange(n, dtype=torch.float32, device=series.device)
    tc = t - t.mean()
    slope = (work * tc).sum(-1, keepdim=True) / (tc * tc).sum()
    intercept = work.mean(-1, keepdim=True)
    residual = work - intercept - slope * tc
    mirrored = torch.cat([residual, residual.flip(-1)], dim=-1)
    freqs = torch.fft.rfftfreq(2 * n, device=series.device, dtype=torch.float32)
    delay = delay.to(torch.float32).unsqueeze(-1)
    ramp = torch.exp(2j * torch.pi * freqs * delay)
    spectrum = torch.fft.rfft(mirrored, dim=-1)
    # the complex product in real arithmetic: torch's complex multiply rounds differently in its
    # vector and scalar loops, so its result would depend on where the thread split falls
    re, im, cos, sin = spectrum.real, spectrum.imag, ramp.real, ramp.imag
    product = torch.complex(re * cos - im * sin, re * sin + im * cos)
    shifted = torch.fft.irfft(product, n=2 * n, dim=-1)[..., :n]
    return (shifted + intercept + slope * (tc + delay)).to(series.dtype)


def correct_slice_timing(
    bold: torch.Tensor,
    slice_times: Sequence[float],
    repetition_time: float,
    *,
    slice_time_ref: float = 0.5,
    slice_encoding_direction: str | None = "k",
    skip: int = 0,
    sidecar: str | Path | None = None,
) -> SliceTimingResult:
    """Slice-timing correct a 4D BOLD series (X, Y, Z, T) so every slice refers to ``t0``.

    Parameters
    ----------
    bold : Tensor
        BOLD series, float32, on the run's device.
    slice_times : sequence of float
        BIDS SliceTiming (s), one per slice along the slice axis.
    repetition_time : float
        TR in seconds.
    slice_time_ref : float
        Fraction of the acquisition to align to (fMRIPrep's ``--slice-time-ref``).
    slice_encoding_direction : str, optional
        BIDS SliceEncodingDirection; ``k`` when absent.
    skip : int
        Leading non-steady-state volumes, copied unchanged and left out of the
        interpolation (their brightness would ring through the series), as
        fMRIPrep's ``3dTshift -ignore``.
    sidecar : path, optional
        The JSON the metadata came from, named in error messages.
    """
    if bold.dim() != 4:
        raise ValueError(f"BOLD series must be 4D, got shape {tuple(bold.shape)}")
    axis, reverse = slice_axis(slice_encoding_direction, sidecar)
    times = validate_slice_timing(slice_times, int(bold.shape[axis]), repetition_time, sidecar)
    if reverse:
        times = times.flip(0)
    t0 = reference_time(times, slice_time_ref)
    if not 0 <= skip <= int(bold.shape[3]) - 3:
        raise InputError(
            sidecar, f"{skip} non-steady-state volumes leave too few volumes for slice timing"
        )
    moved = bold.movedim(axis, 0)
    out = moved.clone()
    groups, inverse = torch.unique(times, return_inverse=True)
    for group, acquired in enumerate(groups.tolist()):
        slices = torch.nonzero(inverse == group).flatten().to(bold.device)
        delay = torch.tensor((t0 - acquired) / repetition_time, device=bold.device)
        out[slices, ..., skip:] = shift_series(moved[slices, ..., skip:], delay)
    return SliceTimingResult(out.movedim(0, axis).contiguous(), t0)
