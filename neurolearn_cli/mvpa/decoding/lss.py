"""Least-squares-separate (LSS) estimates of each sample's response, vectorised in torch.

LSS (Mumford et al. 2012): for sample ``i`` a GLM holds its own regressor,
one regressor for all the other samples, and the nuisance regressors
(confounds, cosine drifts, intercept). The estimate of sample ``i`` at every
voxel is the first row of that design's pseudo-inverse applied to the data,
so all voxels share one ``N x T`` weight matrix and the fit is a single
matrix product.

The other samples share one regressor whatever their condition: with one
regressor per condition ("LSS-N") each estimate would carry the noise of
the other samples of its own condition with a negative sign, so the labels
would leak into the estimates (held-out samples then decode below chance)
and shuffling labels after estimation would not give a valid null.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def design_columns(samples: pd.DataFrame, frame_times: np.ndarray, nuisance: np.ndarray, *,
                   hrf: str, high_pass: float) -> tuple[np.ndarray, np.ndarray]:
    """HRF-convolved regressors of each sample (``T x N``) and the nuisance block (``T x Q``).

    The nuisance block is the given confounds, cosine drifts up to
    ``high_pass`` Hz and the intercept (nilearn's first-level design).
    """
    from nilearn.glm.first_level import make_first_level_design_matrix

    width = len(str(len(samples)))
    names = [f"sample{i:0{width}d}" for i in range(len(samples))]
    events = pd.DataFrame({"onset": samples["onset"].to_numpy(float), "duration": samples["duration"].to_numpy(float),
                           "trial_type": names})
    regressor_names = [f"nuisance{j}" for j in range(nuisance.shape[1])]
    design = make_first_level_design_matrix(frame_times, events, hrf_model=hrf, drift_model="cosine",
                                            high_pass=high_pass, add_regs=nuisance if regressor_names else None,
                                            add_reg_names=regressor_names or None)
    return design[names].to_numpy(float), design.drop(columns=names).to_numpy(float)


def lss_weights(regressors: torch.Tensor, nuisance: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """``N x T`` weights whose product with the data gives each sample's LSS estimate.

    Parameters
    ----------
    regressors : Tensor
        ``T x N`` convolved regressor of each sample.
    nuisance : Tensor
        ``T x Q`` regressors of no interest (with the intercept).
    chunk : int
        Samples whose designs are inverted together (bounds memory).
    """
    total = regressors.sum(dim=1)
    rows = []
    for start in range(0, regressors.shape[1], chunk):
        own = regressors[:, start:start + chunk].T
        design = torch.cat([own[:, :, None], (total[None] - own)[:, :, None],
                            nuisance.expand(own.shape[0], *nuisance.shape)], dim=2)
        rows.append(torch.linalg.pinv(design)[:, 0, :])
    return torch.cat(rows)


def percent_signal_change(data: torch.Tensor) -> torch.Tensor:
    """``T x V`` data as percent change from each voxel's mean (0 where the mean is not positive)."""
    mean = data.mean(dim=0, keepdim=True)
    scaled = 100.0 * (data / mean.clamp(min=torch.finfo(data.dtype).tiny) - 1.0)
    return torch.where(mean > 0, scaled, torch.zeros_like(scaled))


def lss_estimates(data: torch.Tensor, regressors: np.ndarray, nuisance: np.ndarray) -> torch.Tensor:
    """``N x V`` LSS estimates (percent signal change) of each sample at each voxel of ``T x V`` data.

    The designs are inverted in float64; the data stay in their dtype on their device.
    """
    device = data.device
    weights = lss_weights(torch.tensor(regressors, dtype=torch.float64, device=device),
                          torch.tensor(nuisance, dtype=torch.float64, device=device))
    return weights.to(data.dtype) @ percent_signal_change(data)
