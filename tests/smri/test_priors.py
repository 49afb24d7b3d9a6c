"""Template priors on a subject grid: separable Gaussian smoothing and normalised class probabilities."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

from neurolearn_cli.smri.priors import gaussian_smooth, warp_priors


def test_gaussian_smooth_matches_scipy_with_zero_padding() -> None:
    volumes = torch.rand(2, 7, 8, 9, generator=torch.Generator().manual_seed(0))
    spacing, fwhm = (1.0, 0.7, 2.0), 3.0
    sigmas = [fwhm / (2 * math.sqrt(2 * math.log(2))) / s for s in spacing]
    radii = [max(1, math.ceil(3 * s)) for s in sigmas]
    expected = np.stack([
        ndimage.gaussian_filter(v.numpy().astype(np.float64), sigmas, mode="constant", radius=radii) for v in volumes
    ])
    smoothed = gaussian_smooth(volumes, spacing, fwhm)
    np.testing.assert_allclose(smoothed.numpy(), expected, atol=1e-6)


def test_priors_are_probabilities_with_a_floor(template_4mm) -> None:
    priors = warp_priors(template_4mm, template_4mm.t1w.grid, None, fwhm_mm=6.0, floor=1e-3)
    assert priors.shape == (4, *template_4mm.t1w.shape3)
    assert torch.allclose(priors.sum(0), torch.ones(template_4mm.t1w.shape3), atol=1e-5)
    assert float(priors.min()) >= 1e-3 / (1 + 4e-3)
    inside = template_4mm.mask.data > 0.99
    assert float(priors[3][inside].mean()) < 0.1
    assert float(priors[3][0, 0, 0]) > 0.99
