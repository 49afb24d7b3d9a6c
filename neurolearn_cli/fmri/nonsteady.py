"""Non-steady-state (dummy) volume detection, as fMRIPrep / niworkflows.

The first volumes of a BOLD run, acquired before the longitudinal
magnetisation reaches steady state, are brighter than the rest. niworkflows
counts them as the initial run of outliers of the global signal (mean over all
voxels) of the first 50 volumes, with the modified z-score of Iglewicz and
Hoaglin: ``z_t = 0.6745 |g_t - median(g)| / MAD`` and ``z_t > 3.5`` an outlier.
"""

from __future__ import annotations

import torch

_WINDOW = 50
_THRESHOLD = 3.5


def count_initial_outliers(signal: torch.Tensor, threshold: float = _THRESHOLD) -> int:
    """Number of leading samples of a 1D ``signal`` whose modified z-score exceeds ``threshold``.

    ``z_t = 0.6745 |s_t - median(s)| / median(|s - median(s)|)``; counting stops at
    the first sample that is not an outlier. A constant signal has no outliers.
    """
    signal = signal.to(torch.float64)
    deviation = (signal - signal.median()).abs()
    mad = deviation.median()
    if float(mad) == 0.0:
        return int(torch.cumprod((deviation > 0).to(torch.int64), 0).sum())
    z = 0.6745 * deviation / mad
    return int(torch.cumprod((z > threshold).to(torch.int64), 0).sum())


def detect_nonsteady(bold: torch.Tensor, dummy_scans: int | None = None) -> int:
    """Count the non-steady-state volumes at the start of a 4D BOLD series (X, Y, Z, T).

    Parameters
    ----------
    bold : Tensor
        The BOLD series, float, on any device.
    dummy_scans : int, optional
        The user's ``--dummy-scans``: when given it is returned as is (after
        checking it leaves at least one volume), as fMRIPrep does.

    Returns
    -------
    int
        Number of initial volumes to treat as non-steady-state.
    """
    if bold.dim() != 4:
        raise ValueError(f"BOLD series must be 4D, got shape {tuple(bold.shape)}")
    n_volumes = int(bold.shape[3])
    if dummy_scans is not None:
        if not 0 <= dummy_scans < n_volumes:
            raise ValueError(f"dummy_scans {dummy_scans} must lie in [0, {n_volumes - 1}]")
        return int(dummy_scans)
    global_signal = bold[..., :_WINDOW].mean(dim=(0, 1, 2))
    return count_initial_outliers(global_signal)
