"""CompCor noise components and the cosine high-pass basis (as nipype / fMRIPrep).

For a noise mask, voxel series (after the non-steady-state volumes) are
high-pass filtered by regressing out a constant and the DCT basis (cutoff
128 s), scaled to unit temporal sd, and decomposed by SVD ``M = U S V^T``
(time x voxels), here via the T x T Gram matrix. Components are the columns of ``U``, kept until their
cumulative variance ``cumsum(s^2) / sum(s^2)`` first reaches the threshold
(50 %). Non-steady-state rows are zero-padded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch

from neurolearn_cli.engine.reduce import serial
from neurolearn_cli.errors import ProcessingError


@dataclass(frozen=True)
class CompCorResult:
    """Retained components (T x k table), their metadata by column, and the rejected ones'."""

    components: pd.DataFrame
    metadata: dict[str, dict]
    dropped: list[dict]


def cosine_basis(n_volumes: int, repetition_time: float, cutoff_s: float = 128.0) -> torch.Tensor:
    """DCT-II drift regressors (n_volumes, K) with period above ``cutoff_s`` (as nilearn).

    ``K = floor(2 n TR / cutoff)``; column ``k`` is
    ``sqrt(2 / n) cos(pi k (t + 0.5) / n)``, ``k = 1..K``. No constant column.
    """
    order = int(math.floor(2.0 * n_volumes * repetition_time / cutoff_s))
    t = torch.arange(n_volumes, dtype=torch.float64) + 0.5
    k = torch.arange(1, order + 1, dtype=torch.float64)
    return math.sqrt(2.0 / n_volumes) * torch.cos(math.pi / n_volumes * t[:, None] * k[None, :])


def regress_out(series: torch.Tensor, regressors: torch.Tensor) -> torch.Tensor:
    """Residuals of ``series`` (T, V) after least squares on ``regressors`` (T, K) plus a constant.

    The projection onto the design's orthonormal basis (its QR), on one
    thread: LAPACK's least-squares solver gave other last bits from one call
    to the next and on another thread count, the small QR and two products
    do not.
    """
    design = torch.cat([torch.ones_like(series[:, :1]), regressors.to(series)], dim=1)
    with serial():
        basis, _ = torch.linalg.qr(design)
        return series - basis @ (basis.T @ series)


def high_pass(
    series: torch.Tensor, repetition_time: float, cutoff_s: float = 128.0
) -> torch.Tensor:
    """Remove the mean and cosine drifts (period > ``cutoff_s``) from ``series`` (T, V)."""
    basis = cosine_basis(series.shape[0], repetition_time, cutoff_s).to(series.device)
    return regress_out(series, basis)


def left_singular(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left singular vectors and singular values of a wide (T, V) matrix, largest first.

    From the small T x T Gram matrix ``G = M M^T = U S^2 U^T``: its own SVD
    (symmetric positive semi-definite, so the same ``U``) is far cheaper than
    one of M when V >> T. Each vector's sign is fixed so its largest-magnitude
    entry is positive, for identical output on any device. The product and
    the SVD run on one thread: BLAS splits the product's long inner sum, and
    LAPACK the factorization, by thread count.
    """
    with serial():
        gram = matrix @ matrix.T
        vectors, eigenvalues, _ = torch.linalg.svd(gram)
    peak = vectors.gather(0, vectors.abs().argmax(dim=0, keepdim=True))
    return vectors * torch.where(peak < 0, -1.0, 1.0).to(vectors.dtype), eigenvalues.sqrt()


def tcompcor_mask(
    bold: torch.Tensor,
    brain_mask: torch.Tensor,
    repetition_time: float,
    fraction: float = 0.02,
    skip: int = 0,
    cutoff_s: float = 128.0,
) -> torch.Tensor:
    """Voxels of the brain mask whose high-passed temporal sd lies in the top ``fraction``."""
    mask = brain_mask.bool()
    series = high_pass(bold[mask][:, skip:].to(torch.float64).T, repetition_time, cutoff_s)
    sd = series.std(dim=0)
    n_keep = max(1, int(round(fraction * sd.numel())))
    threshold = sd.sort(descending=True).values[n_keep - 1]
    out = torch.zeros_like(mask)
    out[mask] = sd >= threshold
    return out


def compcor(
    bold: torch.Tensor,
    mask: torch.Tensor,
    repetition_time: float,
    *,
    prefix: str,
    method: str,
    mask_name: str | None = None,
    skip: int = 0,
    variance_threshold: float = 0.5,
    cutoff_s: float = 128.0,
) -> CompCorResult:
    """Noise components of ``bold`` (X, Y, Z, T) within ``mask`` (X, Y, Z).

    Columns are ``{prefix}NN``; metadata per component (retained or not) holds
    Method, Mask, SingularValue, VarianceExplained, CumulativeVarianceExplained,
    Retained. Rejected components are listed apart: fMRIPrep keys them
    ``dropped_N`` across all CompCor runs of a table.
    """
    series = bold[mask.bool()][:, skip:].to(torch.float64).T
    if series.shape[1] < 2 or series.shape[0] < 3:
        raise ProcessingError(
            f"{method}: mask {mask_name or prefix} has too few voxels or volumes for CompCor"
        )
    series = high_pass(series, repetition_time, cutoff_s)
    sd = series.std(dim=0)
    series = series / torch.where(sd > 0, sd, torch.ones_like(sd))
    u, s = left_singular(series)
    variance = s**2 / (s**2).sum()
    cumulative = variance.cumsum(0)
    n_keep = min(int((cumulative < variance_threshold).sum()) + 1, int(s.numel()))
    padded = torch.cat([torch.zeros(skip, n_keep, dtype=u.dtype, device=u.device), u[:, :n_keep]])
    names = [f"{prefix}{i:02d}" for i in range(n_keep)]
    table = pd.DataFrame(padded.cpu().numpy(), columns=names)
    entries = []
    for i, (sv, ve, cve) in enumerate(
        zip(s.tolist(), variance.tolist(), cumulative.tolist(), strict=True)
    ):
        entry = {
            "Method": method,
            "SingularValue": sv,
            "VarianceExplained": ve,
            "CumulativeVarianceExplained": cve,
            "Retained": i < n_keep,
        }
        if mask_name is not None:
            entry["Mask"] = mask_name
        entries.append(entry)
    return CompCorResult(table, dict(zip(names, entries[:n_keep], strict=True)), entries[n_keep:])
