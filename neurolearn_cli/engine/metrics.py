"""Differentiable image similarity metrics for registration.

Every metric compares a batch of fixed and moving samples of shape (B, ...)
and returns one value per batch item, shape (B,), so one call scores many
volumes at once (head motion) and autograd reaches the sampling coordinates.
An optional mask (same shape, or broadcastable) weights the samples, e.g. a
brain mask on the fixed image. Conventions follow ANTs: ``ncc`` is the global
correlation ("GC"), ``lncc`` the mean squared local correlation ("CC"),
``nmi`` normalized mutual information from a Parzen-window joint histogram
(Mattes' cubic B-spline window). :func:`dissimilarity` turns any of them into
a loss to minimize.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from neurolearn_cli.engine.reduce import fixed_expand, fixed_sum
from neurolearn_cli.errors import ProcessingError

MetricName = Literal["mse", "ncc", "lncc", "nmi"]
_EPS = 1e-5


def _weights(fixed: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-sample weights (B, N) that sum to one per batch item."""
    if mask is None:
        w = torch.ones_like(fixed)
    else:
        w = torch.broadcast_to(mask.to(fixed.dtype), fixed.shape)
    w = w.flatten(1)
    total = fixed_sum(w, 1)[:, None]
    if bool((total <= 0).any()):
        raise ProcessingError("the metric mask selects no samples")
    return w / total


def mse(fixed: torch.Tensor, moving: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared difference ``sum_i w_i (f_i - m_i)^2`` per batch item (lower is better)."""
    w = _weights(fixed, mask)
    return fixed_sum(w * (fixed - moving).flatten(1) ** 2, 1)


def ncc(fixed: torch.Tensor, moving: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Global normalized cross-correlation (Pearson r) per batch item, in [-1, 1]."""
    w = _weights(fixed, mask)
    f, m = fixed.flatten(1), moving.flatten(1)
    # r does not change with the means (weights sum to one), so they are detached: their gradient
    # would be a sum over the samples inside autograd, split by thread count
    fc = f - fixed_sum(w * f, 1).detach()[:, None]
    mc = m - fixed_sum(w * m, 1).detach()[:, None]
    cov = fixed_sum(w * fc * mc, 1)
    var_f = fixed_sum(w * fc * fc, 1)
    var_m = fixed_sum(w * mc * mc, 1)
    return cov / torch.sqrt(var_f * var_m + _EPS)


def box_mean(volumes: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)^3 window of each voxel of (B, C, X, Y, Z), zero padding outside.

    The box is separable: along each axis, the sum of 2r+1 shifted slices of
    the padded volume (3 (2r+1) values per voxel instead of (2r+1)^3; plain
    additions run faster on CPU than depthwise convolutions or ``avg_pool3d``).
    """
    size = 2 * radius + 1
    for axis in (2, 3, 4):
        n = volumes.shape[axis]
        padding = [0] * 6
        padding[2 * (4 - axis)] = padding[2 * (4 - axis) + 1] = radius
        padded = F.pad(volumes, padding)
        total = padded.narrow(axis, 0, n).clone()
        for shift in range(1, size):
            total += padded.narrow(axis, shift, n)
        volumes = total / size
    return volumes


def lncc(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    mask: torch.Tensor | None = None,
    radius: int = 2,
) -> torch.Tensor:
    """Mean local squared correlation over (2r+1)^3 windows, per batch item, in [0, 1].

    ``fixed`` and ``moving`` are (B, X, Y, Z). Local means, variances and the
    covariance come from one box filter over five stacked channels, as in
    ANTs' neighbourhood CC; flat windows (zero variance) score zero.
    """
    if fixed.dim() != 4:
        raise ValueError(f"lncc needs (B, X, Y, Z) volumes, got shape {tuple(fixed.shape)}")
    stack = torch.stack([fixed, moving, fixed * fixed, moving * moving, fixed * moving], dim=1)
    mf, mm, mff, mmm, mfm = box_mean(stack, radius).unbind(1)
    cross = mfm - mf * mm
    var_f = torch.clamp(mff - mf * mf, min=0.0)
    var_m = torch.clamp(mmm - mm * mm, min=0.0)
    cc2 = cross * cross / (var_f * var_m + _EPS)
    w = _weights(fixed, mask)
    return fixed_sum(w * cc2.flatten(1), 1)


def lncc_with_gradient(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    mask: torch.Tensor | None = None,
    radius: int = 2,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`lncc` of (B, X, Y, Z) volumes and its gradients with respect to both inputs, without autograd.

    With window means ``mf, mm, mff, mmm, mfm`` and ``cc = c^2 / (vf vm + eps)``,
    the chain rule gives per-window weights ``a_*`` on each mean; the box
    mean is its own adjoint, so ``d/df = box(a_f) + 2 f box(a_ff) + m box(a_fm)``
    (and symmetrically for ``m``): two box passes over five channels, no
    backward graph. Flat windows (clamped variance) are treated as in :func:`lncc`.
    """
    stack = torch.stack([fixed, moving, fixed * fixed, moving * moving, fixed * moving], dim=1)
    mf, mm, mff, mmm, mfm = box_mean(stack, radius).unbind(1)
    cross = mfm - mf * mm
    var_f = torch.clamp(mff - mf * mf, min=0.0)
    var_m = torch.clamp(mmm - mm * mm, min=0.0)
    denom = var_f * var_m + _EPS
    cc2 = cross * cross / denom
    w = _weights(fixed, mask).view_as(fixed)
    value = fixed_sum(w * cc2, 1)
    d_cross = w * 2.0 * cross / denom
    d_var_f = -w * cc2 * var_m / denom
    d_var_m = -w * cc2 * var_f / denom
    adjoint = torch.stack([
        -mm * d_cross - 2.0 * mf * d_var_f,
        -mf * d_cross - 2.0 * mm * d_var_m,
        d_var_f,
        d_var_m,
        d_cross,
    ], dim=1)
    b_f, b_m, b_ff, b_mm, b_fm = box_mean(adjoint, radius).unbind(1)
    return value, b_f + 2.0 * fixed * b_ff + moving * b_fm, b_m + 2.0 * moving * b_mm + fixed * b_fm


def _parzen_weights(values: torch.Tensor, bins: int) -> torch.Tensor:
    """Cubic B-spline Parzen weights (B, N, bins) of values scaled to [0, bins - 1]."""
    lo = fixed_expand(values.amin(dim=1, keepdim=True), values.shape[1])
    hi = fixed_expand(values.amax(dim=1, keepdim=True), values.shape[1])
    scaled = (values - lo) / torch.clamp(hi - lo, min=_EPS) * (bins - 1)
    centres = torch.arange(bins, dtype=values.dtype, device=values.device)
    d = (scaled.unsqueeze(-1) - centres).abs()
    inner = 2.0 / 3.0 - d * d + 0.5 * d * d * d
    outer = (2.0 - d).clamp(min=0.0) ** 3 / 6.0
    return torch.where(d < 1.0, inner, outer)


def _entropy(p: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return -(p * torch.log(p + 1e-10)).sum(dim=dims)


def nmi(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    mask: torch.Tensor | None = None,
    bins: int = 32,
) -> torch.Tensor:
    """Normalized mutual information ``(H(F) + H(M)) / H(F, M)`` per batch item, in [1, 2].

    Each input is scaled to the histogram range by its own minimum and
    maximum; the joint histogram is a weighted product of Parzen weights,
    so it is differentiable with respect to the moving samples.
    """
    w = _weights(fixed, mask)
    wf = _parzen_weights(fixed.flatten(1), bins) * w.unsqueeze(-1)
    wm = _parzen_weights(moving.flatten(1), bins)
    joint = torch.bmm(wf.transpose(1, 2), wm)
    joint = joint / joint.sum(dim=(1, 2), keepdim=True)
    h_f = _entropy(joint.sum(2), (1,))
    h_m = _entropy(joint.sum(1), (1,))
    return (h_f + h_m) / _entropy(joint, (1, 2))


def dissimilarity(
    name: MetricName,
    fixed: torch.Tensor,
    moving: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Loss to minimize for metric ``name``, per batch item: zero (mse) or smallest at a perfect match."""
    if name == "mse":
        return mse(fixed, moving, mask)
    if name == "ncc":
        return 1.0 - ncc(fixed, moving, mask)
    if name == "lncc":
        return 1.0 - lncc(fixed, moving, mask)
    if name == "nmi":
        return 2.0 - nmi(fixed, moving, mask)
    raise ValueError(f"unknown metric {name!r}: expected mse, ncc, lncc or nmi")
