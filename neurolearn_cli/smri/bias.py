"""A smooth log-domain bias field on a separable 3D DCT basis.

The log bias ``beta(x, y, z) = sum_{a,c,e} C[a, c, e] Bx[x, a] By[y, c] Bz[z, e]``
uses cosine bases ``B[i, k] = cos(pi k (2 i + 1) / (2 n))`` along each voxel
axis (SPM's choice). The constant term is pinned to zero (the tissue means
carry the global scale). Fitting solves the penalised weighted least squares
problem ``min_C sum W (t - beta)^2 + C^T P C`` with separable contractions, so
no basis matrix of size voxels x coefficients is ever built.
"""

from __future__ import annotations

import math

import torch

from neurolearn_cli.engine.reduce import serial


def basis_orders(shape: tuple[int, int, int], spacing: tuple[float, float, float], fwhm_mm: float) -> tuple[int, int, int]:
    """Number of cosines per axis so the shortest half-period is about ``fwhm_mm``."""
    x, y, z = (max(2, int(math.ceil(2.0 * n * s / fwhm_mm)) + 1) for n, s in zip(shape, spacing, strict=True))
    return x, y, z


def dct_matrix(n: int, order: int, positions: torch.Tensor) -> torch.Tensor:
    """Cosine basis (len(positions), order) on an axis of ``n`` voxels, at voxel ``positions``."""
    k = torch.arange(order, dtype=torch.float64, device=positions.device)
    return torch.cos(math.pi * k[None, :] * (2.0 * positions.to(torch.float64)[:, None] + 1.0) / (2.0 * n))


def bending_penalty(orders: tuple[int, int, int], spacing_extent_mm: tuple[float, float, float], strength: float) -> torch.Tensor:
    """Diagonal penalty (Kx, Ky, Kz) growing as the squared Laplacian of each mode.

    Mode ``(a, c, e)`` has spatial frequencies ``pi a / Lx`` etc. (``L`` the
    field of view in mm); the penalty is ``strength * (|w|^2 * 100^2 / pi^2)^2``,
    i.e. unit strength costs 1 for a mode with a 100 mm wavelength. The constant
    mode gets a prohibitive penalty so it stays zero.
    """
    freqs = [torch.arange(k, dtype=torch.float64) * math.pi / length for k, length in zip(orders, spacing_extent_mm, strict=True)]
    w2 = freqs[0][:, None, None] ** 2 + freqs[1][None, :, None] ** 2 + freqs[2][None, None, :] ** 2
    penalty = strength * (w2 * (100.0 / math.pi) ** 2) ** 2
    penalty[0, 0, 0] = 1e12
    return penalty


def fit(
    weights: torch.Tensor,
    targets: torch.Tensor,
    bases: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    penalty: torch.Tensor,
) -> torch.Tensor:
    """Coefficients (Kx, Ky, Kz) minimising ``sum W (t - beta)^2 + sum P C^2``.

    Parameters
    ----------
    weights, targets : Tensor
        (X, Y, Z) voxel weights (0 outside the fitted region) and log-domain targets.
    bases : tuple of Tensor
        Per-axis cosine matrices (X, Kx), (Y, Ky), (Z, Kz) from :func:`dct_matrix`.
    penalty : Tensor
        (Kx, Ky, Kz) diagonal penalty from :func:`bending_penalty`.
    """
    bx, by, bz = bases
    w = weights.to(torch.float64)
    wt = w * targets.to(torch.float64)
    with serial():  # the products and LAPACK's solve split their sums by thread count
        t1 = torch.einsum("xa,xb,xyz->abyz", bx, bx, w)
        t2 = torch.einsum("abyz,yc,yd->abcdz", t1, by, by)
        a = torch.einsum("abcdz,ze,zf->acebdf", t2, bz, bz)
        size = penalty.numel()
        lhs = a.reshape(size, size) + torch.diag(penalty.reshape(-1).to(a.device))
        rhs = torch.einsum("xyz,xa,yc,ze->ace", wt, bx, by, bz).reshape(-1)
        coeffs = torch.linalg.solve(lhs, rhs)
    return coeffs.reshape(penalty.shape)


def evaluate(coeffs: torch.Tensor, bases: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The log bias (X, Y, Z) of ``coeffs`` on the grid of ``bases`` (float32).

    On one thread: the batched products' last bits depend on the thread count.
    """
    bx, by, bz = bases
    with serial():
        field = torch.einsum("ace,xa->xce", coeffs, bx)
        field = torch.einsum("xce,yc->xye", field, by)
        return torch.einsum("xye,ze->xyz", field, bz).to(torch.float32)
