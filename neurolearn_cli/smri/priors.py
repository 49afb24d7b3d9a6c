"""Template tissue priors warped onto a T1w grid.

The four classes of :mod:`neurolearn_cli.smri.segmentation` are GM, WM, CSF
(inside the template's brain mask) and "other" (everything else: skull,
scalp, air, neck). Priors are optionally smoothed (to tolerate residual
misregistration), floored so no class is impossible, and renormalised.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neurolearn_cli.engine.image import Grid
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.engine.transforms import Transform
from neurolearn_cli.smri.template import Template


def gaussian_smooth(volumes: torch.Tensor, spacing: tuple[float, float, float], fwhm_mm: float) -> torch.Tensor:
    """Separable Gaussian smoothing of (C, X, Y, Z) volumes with a ``fwhm_mm`` kernel (zero padding).

    Each axis is a weighted sum of shifted copies accumulated in place, so
    memory stays at about three copies of ``volumes``; a grouped ``conv3d``
    on the CPU unfolds one copy per kernel tap (several GB at 1 mm).
    """
    out = volumes
    for axis, step in enumerate(spacing):
        sigma = fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / step
        radius = max(1, int(math.ceil(3.0 * sigma)))
        taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float64) / sigma) ** 2)
        weights = (taps / taps.sum()).tolist()
        dim = axis + 1
        padding = [0, 0] * (3 - axis - 1) + [radius, radius]
        padded = F.pad(out, padding)
        size = out.shape[dim]
        out = torch.zeros_like(out)
        for shift, weight in enumerate(weights):
            out.add_(padded.narrow(dim, shift, size), alpha=weight)
        del padded
    return out


def warp_priors(
    template: Template, grid: Grid, to_template: Transform | None, *, fwhm_mm: float = 0.0, floor: float = 1e-3
) -> torch.Tensor:
    """GM, WM, CSF, other priors (4, X, Y, Z) on ``grid``.

    Parameters
    ----------
    template : Template
        Template with tissue maps.
    grid : Grid
        Target (T1w) grid.
    to_template : Transform or None
        Maps ``grid``'s world points to template points (None: same world).
    fwhm_mm : float
        Smoothing of the warped priors (0: none).
    floor : float
        Minimum probability of every class before renormalising.
    """
    priors = torch.empty((4, *grid.shape), device=grid.device)
    priors[:3] = resample(template.priors(), grid, to_template, order="linear").data.permute(3, 0, 1, 2)
    priors[:3].clamp_(0.0, 1.0)
    torch.sum(priors[:3], dim=0, out=priors[3])
    priors[3].clamp_(max=1.0).neg_().add_(1.0)
    if fwhm_mm > 0:
        priors = gaussian_smooth(priors, grid.spacing, fwhm_mm)
    priors.clamp_(min=floor)
    return priors.div_(priors.sum(0, keepdim=True))
