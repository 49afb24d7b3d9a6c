"""Cubic B-spline interpolation in torch: exact prefilter, then 8 trilinear taps.

The prefilter turns samples into B-spline coefficients so that the spline
interpolates the samples exactly, with the whole-sample mirror boundary that
ITK and scipy use (s[-k] = s[k]). Evaluation uses the identity that a cubic
B-spline sample is a weighted sum of 8 trilinear samples (all B-spline weights
are positive), so it runs on ``grid_sample``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neurolearn_cli.engine._sampling import inside_mask

_PAD = 2


def _mirror_indices(n: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Indices of a whole-sample mirror extension (s[-k] = s[k]) of an axis of length ``n``."""
    idx = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx >= n, period - idx, idx)


def _prefilter_matrix(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Exact (n, n) inverse of the sampled cubic B-spline (1/6, 4/6, 1/6) on a mirrored axis."""
    basis = torch.zeros(n, n, dtype=torch.float64)
    rows = torch.arange(n)
    neighbours = _mirror_indices(n, 1, 1, torch.device("cpu"))
    basis[rows, rows] += 4.0 / 6.0
    basis[rows, neighbours[:-2]] += 1.0 / 6.0
    basis[rows, neighbours[2:]] += 1.0 / 6.0
    return torch.linalg.inv(basis).to(device=device, dtype=dtype)


def prefilter(volumes: torch.Tensor) -> torch.Tensor:
    """B-spline coefficients of ``volumes`` (N, C, X, Y, Z), mirror boundary, same shape.

    Solves the interpolation condition exactly, one axis at a time, as a
    matrix product with the inverse of the sampled-kernel matrix (fast BLAS;
    n^2 memory for an axis of n voxels).
    """
    coeffs = volumes.contiguous()
    for axis in (2, 3, 4):
        n = coeffs.shape[axis]
        inverse = _prefilter_matrix(n, volumes.dtype, volumes.device)
        if axis == 4:
            coeffs = coeffs.reshape(-1, n) @ inverse.T
        else:
            coeffs = inverse @ coeffs.reshape(-1, n, math.prod(volumes.shape[axis + 1 :]))
        coeffs = coeffs.reshape(volumes.shape)
    return coeffs


def sample_bspline(coeffs: torch.Tensor, voxel: torch.Tensor, *, fill: float = 0.0) -> torch.Tensor:
    """Evaluate the cubic spline with coefficients (N, C, X, Y, Z) at ``voxel`` (N, X', Y', Z', 3)."""
    shape = tuple(int(n) for n in coeffs.shape[2:])
    padded = coeffs
    for axis, n in zip((2, 3, 4), shape, strict=True):
        padded = padded.index_select(axis, _mirror_indices(n, _PAD, _PAD, coeffs.device))
    voxel = voxel.to(coeffs.dtype)
    base = torch.floor(voxel)
    t = voxel - base
    t2, t3 = t * t, t * t * t
    w1 = (3 * t3 - 6 * t2 + 4) / 6
    w3 = t3 / 6
    first = (1 - t) ** 3 / 6 + w1  # weights of taps -1 and 0; taps +1 and +2 weigh the rest
    g = (first, 1 - first)
    # Positions of the two trilinear taps per axis, as grid_sample's normalised coordinates
    # (align_corners=True on the padded volume), listed in grid_sample's reversed axis order.
    scale = 2.0 / (torch.tensor(padded.shape[2:], dtype=coeffs.dtype, device=coeffs.device) - 1)
    taps = (
        ((base + (_PAD - 1)) + w1 / g[0]) * scale - 1,
        ((base + (_PAD + 1)) + w3 / g[1]) * scale - 1,
    )
    out = torch.zeros(coeffs.shape[:2] + voxel.shape[1:4], dtype=coeffs.dtype, device=coeffs.device)
    for a in (0, 1):
        for b in (0, 1):
            weight_ab = g[a][..., 0] * g[b][..., 1]
            for c in (0, 1):
                grid = torch.stack((taps[c][..., 2], taps[b][..., 1], taps[a][..., 0]), dim=-1)
                values = F.grid_sample(
                    padded, grid, mode="bilinear", padding_mode="border", align_corners=True
                )
                out.addcmul_(values, (weight_ab * g[c][..., 2]).unsqueeze(1))
    return out.masked_fill_(~inside_mask(voxel, shape).unsqueeze(1), fill)
