"""DVARS and standardized DVARS (Nichols' ComputeDVARS, as nipype / fMRIPrep).

Within the brain mask, the series is scaled so its grand median is 1000. Then
``dvars_t = sqrt(mean_v (x_{v,t} - x_{v,t-1})^2)`` and the standardized value
divides it by its expectation under temporal independence given each voxel's
lag-1 autocorrelation ``rho_v`` and robust sd ``s_v = IQR_v / 1.349``:
``E = mean_v s_v sqrt(2 (1 - rho_v))``. Voxels with zero robust sd are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neurolearn_cli.engine.reduce import fixed_mean

_SCALE = 1000.0
_IQR_TO_SD = 1.349
_VARIANCE_TOL = 1e-7


@dataclass(frozen=True)
class Dvars:
    """DVARS (T,) and standardized DVARS (T,); the first value of each is NaN."""

    dvars: torch.Tensor
    std_dvars: torch.Tensor


def _lower_quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """Quantile along the last axis with "lower" interpolation (as FSL / nipype)."""
    n = values.shape[-1]
    index = int(q * (n - 1))
    return values.sort(dim=-1).values[..., index]


def lag1_autocorrelation(series: torch.Tensor) -> torch.Tensor:
    """Yule-Walker lag-1 autocorrelation of demeaned rows: ``sum x_t x_{t+1} / sum x_t^2``."""
    centred = series - series.mean(dim=-1, keepdim=True)
    energy = (centred * centred).sum(dim=-1)
    lagged = (centred[..., 1:] * centred[..., :-1]).sum(dim=-1)
    return lagged / torch.where(energy > 0, energy, torch.ones_like(energy))


def compute_dvars(bold: torch.Tensor, mask: torch.Tensor) -> Dvars:
    """DVARS of a 4D series (X, Y, Z, T) inside a boolean brain mask (X, Y, Z)."""
    series = bold[mask.bool()].to(torch.float64)
    series = series / series.median() * _SCALE
    robust_sd = (_lower_quantile(series, 0.75) - _lower_quantile(series, 0.25)) / _IQR_TO_SD
    keep = robust_sd > _VARIANCE_TOL
    series, robust_sd = series[keep], robust_sd[keep]
    rho = lag1_autocorrelation(series)
    expected = fixed_mean(robust_sd * torch.sqrt(2.0 * (1.0 - rho)))
    dvars = torch.sqrt((series.diff(dim=-1) ** 2).mean(dim=0))
    nan = torch.full((1,), float("nan"), dtype=torch.float64, device=bold.device)
    return Dvars(torch.cat([nan, dvars]), torch.cat([nan, dvars / expected]))
