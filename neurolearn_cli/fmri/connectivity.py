"""ROI time series, denoising and functional connectivity (XCP-D's outputs).

Parcel time series are voxel means within each label of an atlas on the BOLD
grid (one ``index_add`` over all voxels). They are denoised by regressing the
chosen confounds together with detrending and a high-pass filter
(``nilearn.signal.clean``), with high-motion volumes censored, then z-scored.
Connectivity is Pearson's ``r`` and the partial correlation from the
Ledoit-Wolf shrunk precision ``P``: ``pcorr_ij = -P_ij / sqrt(P_ii P_jj)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from nilearn.signal import clean
from sklearn.covariance import LedoitWolf

_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_EXPANSIONS = ("", "_derivative1", "_power2", "_derivative1_power2")
_STRATEGIES = {
    "motion": [c + e for c in _MOTION for e in _EXPANSIONS],
    "wm_csf": [c + e for c in ("csf", "white_matter") for e in _EXPANSIONS],
    "global_signal": ["global_signal" + e for e in _EXPANSIONS],
}
_PREFIXES = {"compcor": "a_comp_cor_", "high_pass": "cosine"}


@dataclass(frozen=True)
class Connectivity:
    """Denoised parcel time series (T kept x P) and the P x P correlation matrices."""

    timeseries: pd.DataFrame
    pearson: pd.DataFrame
    partial: pd.DataFrame


def parcel_means(
    bold: torch.Tensor, labels: torch.Tensor, label_values: Sequence[int]
) -> torch.Tensor:
    """Mean series (T, P) of ``bold`` (X, Y, Z, T) within each label of ``labels`` (X, Y, Z).

    A parcel with no voxel on the BOLD grid gives a NaN column.
    """
    values = torch.as_tensor(list(label_values), dtype=torch.int64, device=bold.device)
    flat = labels.to(torch.int64).reshape(-1)
    lookup = torch.full(
        (int(max(int(flat.max()), int(values.max()))) + 1,),
        -1,
        dtype=torch.int64,
        device=bold.device,
    )
    lookup[values] = torch.arange(values.numel(), device=bold.device)
    index = lookup[flat.clamp(min=0)]
    keep = (flat >= 0) & (index >= 0)
    series = bold.reshape(-1, bold.shape[-1])[keep].to(torch.float64)
    sums = torch.zeros(values.numel(), bold.shape[-1], dtype=torch.float64, device=bold.device)
    sums.index_add_(0, index[keep], series)
    counts = torch.bincount(index[keep], minlength=values.numel()).to(torch.float64)
    return (sums / counts[:, None]).T.to(torch.float32)


def select_confounds(
    table: pd.DataFrame, strategy: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Confound columns for ``strategy`` and the kept volumes (nilearn ``load_confounds`` naming).

    Strategies: ``motion`` (24 parameters), ``wm_csf`` (8), ``global_signal``
    (4), ``compcor`` (``a_comp_cor_*``), ``high_pass`` (``cosine*``) and
    ``scrub`` (drop ``motion_outlier*`` volumes). Non-steady-state volumes are
    always dropped. First-row NaN derivatives become 0.
    """
    unknown = set(strategy) - set(_STRATEGIES) - set(_PREFIXES) - {"scrub"}
    if unknown:
        raise ValueError(f"unknown confound strategy {sorted(unknown)}")
    columns = [c for s in strategy if s in _STRATEGIES for c in _STRATEGIES[s]]
    columns += [
        c for s in strategy if s in _PREFIXES for c in table.columns if c.startswith(_PREFIXES[s])
    ]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"confounds table lacks columns {missing[:4]}")
    spikes = [c for c in table.columns if c.startswith("non_steady_state_outlier")]
    if "scrub" in strategy:
        spikes += [c for c in table.columns if c.startswith("motion_outlier")]
    censored = (
        table[spikes].sum(axis=1).to_numpy() > 0 if spikes else np.zeros(len(table), dtype=bool)
    )
    return table[columns].fillna(0.0), np.flatnonzero(~censored)


#: Fewest residual degrees of freedom (kept volumes less confounds, mean and trend) for connectivity:
#: below it the cleaned parcel series are mostly fitted noise, or constant when the confounds outnumber
#: the volumes.
MIN_RESIDUAL_DOF = 10


def residual_dof(n_volumes: int, n_confounds: int) -> int:
    """Degrees of freedom left in each parcel series after regressing the confounds, the mean and a linear trend."""
    return n_volumes - n_confounds - 2


def connectivity(
    timeseries: torch.Tensor,
    names: Sequence[str],
    confounds: pd.DataFrame,
    sample_mask: np.ndarray,
    repetition_time: float,
    *,
    high_pass_hz: float | None = 0.008,
) -> Connectivity:
    """Denoise parcel series (T, P) and correlate them.

    ``confounds`` (T rows) are regressed with a linear detrend and, unless the
    cosine regressors are among them or ``high_pass_hz`` is None, a
    Butterworth high-pass; only the ``sample_mask`` volumes are kept.
    """
    if confounds.shape[0] != timeseries.shape[0]:
        raise ValueError(f"confounds have {confounds.shape[0]} rows, time series {timeseries.shape[0]}")
    data = timeseries.detach().cpu().numpy().astype(np.float64)
    has_cosine = any(c.startswith("cosine") for c in confounds.columns)
    cleaned = clean(
        data,
        detrend=True,
        standardize="zscore_sample",
        confounds=confounds.to_numpy() if confounds.shape[1] else None,
        high_pass=None if has_cosine else high_pass_hz,
        t_r=repetition_time,
        sample_mask=sample_mask,
    )
    frame = pd.DataFrame(cleaned, columns=list(names))
    pearson = np.corrcoef(cleaned, rowvar=False)
    precision = LedoitWolf().fit(cleaned).precision_
    scale = np.sqrt(np.diag(precision))
    partial = -precision / np.outer(scale, scale)
    np.fill_diagonal(partial, 1.0)
    index = pd.Index(list(names), name="Node")
    return Connectivity(
        frame,
        pd.DataFrame(pearson, index=index, columns=list(names)),
        pd.DataFrame(partial, index=index, columns=list(names)),
    )
