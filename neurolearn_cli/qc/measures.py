"""Image-quality metrics shared by T1w and BOLD images (MRIQC's definitions).

Every function takes torch tensors on any device (data float, masks bool, same
device) and returns Python floats; the heavy reductions run on the tensors'
device. Percentiles follow numpy's default (linear interpolation); ``stdv``
is the population standard deviation (numpy's ``ddof=0``) and ``mad`` the
normalised median absolute deviation ``median(|x - median(x)|) / 0.6745`` as
``statsmodels.robust.mad`` (both as MRIQC).

Differences from MRIQC
----------------------
- ``fwhm``: MRIQC runs AFNI's ``3dFWHMx`` (Gaussian fit of the first-difference
  autocorrelation); :func:`fwhm` uses the same first-difference estimator,
  written out (see its docstring). MRIQC reports ``fwhm_*`` in voxels (mm divided
  by the voxel size), so the IQM builders do the same with :func:`fwhm_voxels`.
- Undefined values (an empty region, zero variance, an empty background) are
  :class:`Missing` with the reason, where MRIQC writes ``-1`` or ``0``: no
  placeholder number is ever reported. The IQM JSON writes them as ``null``
  with the reason beside (:func:`~neurolearn_cli.qc.pipeline.iqm_record`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from neurolearn_cli.engine.image import bounding_box
from neurolearn_cli.engine.reduce import fixed_mean

_MAD_SCALE = 0.6744897501960817  # Phi^-1(3/4): the MAD of a unit Gaussian


@dataclass(frozen=True)
class Missing:
    """An IQM that is undefined for this image, and why (reported as ``null``/``n/a``, never as a number)."""

    reason: str


#: One IQM's value: a number, or :class:`Missing` with its reason.
Measure = float | Missing
#: The key of an IQM JSON that maps each missing measure to its reason.
MISSING_KEY = "missing"
#: The key of an IQM JSON that says what the measures were taken against (e.g. ``tpm_template``).
PROVENANCE_KEY = "provenance"


def first_missing(*values: Measure) -> Missing | None:
    """The first :class:`Missing` among ``values`` (the reason a measure built from them is undefined)."""
    return next((value for value in values if isinstance(value, Missing)), None)


def on_defined(function: Callable[..., Measure], *args: Measure) -> Measure:
    """``function(*args)``, or the first missing argument: a measure built on an undefined one is undefined."""
    gap = first_missing(*args)
    return gap if gap is not None else function(*args)


def percentile(values: torch.Tensor, q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, numpy's linear interpolation.

    Uses ``torch.kthvalue`` (``torch.quantile`` refuses tensors over 2**24 elements).
    """
    flat = values.reshape(-1)
    n = flat.numel()
    if n == 0:
        raise ValueError("percentile of an empty set")
    position = (n - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, n - 1)
    low = torch.kthvalue(flat, lower + 1).values
    low_value = float(low)
    if upper == lower or position == lower:
        return low_value
    # the next order statistic, without a second selection: the same value when it
    # repeats past rank ``lower``, else the smallest larger value
    if int((flat <= low).sum()) > lower + 1:
        return low_value
    high_value = float(flat.masked_fill(flat <= low, math.inf).min())
    return low_value + (high_value - low_value) * (position - lower)


def median(values: torch.Tensor) -> float:
    """Median as numpy computes it (mean of the two central values for even counts)."""
    return percentile(values, 50.0)


def mad(values: torch.Tensor, centre: float | None = None) -> float:
    r"""Normalised median absolute deviation, :math:`\mathrm{median}(|x - \tilde x|) / 0.6745`.

    ``centre`` is :math:`\tilde x` when the caller already has it.
    """
    centre = median(values) if centre is None else centre
    return median((values - centre).abs()) / _MAD_SCALE


def summary_stats(data: torch.Tensor, mask: torch.Tensor, region: str = "the region") -> dict[str, Measure]:
    r"""Summary of the intensities in ``mask``: mean, median, stdv, mad, k, p05, p95, n.

    ``k`` is the excess kurtosis :math:`m_4 / m_2^2 - 3` (Fisher, biased, as
    ``scipy.stats.kurtosis``), missing for constant intensities. An empty mask
    gives ``n = 0`` and every other entry missing (MRIQC writes zeros), the
    reason naming ``region``.
    """
    values = data[mask].to(torch.float64)
    n = int(values.numel())
    if n == 0:
        empty = Missing(f"{region} is empty")
        return {**dict.fromkeys(("mean", "median", "stdv", "mad", "k", "p05", "p95"), empty), "n": 0.0}
    mean = float(fixed_mean(values))
    squares = (values - mean) ** 2
    m2 = float(fixed_mean(squares))
    m4 = float(fixed_mean(squares * squares))  # not ``** 4``: its SIMD and scalar loops round differently
    centre = median(values)
    return {
        "mean": mean,
        "median": centre,
        "stdv": math.sqrt(m2),
        "mad": mad(values, centre),
        "k": m4 / m2**2 - 3.0 if m2 > 0 else Missing(f"constant intensities in {region}"),
        "p05": percentile(values, 5.0),
        "p95": percentile(values, 95.0),
        "n": float(n),
    }


def snr(mu_fg: float, sigma_fg: float, n: float) -> Measure:
    r"""Signal-to-noise ratio within one region.

    .. math:: \mathrm{SNR} = \frac{\mu_F}{\sigma_F \sqrt{n / (n - 1)}}
    """
    if n < 2:
        return Missing("fewer than 2 voxels in the region")
    if sigma_fg <= 0:
        return Missing("no intensity variation in the region")
    return float(mu_fg / (sigma_fg * math.sqrt(n / (n - 1))))


def efc(data: torch.Tensor, frame_mask: torch.Tensor | None = None) -> Measure:
    r"""Entropy focus criterion (Atkinson 1997), normalised by its maximum.

    .. math::
        E = -\sum_j \frac{x_j}{B} \ln\frac{x_j}{B},\quad B = \sqrt{\textstyle\sum_j x_j^2},\quad
        \mathrm{EFC} = \frac{E}{E_\max},\quad E_\max = \sqrt{N}\,\ln\sqrt{N}

    over the ``N`` voxels outside ``frame_mask`` (empty voxels added by a
    rotation or defacing). Negative intensities count as 0. Lower is better.
    """
    values = data if frame_mask is None else data[~frame_mask]
    values = values.reshape(-1).to(torch.float32).clamp_min(0.0)
    n = values.numel()
    energy = math.sqrt(float((values * values).sum(dtype=torch.float64)))
    if n < 2 or energy <= 0:
        return Missing("no signal in the image")
    efc_max = n * (1.0 / math.sqrt(n)) * math.log(1.0 / math.sqrt(n))
    ratio = values / energy
    return float((ratio * torch.log(ratio + 1e-16)).sum(dtype=torch.float64) / efc_max)


def fber(
    data: torch.Tensor, head_mask: torch.Tensor, frame_mask: torch.Tensor | None = None
) -> Measure:
    r"""Foreground-background energy ratio (Shehzad 2015), with MRIQC's medians.

    .. math:: \mathrm{FBER} = \frac{\mathrm{median}_{F}(|x|^2)}{\mathrm{median}_{B}(|x|^2)}

    ``F`` is the head mask, ``B`` everything else except ``frame_mask``.
    Missing when the background holds no energy (a skull-stripped or zero-filled
    image: the ratio is unbounded; MRIQC writes ``-1``). Higher is better.
    """
    background = ~head_mask if frame_mask is None else ~head_mask & ~frame_mask
    fg_values = data[head_mask].to(torch.float64)
    bg_values = data[background].to(torch.float64)
    if fg_values.numel() == 0:
        return Missing("empty head mask")
    if bg_values.numel() == 0:
        return Missing("no background voxels")
    bg_energy = median(bg_values**2)
    if bg_energy < 1e-3:
        return Missing("the background's median energy is zero (skull-stripped or zero-filled image)")
    return float(median(fg_values**2) / bg_energy)


def fwhm(
    data: torch.Tensor, mask: torch.Tensor, spacing: tuple[float, float, float]
) -> tuple[Measure, Measure, Measure]:
    r"""Smoothness along each axis in mm, from first differences (AFNI ``3dFWHMx`` classic).

    For a Gaussian-smoothed noise field the lag-1 autocorrelation along an axis is
    :math:`\rho = 1 - \sigma^2_{\Delta x} / (2\sigma^2_x)` and

    .. math:: \mathrm{FWHM} = h \sqrt{-2 \ln 2 / \ln \rho}

    with :math:`h` the voxel size, :math:`\sigma^2_x` the variance in ``mask``
    and :math:`\sigma^2_{\Delta x}` the variance of differences between
    neighbours both in ``mask``. Missing where undefined (:math:`\rho \notin (0, 1)`).
    """
    box = bounding_box(mask)
    values, inside = data[box].to(torch.float32), mask[box]
    n_inside = int(inside.sum())
    if n_inside < 2:
        empty = Missing("fewer than 2 voxels in the mask")
        return (empty, empty, empty)
    variance = _masked_variance(values, inside)
    result: list[Measure] = []
    for axis, step in enumerate(spacing):
        n = values.shape[axis]
        pair = inside.narrow(axis, 1, n - 1) & inside.narrow(axis, 0, n - 1)
        diffs = values.narrow(axis, 1, n - 1) - values.narrow(axis, 0, n - 1)
        rho = 1.0 - _masked_variance(diffs, pair) / (2.0 * variance) if variance > 0 else 0.0
        result.append(
            float(step) * math.sqrt(-2.0 * math.log(2.0) / math.log(rho))
            if 0.0 < rho < 1.0
            else Missing("no spatial autocorrelation to fit (constant or uncorrelated intensities)")
        )
    return (result[0], result[1], result[2])


def _masked_variance(values: torch.Tensor, mask: torch.Tensor) -> float:
    """Population variance of ``values`` where ``mask`` is set, with float64 accumulation (0 if < 2 voxels)."""
    selected = values[mask].to(torch.float64)
    return float(fixed_mean((selected - fixed_mean(selected)) ** 2)) if selected.numel() >= 2 else 0.0


def fwhm_voxels(
    fwhm_mm: tuple[Measure, Measure, Measure], spacing: tuple[float, float, float]
) -> dict[str, Measure]:
    """MRIQC's ``fwhm_x/y/z/avg``: the FWHM in voxels (mm over voxel size) and their mean."""
    per_axis: list[Measure] = [
        value if isinstance(value, Missing) else value / float(step)
        for value, step in zip(fwhm_mm, spacing, strict=True)
    ]
    gap = first_missing(*per_axis)
    defined = [value for value in per_axis if not isinstance(value, Missing)]
    average: Measure = gap if gap is not None else sum(defined) / 3.0
    return {
        "fwhm_x": per_axis[0],
        "fwhm_y": per_axis[1],
        "fwhm_z": per_axis[2],
        "fwhm_avg": average,
    }


def geometry(shape: tuple[int, ...], spacing: tuple[float, ...]) -> dict[str, float]:
    """``size_x/y/z`` (voxels) and ``spacing_x/y/z`` (mm) of a 3D grid."""
    axes = ("x", "y", "z")
    sizes = {f"size_{axis}": int(n) for axis, n in zip(axes, shape[:3], strict=True)}
    steps = {f"spacing_{axis}": float(s) for axis, s in zip(axes, spacing[:3], strict=True)}
    return {**sizes, **steps}
