"""Unified segmentation: Gaussian mixture with spatial priors and a bias field, by EM.

The model follows SPM's unified segmentation in the log-intensity domain. With
``y`` the T1w intensity and ``beta`` a smooth log bias field (DCT basis, see
:mod:`neurolearn_cli.smri.bias`), the corrected log intensity ``x = log y - beta``
is a mixture of Gaussians grouped into tissue classes (GM, WM, CSF, other).
Class ``k`` at voxel ``i`` has prior ``gamma_k p_ik / sum_j gamma_j p_ij`` from
template priors ``p`` warped to the image; each class holds one or more
Gaussians with their own weights. EM alternates responsibilities, Gaussian
parameters, class weights ``gamma`` and a penalised weighted least-squares
update of the bias. Parameters are estimated on a regular subsample of voxels
(about every ``sample_mm``); posteriors are then evaluated on the full grid and
optionally smoothed by a mean-field Potts MRF. Voxels darker than
``background_fraction`` of the 99th intensity percentile (air, zeros of
skull-stripped images) are outside the model and get zero probabilities, as
do excluded voxels (a lesion): they neither pull the class means nor the bias
field, and count as no class; the bias field still corrects their intensity.

With ``partial_volume`` (a voxel on a tissue boundary averages two tissues; on
thick slices most cortical voxels do) two mixed classes join the model, GM/WM
and GM/CSF, as in FSL FAST's and Atropos's partial-volume models: a mixed
voxel holds a fraction ``f`` of GM, uniform on (0, 1), and its intensity is
the fraction-weighted sum of the two pure tissues' (log-normal,
moment-matched) evaluated at ``PV_NODES`` fractions. Their means and variances
follow the pure classes' at every EM step; their prior is the product of the
two tissues' priors, scaled by a class weight EM fits. A mixed voxel then
counts as its expected GM fraction of GM and the rest as the other tissue, so
the tissue maps are fractions, and a sum of them is a volume, where a
pure-class posterior calls every mixed voxel all one tissue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.reduce import fixed_mean, fixed_sum
from neurolearn_cli.errors import ProcessingError
from neurolearn_cli.smri import bias

CLASSES = ("GM", "WM", "CSF", "other")
#: Voxels darker than this fraction of the 99th percentile of the positive intensities are background.
BACKGROUND_FRACTION = 0.04
#: Tissue pairs (indices into ``CLASSES``) whose mixed voxels form a partial-volume class: GM/WM, GM/CSF.
PV_PAIRS = ((0, 1), (0, 2))
#: GM fractions at which a mixed class's intensity density is evaluated (midpoints of equal bins of (0, 1)).
PV_NODES = 10
#: Strength of the bias field's bending penalty, per sampled voxel.
BIAS_REGULARIZATION = 1e-3
#: The same for an image of brain alone. Its outer shell is cortex, darker than the white matter within,
#: and with no head around it to hold the field's periphery a smooth field takes that radial contrast up.
BRAIN_ONLY_BIAS_REGULARIZATION = 1e-1


@dataclass(frozen=True)
class MixtureParameters:
    """Fitted mixture: per-Gaussian class index, mean, variance, within-class weight; class weights."""

    classes: torch.Tensor
    means: torch.Tensor
    variances: torch.Tensor
    weights: torch.Tensor
    class_weights: torch.Tensor


@dataclass(frozen=True)
class Segmentation:
    """Result of :func:`segment`, on the input image's grid.

    Attributes
    ----------
    corrected : Image
        Bias-corrected T1w (input divided by the bias field).
    bias_field : Image
        Multiplicative bias field (mean log value zero over the basis).
    posteriors : Tensor
        (4, X, Y, Z) probabilities of GM, WM, CSF and other (zero in the left-out background); with
        ``partial_volume``, each voxel's expected fraction of each class.
    mixture : MixtureParameters
        Fitted Gaussian parameters (log-intensity domain); with ``partial_volume`` the mixed classes'
        Gaussians follow the pure ones (classes numbered from ``len(CLASSES)``).
    log_likelihood : float
        Mean log-likelihood per sampled voxel at convergence.
    iterations : int
        EM iterations run.
    """

    corrected: Image
    bias_field: Image
    posteriors: torch.Tensor
    mixture: MixtureParameters
    log_likelihood: float
    iterations: int

    def probability(self, name: str) -> Image:
        """The probability map of class ``name`` (GM, WM, CSF or other) as an Image."""
        return self.corrected.with_data(self.posteriors[CLASSES.index(name)])


def background_level(intensities: torch.Tensor, fraction: float = BACKGROUND_FRACTION) -> float:
    """``fraction`` of the 99th percentile of the positive ``intensities``: darker voxels are background."""
    positive = intensities[intensities > 0]
    return fraction * float(torch.sort(positive).values[int(0.99 * (positive.numel() - 1))])


def _sample_steps(spacing: tuple[float, float, float], sample_mm: float) -> tuple[int, int, int]:
    x, y, z = (max(1, int(round(sample_mm / s))) for s in spacing)
    return x, y, z


def _weighted_quantiles(values: torch.Tensor, weights: torch.Tensor, qs: torch.Tensor) -> torch.Tensor:
    order = torch.argsort(values)
    cdf = torch.cumsum(weights[order], 0)
    cdf = cdf / cdf[-1]
    idx = torch.searchsorted(cdf, qs.to(cdf.dtype)).clamp(max=values.numel() - 1)
    return values[order][idx]


def _without_non_brain(priors: torch.Tensor) -> torch.Tensor:
    """``priors`` with the last class (non-brain) set to zero and the tissue classes renormalised to sum to one."""
    tissues = priors[:-1] / priors[:-1].sum(0, keepdim=True).clamp_min(1e-12)
    return torch.cat([tissues, torch.zeros_like(priors[-1:])])


def _initial_mixture(x: torch.Tensor, priors: torch.Tensor, n_gaussians: tuple[int, ...]) -> MixtureParameters:
    """Gaussians at the prior-weighted quantiles of each class's intensities."""
    classes, means, variances = [], [], []
    for k, n in enumerate(n_gaussians):
        if n == 0:
            continue
        w = priors[k]
        total = fixed_sum(w).clamp_min(1e-6)
        mean = fixed_sum(w * x) / total
        var = fixed_sum(w * (x - mean) ** 2) / total
        qs = (torch.arange(n, device=x.device, dtype=x.dtype) + 0.5) / n
        means.append(_weighted_quantiles(x, w, qs) if n > 1 else mean[None])
        variances.append(torch.full((n,), float(var) / n**2 if n > 1 else float(var), device=x.device))
        classes.extend([k] * n)
    cls = torch.tensor(classes, device=x.device)
    weights = torch.cat([torch.full((n,), 1.0 / max(n, 1), device=x.device) for n in n_gaussians])
    return MixtureParameters(cls, torch.cat(means), torch.cat(variances), weights, torch.ones(len(n_gaussians), device=x.device))


def class_moments(mix: MixtureParameters, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the intensity (bias-corrected, not log) of class ``k``, a weighted sum of log-normal
    Gaussians."""
    inside = mix.classes == k
    weights, mu, var = mix.weights[inside], mix.means[inside], mix.variances[inside]
    mean = (weights * torch.exp(mu + var / 2)).sum() / weights.sum()
    second = (weights * torch.exp(2 * mu + 2 * var)).sum() / weights.sum()
    return mean, second - mean**2


def class_mean_intensity(mix: MixtureParameters, k: int) -> float:
    """Mean intensity (bias-corrected, not log) of class ``k`` (:func:`class_moments`)."""
    return float(class_moments(mix, k)[0])


def _gaussian_log_terms(x: torch.Tensor, mix: MixtureParameters) -> torch.Tensor:
    """log(w_g N(x | mu_g, s_g^2)) for every Gaussian, shape (G, N).

    In place on one (G, N) buffer: the full grid's posteriors evaluate every
    Gaussian, the partial-volume nodes among them, at millions of voxels.
    """
    var = mix.variances[:, None]
    terms = x[None] - mix.means[:, None]
    return terms.pow_(2).div_(var).add_(torch.log(2 * math.pi * var)).mul_(-0.5).add_(torch.log(mix.weights[:, None]))


def _class_log_likelihood(terms: torch.Tensor, mix: MixtureParameters, n_classes: int) -> torch.Tensor:
    """log sum_{g in k} w_g N(x | g) per class, shape (K, N), from the Gaussians' :func:`_gaussian_log_terms`."""
    out = torch.full((n_classes, terms.shape[1]), -torch.inf, device=terms.device)
    for k in range(n_classes):
        out[k] = torch.logsumexp(terms[mix.classes == k], dim=0)
    return out


def _pv_fractions(device: torch.device) -> torch.Tensor:
    """The first tissue's fraction at each node of a mixed class, ``(i + 0.5) / PV_NODES``."""
    return (torch.arange(PV_NODES, device=device, dtype=torch.float32) + 0.5) / PV_NODES


def _with_mixed_priors(priors: torch.Tensor) -> torch.Tensor:
    """``priors`` (K, ...) followed by one row per ``PV_PAIRS`` pair: the product of the pair's priors."""
    return torch.cat([priors, torch.stack([priors[a] * priors[b] for a, b in PV_PAIRS])])


def _mixed_gaussians(mix: MixtureParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-domain means and variances of the mixed classes' nodes, from the pure classes' parameters.

    At GM fraction ``f`` of pair (a, b) the intensity ``f Y_a + (1 - f) Y_b``
    has mean ``f E[Y_a] + (1 - f) E[Y_b]`` and variance ``f^2 V_a + (1 - f)^2 V_b``;
    the log-normal with these moments stands for it.
    """
    f = _pv_fractions(mix.means.device)
    means, variances = [], []
    for a, b in PV_PAIRS:
        mean_a, var_a = class_moments(mix, a)
        mean_b, var_b = class_moments(mix, b)
        mean = f * mean_a + (1 - f) * mean_b
        log_var = torch.log1p((f**2 * var_a + (1 - f) ** 2 * var_b) / mean**2)
        means.append(torch.log(mean) - log_var / 2)
        variances.append(log_var)
    return torch.cat(means), torch.cat(variances)


def _with_mixed_classes(mix: MixtureParameters) -> MixtureParameters:
    """``mix`` (pure classes only) with the ``PV_PAIRS`` classes appended, ``PV_NODES`` fixed Gaussians each.

    The mixed classes are numbered from ``len(CLASSES)`` on, in the order of ``PV_PAIRS``.
    """
    device = mix.means.device
    means, variances = _mixed_gaussians(mix)
    first = len(CLASSES)
    classes = torch.arange(first, first + len(PV_PAIRS), device=device).repeat_interleave(PV_NODES)
    weights = torch.full((len(PV_PAIRS) * PV_NODES,), 1.0 / PV_NODES, device=device)
    return MixtureParameters(
        torch.cat([mix.classes, classes]), torch.cat([mix.means, means]), torch.cat([mix.variances, variances]),
        torch.cat([mix.weights, weights]), torch.cat([mix.class_weights, torch.ones(len(PV_PAIRS), device=device)]),
    )


def _rederive_mixed(mix: MixtureParameters) -> MixtureParameters:
    """The mixed classes' nodes of ``mix`` placed again from its pure classes; node weights stay uniform."""
    pure = mix.classes < len(CLASSES)
    means, variances = _mixed_gaussians(mix)
    weights = torch.where(pure, mix.weights, 1.0 / PV_NODES)
    return MixtureParameters(mix.classes, torch.cat([mix.means[pure], means]),
                             torch.cat([mix.variances[pure], variances]), weights, mix.class_weights)


def _split_mixed(terms: torch.Tensor, posteriors: torch.Tensor, mix: MixtureParameters) -> torch.Tensor:
    """Class fractions (len(CLASSES), N) from posteriors of the pure then mixed classes, given the Gaussians'
    :func:`_gaussian_log_terms` at each voxel's log intensity.

    A mixed class's posterior goes to its pair in proportion to the expected
    GM fraction given the intensity: its nodes' likelihoods weight their fractions.
    """
    f = _pv_fractions(terms.device)
    n_pure = len(CLASSES)
    tissues = posteriors[:n_pure].clone()
    for j, (a, b) in enumerate(PV_PAIRS):
        node = torch.softmax(terms[mix.classes == n_pure + j], dim=0)
        expected = (f[:, None] * node).sum(0)
        mixed = posteriors[n_pure + j]
        tissues[a] += mixed * expected
        tissues[b] += mixed * (1 - expected)
    return tissues


def _em_step(
    x: torch.Tensor, priors: torch.Tensor, mix: MixtureParameters, min_var: float, partial_volume: bool = False
) -> tuple[MixtureParameters, torch.Tensor, float]:
    """One EM update of the mixture; returns it, the per-sample precision-weighted target, and the log-likelihood.

    With ``partial_volume`` the mixed classes' Gaussians follow the updated pure classes'.
    """
    n_classes = priors.shape[0]
    log_prior = torch.log(mix.class_weights[:, None] * priors + 1e-12)
    norm = torch.log((mix.class_weights[:, None] * priors).sum(0) + 1e-12)
    terms = _gaussian_log_terms(x, mix) + log_prior[mix.classes] - norm[None]
    log_total = torch.logsumexp(terms, dim=0)
    resp = torch.exp(terms - log_total[None])
    n_g = resp.sum(1).clamp_min(1e-6)
    means = (resp * x[None]).sum(1) / n_g
    variances = ((resp * (x[None] - means[:, None]) ** 2).sum(1) / n_g).clamp_min(min_var)
    class_resp = torch.zeros(n_classes, device=x.device).index_add_(0, mix.classes, n_g)
    weights = n_g / class_resp[mix.classes]
    denominators = (priors / torch.exp(norm)[None]).sum(1).clamp_min(1e-6)
    class_weights = class_resp / denominators
    class_weights = class_weights / class_weights.max()
    new = MixtureParameters(mix.classes, means, variances, weights, class_weights)
    if partial_volume:
        new = _rederive_mixed(new)
    return new, resp, float(fixed_mean(log_total))


def _neighbour_mean(volumes: torch.Tensor, weights: tuple[float, float, float]) -> torch.Tensor:
    """Weighted mean over the 6 face neighbours of every voxel of (K, X, Y, Z) volumes (zero outside).

    ``weights`` are per axis (both neighbours along an axis share it) and sum
    to one half. Shifted slices summed in place: a grouped ``conv3d`` on the
    CPU would unfold 27 copies of the volumes first.
    """
    padded = F.pad(volumes, (1, 1, 1, 1, 1, 1))
    core = (slice(None), slice(1, -1), slice(1, -1), slice(1, -1))
    total = torch.zeros_like(volumes)
    for axis, weight in zip((1, 2, 3), weights, strict=True):
        for start in (0, 2):
            view = list(core)
            view[axis] = slice(start, start + volumes.shape[axis])
            total.add_(padded[tuple(view)], alpha=weight)
    return total


def neighbour_weights(spacing: tuple[float, float, float]) -> tuple[float, float, float]:
    """Per-axis MRF weights proportional to ``1 / spacing**2`` (one sixth each on an isotropic grid).

    Neighbours across thick slices lie farther and share less tissue with the
    voxel, so they count less: on a 1x1x5 mm grid a slice neighbour weighs 1/25
    of an in-plane one.
    """
    inverse = [1.0 / float(s) ** 2 for s in spacing]
    total = 2.0 * sum(inverse)
    return inverse[0] / total, inverse[1] / total, inverse[2] / total


def _mrf(posteriors: torch.Tensor, beta: float, iterations: int,
         spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """Mean-field Potts smoothing: q_k ∝ p_k exp(beta * weighted mean of q_k over the 6 neighbours).

    ``p`` are the unsmoothed posteriors; the neighbours are weighted by
    :func:`neighbour_weights` of the grid's ``spacing``.
    """
    data_term = posteriors
    valid = data_term.sum(0) > 0
    weights = neighbour_weights(spacing)
    for _ in range(iterations):
        q = _neighbour_mean(posteriors, weights).mul_(beta).exp_().mul_(data_term)
        q.div_(q.sum(0, keepdim=True).clamp_min(1e-30))
        posteriors = q.mul_(valid[None])
    return posteriors


def _full_posteriors(
    log_y: torch.Tensor, valid: torch.Tensor, log_bias: torch.Tensor, priors: torch.Tensor, mix: MixtureParameters,
    partial_volume: bool = False, slab: int = 16,
) -> torch.Tensor:
    """Class posteriors (K, X, Y, Z) on the full grid, computed in slabs of ``slab`` voxel planes.

    With ``partial_volume`` the mixed classes' posteriors are split into tissue fractions (:func:`_split_mixed`).
    """
    n_classes = priors.shape[0]
    out = torch.zeros((n_classes, *log_y.shape), device=log_y.device)
    for start in range(0, log_y.shape[0], slab):
        sl = slice(start, start + slab)
        x = (log_y[sl] - log_bias[sl]).reshape(-1)
        slab_priors = priors[:, sl].reshape(n_classes, -1)
        if partial_volume:
            slab_priors = _with_mixed_priors(slab_priors)
        terms = _gaussian_log_terms(x, mix)
        log_l = _class_log_likelihood(terms, mix, slab_priors.shape[0])
        log_p = torch.log(mix.class_weights[:, None] * slab_priors + 1e-12)
        log_post = log_l + log_p
        post = torch.exp(log_post - torch.logsumexp(log_post, 0, keepdim=True))
        if partial_volume:
            post = _split_mixed(terms, post, mix)
        out[:, sl] = post.reshape(n_classes, *log_y[sl].shape) * valid[sl][None]
    return out


def segment(
    t1w: Image,
    priors: torch.Tensor,
    *,
    n_gaussians: tuple[int, int, int, int] = (1, 1, 1, 4),
    bias_fwhm_mm: float = 60.0,
    bias_regularization: float | None = None,
    sample_mm: float = 3.0,
    max_iterations: int = 30,
    tolerance: float = 1e-5,
    mrf_beta: float = 0.0,
    mrf_iterations: int = 2,
    background_fraction: float = BACKGROUND_FRACTION,
    exclude: torch.Tensor | None = None,
    partial_volume: bool = False,
    brain_only: bool = False,
) -> Segmentation:
    """Bias-corrected tissue posteriors of ``t1w`` under template ``priors``.

    Parameters
    ----------
    t1w : Image
        3D T1w image.
    priors : Tensor
        (4, X, Y, Z) prior probabilities of GM, WM, CSF and other on ``t1w``'s grid.
    n_gaussians : tuple of int
        Gaussians per class.
    bias_fwhm_mm : float
        Shortest half-wavelength of the bias field's cosines (mm); ``inf`` disables the bias.
    bias_regularization : float, optional
        Strength of the bias field's bending penalty (per sampled voxel); by default ``BIAS_REGULARIZATION``,
        or ``BRAIN_ONLY_BIAS_REGULARIZATION`` with ``brain_only``.
    sample_mm : float
        Spacing of the voxel subsample used for estimation (mm).
    max_iterations, tolerance : int, float
        EM stops after ``max_iterations`` or when the mean log-likelihood improves by less than ``tolerance``.
    mrf_beta, mrf_iterations : float, int
        Mean-field MRF coupling (0 disables) and number of sweeps on the full grid.
    background_fraction : float
        Voxels below this fraction of the 99th intensity percentile are left out.
    exclude : Tensor, optional
        Boolean (X, Y, Z) voxels left out of the model (a lesion mask on ``t1w``'s grid).
    partial_volume : bool
        Model mixed GM/WM and GM/CSF voxels (thick slices); the posteriors are then tissue fractions.
    brain_only : bool
        The image holds brain alone (already skull-stripped): the non-brain class is left out of the model.
        With nothing outside the brain to fit, its Gaussians would take the darkest brain voxels from CSF. Its bias
        field is held stiffer (``BRAIN_ONLY_BIAS_REGULARIZATION``) unless ``bias_regularization`` is given.

    Returns
    -------
    Segmentation
    """
    if priors.shape != (len(CLASSES), *t1w.shape3):
        raise ValueError(f"priors must have shape {(len(CLASSES), *t1w.shape3)}, got {tuple(priors.shape)}")
    if brain_only:
        priors, n_gaussians = _without_non_brain(priors), (*n_gaussians[:-1], 0)
    if bias_regularization is None:
        bias_regularization = BRAIN_ONLY_BIAS_REGULARIZATION if brain_only else BIAS_REGULARIZATION
    device = t1w.device
    y = t1w.data
    steps = _sample_steps(t1w.spacing, sample_mm)
    sub = tuple(slice(None, None, s) for s in steps)
    if int((y[sub] > 0).sum()) < 1000:
        raise ProcessingError("segmentation: fewer than 1000 sampled voxels with positive intensity")
    valid = y > background_level(y[sub], background_fraction)
    log_y = torch.where(valid, torch.log(y.clamp_min(1e-12)), 0.0)
    modelled = valid if exclude is None else valid & ~exclude
    sub_valid = modelled[sub]
    sub_logy = log_y[sub]
    sub_priors = priors[(slice(None),) + sub]
    flat_priors = sub_priors[:, sub_valid]
    positions = [torch.arange(0, n, s, device=device) for n, s in zip(t1w.shape3, steps, strict=True)]
    use_bias = math.isfinite(bias_fwhm_mm)
    if use_bias:
        orders = bias.basis_orders(t1w.shape3, t1w.spacing, bias_fwhm_mm)
        bx, by, bz = (bias.dct_matrix(n, k, p) for n, k, p in zip(t1w.shape3, orders, positions, strict=True))
        sub_bases = (bx, by, bz)
        ex, ey, ez = (n * s for n, s in zip(t1w.shape3, t1w.spacing, strict=True))
        extent = (ex, ey, ez)
        penalty = bias.bending_penalty(orders, extent, bias_regularization * int(sub_valid.sum())).to(device)
        coeffs = torch.zeros(orders, dtype=torch.float64, device=device)
    sub_bias = torch.zeros_like(sub_logy)
    x = sub_logy[sub_valid]
    min_var = float(torch.var(x)) * 1e-4
    mix = _initial_mixture(x, flat_priors, n_gaussians)
    if partial_volume:
        mix = _with_mixed_classes(mix)
        flat_priors = _with_mixed_priors(flat_priors)
    previous = -math.inf
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        x = (sub_logy - sub_bias)[sub_valid]
        mix, resp, loglik = _em_step(x, flat_priors, mix, min_var, partial_volume)
        if use_bias:
            precision = resp / mix.variances[:, None]
            w = precision.sum(0)
            target = sub_logy[sub_valid] - (precision * mix.means[:, None]).sum(0) / w
            weights = torch.zeros_like(sub_logy)
            targets = torch.zeros_like(sub_logy)
            weights[sub_valid] = w
            targets[sub_valid] = target
            coeffs = bias.fit(weights, targets, sub_bases, penalty)
            sub_bias = bias.evaluate(coeffs, sub_bases)
        if loglik - previous < tolerance * abs(loglik) and iteration > 3:
            break
        previous = loglik
    if use_bias:
        fx, fy, fz = (
            bias.dct_matrix(n, k, torch.arange(n, device=device)) for n, k in zip(t1w.shape3, orders, strict=True)
        )
        full_bases = (fx, fy, fz)
        log_bias = bias.evaluate(coeffs, full_bases)
    else:
        log_bias = torch.zeros_like(log_y)
    posteriors = _full_posteriors(log_y, modelled, log_bias, priors, mix, partial_volume)
    if mrf_beta > 0:
        posteriors = _mrf(posteriors, mrf_beta, mrf_iterations, t1w.spacing)
    bias_field = torch.exp(log_bias)
    return Segmentation(
        corrected=t1w.with_data(torch.where(valid, y / bias_field, 0.0)),
        bias_field=t1w.with_data(bias_field),
        posteriors=posteriors,
        mixture=mix,
        log_likelihood=loglik,
        iterations=iteration,
    )
