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
    """Separable Gaussian smoothing of (C, X, Y, Z) volumes with a ``fwhm_mm`` kernel (zero padding)."""
    out = volumes[None]
    for axis, step in enumerate(spacing):
        sigma = fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / step
        radius = max(1, int(math.ceil(3.0 * sigma)))
        taps = torch.arange(-radius, radius + 1, dtype=volumes.dtype, device=volumes.device)
        kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
        kernel = (kernel / kernel.sum()).repeat(volumes.shape[0], 1)
        shape = [volumes.shape[0], 1, 1, 1, 1]
        shape[2 + axis] = kernel.shape[1]
        padding = [0, 0, 0]
        padding[axis] = radius
        out = F.conv3d(out, kernel.view(shape), padding=padding, groups=volumes.shape[0])
    return out[0]


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
    maps = [resample(image, grid, to_template, order="linear").data for image in (template.gm, template.wm, template.csf)]
    tissues = torch.stack(maps).clamp(0.0, 1.0)
    brain = tissues.sum(0).clamp(max=1.0)
    priors = torch.cat([tissues, (1.0 - brain)[None]])
    if fwhm_mm > 0:
        priors = gaussian_smooth(priors, grid.spacing, fwhm_mm)
    priors = priors.clamp_min(floor)
    return priors / priors.sum(0, keepdim=True)
