"""BOLD image-quality metrics with MRIQC's names and definitions.

Inputs are tensors on one device: the 4D series (X, Y, Z, T), preferably after
head-motion correction, and a bool brain mask (X, Y, Z); plus the framewise
displacement values, the number of non-steady-state volumes and the TR.
:func:`functional_iqms` returns the flat dictionary MRIQC writes to
``sub-<label>_task-<task>_bold.json``. Temporal measures use the volumes after
the non-steady-state ones; spatial measures use their temporal mean. The
``summary_fg_*``/``summary_bg_*`` regions are the mask and its complement,
each eroded once, as MRIQC.

Differences from MRIQC:

- ``aor`` and ``aqi`` reimplement AFNI's ``3dToutcount`` (``-fraction``,
  ``-polort 0``) and ``3dTqual`` in torch, within the given brain mask where
  AFNI's tools use an automask / clip level.
- ``gsr_x``/``gsr_y`` shift the mask by ``N // 2`` with a circular roll (MRIQC
  slices the two halves, the same for even ``N``).
- ``fwhm_*`` as :mod:`~neurolearn_cli.qc.measures` (first-difference estimator on
  the mean EPI, in voxels as MRIQC reports them).
- The qc stage passes the raw series (MRIQC: its head-motion-corrected series
  for ``tsnr``, ``dvars_*`` and ``gcor``), so that the IQMs exist without the
  fmri stage, which keeps no native-space corrected series on disk; motion
  lowers ``tsnr`` and raises ``dvars_*`` a little more than in MRIQC. Its brain
  mask is an Otsu intensity mask of the temporal median (MRIQC: a
  skull-stripped mean EPI).
- ``summary_*`` use the mask and its complement eroded once, as MRIQC up to
  23.x; MRIQC 24 summarises the uneroded regions (``summary_bg_*`` then takes
  in the air next to the head).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch

from neurolearn_cli.engine.morphology import erode
from neurolearn_cli.fmri.dvars import compute_dvars, lag1_autocorrelation
from neurolearn_cli.qc.measures import (
    Measure,
    Missing,
    efc,
    fber,
    fwhm,
    fwhm_voxels,
    geometry,
    median,
    on_defined,
    snr,
    summary_stats,
)

FD_THRESHOLD_MM = 0.2  # MRIQC's default --fd_thres


def _time_median(series: torch.Tensor) -> torch.Tensor:
    """Median along the last axis, averaging the two central values for even lengths."""
    ordered = series.sort(dim=-1).values
    n = series.shape[-1]
    return 0.5 * (ordered[..., (n - 1) // 2] + ordered[..., n // 2])


def tsnr(bold: torch.Tensor, mask: torch.Tensor) -> float:
    r"""MRIQC's ``tsnr``: the median over mask voxels of :math:`\bar x_v / \sigma_v`.

    :math:`\sigma_v` is the population sd over time; voxels with
    :math:`\sigma_v \le 10^{-3}` count as 0, as nipype's ``TSNR``.
    """
    series = bold[mask].to(torch.float64)
    mean = series.mean(dim=-1)
    sd = series.std(dim=-1, unbiased=False)
    return median(torch.where(sd > 1e-3, mean / sd.clamp_min(1e-3), torch.zeros_like(mean)))


def voxelwise_std_dvars(bold: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r"""Voxel-wise standardised DVARS (T - 1,): :math:`\sqrt{\mathrm{mean}_v (\Delta x_{v,t} / \hat s_v)^2}`.

    :math:`\hat s_v = \sqrt{2(1-\rho_v)}\,\mathrm{IQR}_v / 1.349` is the expected
    sd of voxel ``v``'s temporal difference (lag-1 autocorrelation :math:`\rho_v`);
    the series is scaled to grand median 1000 and voxels with :math:`\hat s_v = 0`
    are dropped, as nipype's ``compute_dvars``.
    """
    series = bold[mask].to(torch.float64)
    series = series / series.median() * 1000.0
    ordered = series.sort(dim=-1).values
    n = series.shape[-1]
    robust_sd = (ordered[:, int(0.75 * (n - 1))] - ordered[:, int(0.25 * (n - 1))]) / 1.349
    expected = torch.sqrt(2.0 * (1.0 - lag1_autocorrelation(series))) * robust_sd
    keep = expected > 0
    standardised = series[keep].diff(dim=-1) / expected[keep, None]
    return torch.sqrt((standardised**2).mean(dim=0))


def fd_stats(fd: np.ndarray, threshold: float = FD_THRESHOLD_MM) -> dict[str, Measure]:
    r"""``fd_mean``, ``fd_num`` (FD > ``threshold`` mm) and ``fd_perc``.

    ``fd`` holds the framewise displacements between consecutive volumes (NaN
    entries, such as the undefined first one, are dropped); as MRIQC,
    :math:`\mathrm{fd\_perc} = 100\, \mathrm{fd\_num} / (n + 1)` with ``n`` displacements.
    All three are missing when there is no displacement.
    """
    values = np.asarray(fd, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return dict.fromkeys(("fd_mean", "fd_num", "fd_perc"), Missing("no framewise displacement values"))
    count = int((values > threshold).sum())
    return {
        "fd_mean": float(values.mean()),
        "fd_num": count,
        "fd_perc": float(count * 100.0 / (values.size + 1)),
    }


def gcor(bold: torch.Tensor, mask: torch.Tensor) -> Measure:
    r"""Global correlation (AFNI ``@compute_gcor``): mean of all pairwise voxel correlations.

    With :math:`z_v` the z-scored series of voxel ``v`` (zero-variance voxels
    dropped) and :math:`\bar z = \mathrm{mean}_v z_v`:
    :math:`\mathrm{GCOR} = \bar z^\top \bar z / T`.
    """
    series = bold[mask].to(torch.float64)
    sd = series.std(dim=-1, unbiased=False)
    series = series[sd > 0]
    if series.shape[0] == 0:
        return Missing("no voxel varies over time")
    z = (series - series.mean(dim=-1, keepdim=True)) / series.std(
        dim=-1, unbiased=False, keepdim=True
    )
    average = z.mean(dim=0)
    return float(average @ average / average.numel())


def gsr(mean_epi: torch.Tensor, mask: torch.Tensor, axis: int) -> Measure:
    r"""Ghost-to-signal ratio along voxel ``axis`` (Giannelli 2010), lower is better.

    The Nyquist ghost region ``G`` is the mask shifted by half the field of view
    along ``axis``, minus the mask ``M``; ``B`` is the rest of the background:

    .. math:: \mathrm{GSR} = \frac{\mathrm{mean}_G(x) - \mathrm{mean}_B(x)}{\mathrm{median}_M(x)}

    (the median in the denominator, as MRIQC's ``gsr``).
    """
    ghost = torch.roll(mask, shifts=mask.shape[axis] // 2, dims=axis) & ~mask
    background = ~mask & ~ghost
    if not (bool(ghost.any()) and bool(background.any()) and bool(mask.any())):
        return Missing("no ghost or background region outside the mask along this axis")
    data = mean_epi.to(torch.float64)
    return (float(data[ghost].mean()) - float(data[background].mean())) / median(data[mask])


def outlier_fraction(bold: torch.Tensor, mask: torch.Tensor, qthr: float = 0.001) -> torch.Tensor:
    r"""Fraction of mask voxels that are outliers in each volume (AFNI ``3dToutcount -fraction``).

    Voxel ``v`` is an outlier at time ``t`` when
    :math:`|x_{v,t} - \tilde x_v| > \alpha\, \mathrm{MAD}_v`, with
    :math:`\alpha = \Phi^{-1}(1 - q/T) \sqrt{\pi/2}` and ``q = qthr``
    (:math:`\tilde x_v` the temporal median, MAD unnormalised).
    """
    series = bold[mask].to(torch.float64)
    n_volumes = series.shape[-1]
    deviation = (series - _time_median(series)[:, None]).abs()
    alpha = NormalDist().inv_cdf(1.0 - qthr / n_volumes) * math.sqrt(math.pi / 2.0)
    outliers = deviation > alpha * _time_median(deviation)[:, None]
    return outliers.to(torch.float64).mean(dim=0)


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks (0 .. n-1) along the last axis (ties broken by position): one sort, then a scatter."""
    order = values.argsort(dim=-1, stable=True)
    positions = torch.arange(values.shape[-1], dtype=torch.float64, device=values.device)
    ranks = torch.empty(values.shape, dtype=torch.float64, device=values.device)
    return ranks.scatter_(-1, order, positions.expand(values.shape))


def quality_index(bold: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r"""AFNI ``3dTqual``'s index per volume: :math:`1 - \rho_S(x_t, \tilde x)`.

    :math:`\rho_S` is Spearman's correlation over mask voxels between volume ``t``
    and the voxel-wise temporal median volume :math:`\tilde x`; lower is better.
    """
    series = bold[mask].to(torch.float64)
    reference = _ranks(_time_median(series))
    ranks = _ranks(series.T.contiguous())
    reference = reference - reference.mean()
    ranks = ranks - ranks.mean(dim=-1, keepdim=True)
    rho = (ranks @ reference) / (ranks.norm(dim=-1) * reference.norm()).clamp_min(1e-12)
    return 1.0 - rho


def functional_iqms(
    bold: torch.Tensor,
    mask: torch.Tensor,
    spacing: tuple[float, float, float],
    repetition_time: float,
    fd: np.ndarray,
    dummy_trs: int = 0,
    fd_threshold: float = FD_THRESHOLD_MM,
) -> dict[str, Measure]:
    """All BOLD IQMs as MRIQC's flat dictionary (``tsnr``, ``dvars_std``, ``gsr_y``, ...).

    Parameters
    ----------
    bold : Tensor
        4D series (X, Y, Z, T), float.
    mask : Tensor
        3D bool brain mask.
    spacing : tuple of float
        Voxel sizes in mm.
    repetition_time : float
        TR in seconds (``spacing_tr``).
    fd : ndarray
        Framewise displacement per volume transition (NaN entries dropped).
    dummy_trs : int
        Leading non-steady-state volumes; excluded from every measure.
    fd_threshold : float
        FD threshold in mm for ``fd_num``/``fd_perc``.
    """
    series = bold[..., dummy_trs:].contiguous()  # readers may hand over Fortran-ordered views
    mean_epi = series.mean(dim=-1)
    stats = {
        "fg": summary_stats(mean_epi, erode(mask, 1), "the eroded brain mask"),
        "bg": summary_stats(mean_epi, erode(~mask, 1), "the eroded background"),
    }
    iqms: dict[str, Measure] = {
        f"summary_{region}_{key}": value
        for region, summary in stats.items()
        for key, value in summary.items()
    }
    dvars = compute_dvars(series, mask)
    iqms.update(
        {
            "dvars_nstd": float(dvars.dvars[1:].mean()),
            "dvars_std": float(dvars.std_dvars[1:].mean()),
            "dvars_vstd": float(voxelwise_std_dvars(series, mask).mean()),
            "tsnr": tsnr(series, mask),
            "gcor": gcor(series, mask),
            "aor": float(outlier_fraction(series, mask).mean()),
            "aqi": float(quality_index(series, mask).mean()),
            "gsr_x": gsr(mean_epi, mask, 0),
            "gsr_y": gsr(mean_epi, mask, 1),
            "snr": on_defined(snr, stats["fg"]["median"], stats["fg"]["stdv"], stats["fg"]["n"]),
            "efc": efc(mean_epi),
            "fber": fber(mean_epi, mask),
            "dummy_trs": int(dummy_trs),
            "size_t": int(bold.shape[-1]),
            "spacing_tr": float(repetition_time),
        }
    )
    iqms.update(fd_stats(fd, fd_threshold))
    iqms.update(fwhm_voxels(fwhm(mean_epi, mask, spacing), spacing))
    iqms.update(geometry(tuple(bold.shape[:3]), spacing))
    return iqms
