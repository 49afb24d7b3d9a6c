"""Test helpers for smri: a tissue phantom with a known bias field, Dice overlap."""

from __future__ import annotations

import math

import torch

from neurolearn_cli.engine.image import Image

PHANTOM_MEANS = (60.0, 100.0, 25.0, 70.0, 3.0)
PHANTOM_SDS = (4.0, 4.0, 3.0, 20.0, 1.0)


def smooth(volume: torch.Tensor, sigma_vox: float) -> torch.Tensor:
    """Separable Gaussian blur of a 3D tensor (test helper for soft priors)."""
    radius = int(math.ceil(3 * sigma_vox))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma_vox) ** 2)
    taps /= taps.sum()
    out = volume[None, None]
    for axis in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = taps.numel()
        padding = [0, 0, 0]
        padding[axis] = radius
        out = torch.nn.functional.conv3d(out, taps.view(shape), padding=padding)
    return out[0, 0]


def make_phantom(shape: tuple[int, int, int] = (44, 52, 48), spacing: float = 2.5) -> dict:
    """An ellipsoidal head: WM core, GM shell, CSF shell, skull/scalp shell, air; known bias field.

    Returns the biased image, the true labels (0 GM, 1 WM, 2 CSF, 3 other, 4 air),
    the multiplicative bias, and priors (GM, WM, CSF, other) blurred from the truth.
    """
    generator = torch.Generator().manual_seed(0)
    affine = torch.diag(torch.tensor([spacing, spacing, spacing, 1.0], dtype=torch.float64))
    affine[:3, 3] = torch.tensor([-50.0, -60.0, -55.0], dtype=torch.float64)
    index = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij"), -1)
    centre = (torch.tensor(shape, dtype=torch.float32) - 1) / 2
    radius = ((index - centre) * spacing / torch.tensor([45.0, 55.0, 50.0])).norm(dim=-1)
    labels = torch.full(shape, 4)
    labels[radius < 1.12] = 3
    labels[radius < 0.9] = 2
    labels[radius < 0.8] = 0
    labels[radius < 0.55] = 1
    means, sds = torch.tensor(PHANTOM_MEANS), torch.tensor(PHANTOM_SDS)
    truth = means[labels] + sds[labels] * torch.randn(shape, generator=generator)
    rel = (index - centre) / centre
    bias = torch.exp(0.15 * rel[..., 0] + 0.1 * rel[..., 1] ** 2 - 0.1 * rel[..., 2] * rel[..., 0])
    image = Image((truth * bias).clamp_min(0.1), affine)
    priors = torch.stack([smooth((labels == k).float(), 1.5) for k in range(3)] + [smooth((labels >= 3).float(), 1.5)])
    priors = priors.clamp_min(1e-3)
    return {"image": image, "labels": labels, "bias": bias, "priors": priors / priors.sum(0, keepdim=True)}


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    """Dice overlap of two boolean tensors."""
    return float(2 * (a & b).sum() / (a.sum() + b.sum()).clamp_min(1))
