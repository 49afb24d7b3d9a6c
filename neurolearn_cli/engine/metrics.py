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

    The box is separable: along each axis, each voxel adds its neighbours at
    shifts 1..r on both sides (3 (2r+1) values per voxel instead of
    (2r+1)^3), shifted slices added in place where they overlap the volume,
    so nothing is padded or copied beyond one sum per axis (plain additions
    run faster on CPU than depthwise convolutions or ``avg_pool3d``). The order
    of the additions is fixed, so the result does not depend on the thread count.
    """
    for axis in (2, 3, 4):
        n = volumes.shape[axis]
        total = volumes.clone()
        for shift in range(1, min(radius, n - 1) + 1):
            total.narrow(axis, shift, n - shift).add_(volumes.narrow(axis, 0, n - shift))
            total.narrow(axis, 0, n - shift).add_(volumes.narrow(axis, shift, n - shift))
        volumes = total
    return volumes.div_((2 * radius + 1) ** 3)  # the sums above are new tensors


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
    stack = _products(fixed, moving)
    mf, mm, mff, mmm, mfm = box_mean(stack, radius).unbind(1)
    cross = mfm - mf * mm
    var_f = (mff - mf * mf).clamp_(min=0.0)
    var_m = (mmm - mm * mm).clamp_(min=0.0)
    denom = (var_f * var_m).add_(_EPS)
    cc2 = cross.square().div_(denom)
    w = _weights(fixed, mask).view_as(fixed)
    value = fixed_sum(w * cc2, 1)
    # the adjoint of each window mean, written in place into one (B, 5, ...) tensor for the second box pass:
    # d_cross = 2 w cross / denom, d_var_f = -w cc2 var_m / denom, d_var_m = -w cc2 var_f / denom,
    # a_f = -mm d_cross - 2 mf d_var_f, a_m = -mf d_cross - 2 mm d_var_m
    adjoint = torch.empty_like(stack)
    a_f, a_m, d_var_f, d_var_m, d_cross = adjoint.unbind(1)
    per_denom = w.div(denom)
    torch.mul(per_denom, cross, out=d_cross).mul_(2.0)
    scaled = per_denom.mul_(cc2)
    torch.mul(scaled, var_m, out=d_var_f).neg_()
    torch.mul(scaled, var_f, out=d_var_m).neg_()
    torch.mul(mf, d_var_f, out=a_f).mul_(2.0).addcmul_(mm, d_cross).neg_()
    torch.mul(mm, d_var_m, out=a_m).mul_(2.0).addcmul_(mf, d_cross).neg_()
    b_f, b_m, b_ff, b_mm, b_fm = box_mean(adjoint, radius).unbind(1)
    d_fixed = torch.addcmul(b_f, fixed, b_ff, value=2.0).addcmul_(moving, b_fm)
    d_moving = torch.addcmul(b_m, moving, b_mm, value=2.0).addcmul_(fixed, b_fm)
    return value, d_fixed, d_moving


def _products(fixed: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
    """(B, 5, ...): ``fixed``, ``moving``, their squares and their product, the inputs of the window means."""
    stack = torch.empty((fixed.shape[0], 5, *fixed.shape[1:]), dtype=fixed.dtype, device=fixed.device)
    stack[:, 0] = fixed
    stack[:, 1] = moving
    torch.mul(fixed, fixed, out=stack[:, 2])
    torch.mul(moving, moving, out=stack[:, 3])
    torch.mul(fixed, moving, out=stack[:, 4])
    return stack


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
