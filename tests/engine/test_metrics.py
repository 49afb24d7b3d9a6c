"""Similarity metrics: known values, invariances and gradients."""

from __future__ import annotations

import pytest
import torch

from neurolearn_cli.engine.metrics import (
    box_mean,
    dissimilarity,
    lncc,
    lncc_with_gradient,
    mse,
    ncc,
    nmi,
)
from neurolearn_cli.errors import ProcessingError


@pytest.fixture
def textured() -> torch.Tensor:
    """A smooth random (1, 7, 8, 9) volume (seeded), intensities about 0-100."""
    g = torch.Generator().manual_seed(0)
    noise = 100.0 * torch.rand(1, 1, 9, 10, 11, generator=g, dtype=torch.float64)
    return torch.nn.functional.avg_pool3d(noise, 3, stride=1)[:, 0]


def test_mse_and_ncc_known_values() -> None:
    f = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    m = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    assert mse(f, m).item() == pytest.approx(1.0)
    assert mse(f, m, torch.tensor([[1.0, 1.0, 1.0, 0.0]])).item() == pytest.approx(0.0)
    assert ncc(f, 3.0 * f + 2.0).item() == pytest.approx(1.0, abs=1e-5)
    assert ncc(f, -f).item() == pytest.approx(-1.0, abs=1e-5)
    # Pearson r of (1,2,3,4) and (1,2,3,6): cov 2 / sqrt(var 1.25 * var 3.5)
    assert ncc(f, m).item() == pytest.approx(2.0 / (1.25 * 3.5) ** 0.5, abs=1e-5)


def test_lncc_is_one_for_local_linear_maps_and_low_for_noise(textured: torch.Tensor) -> None:
    assert lncc(textured, 2.0 * textured + 1.0, radius=1).item() == pytest.approx(1.0, abs=1e-3)
    other = 100.0 * torch.rand(textured.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    interior = torch.zeros_like(textured)
    interior[:, 1:-1, 1:-1, 1:-1] = 1.0
    assert lncc(textured, other, interior, radius=1).item() < 0.2


def test_nmi_range_and_order(textured: torch.Tensor) -> None:
    f = textured.flatten(1)
    same = nmi(f, f).item()
    monotone = nmi(f, torch.exp(f / 30.0)).item()
    shuffled = nmi(f, f[:, torch.randperm(f.shape[1], generator=torch.Generator().manual_seed(2))]).item()
    assert 1.0 <= shuffled < monotone <= same <= 2.0
    assert same > 1.4 and monotone > same - 0.01 and shuffled < 1.1


def test_batch_items_are_independent(textured: torch.Tensor) -> None:
    f = textured.repeat(2, 1, 1, 1)
    m = torch.stack([textured[0], torch.flip(textured[0], dims=(0,))])
    for name in ("mse", "ncc", "lncc", "nmi"):
        both = dissimilarity(name, f, m)
        assert both[0].item() == pytest.approx(dissimilarity(name, textured, textured)[0].item(), abs=1e-6)
        assert both[1].item() > both[0].item() + 1e-3


@pytest.mark.parametrize("name", ["mse", "ncc", "lncc", "nmi"])
def test_gradients_match_finite_differences(name: str, textured: torch.Tensor) -> None:
    fixed = textured[:, :5, :6, :7]
    moving = (0.8 * fixed + 0.1 * torch.roll(fixed, 1, dims=1)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m: dissimilarity(name, fixed, m), (moving,), eps=1e-6, atol=1e-5)


def test_box_mean_equals_the_cube_average(textured: torch.Tensor) -> None:
    volumes = torch.stack([textured[0], textured[0] ** 2], dim=0)[None]
    cube = torch.nn.functional.avg_pool3d(volumes, 5, stride=1, padding=2, count_include_pad=True)
    assert torch.allclose(box_mean(volumes, 2), cube, atol=1e-9)


@pytest.mark.parametrize("radius", [1, 2])
def test_closed_form_lncc_gradient_equals_autograd(textured: torch.Tensor, radius: int) -> None:
    g = torch.Generator().manual_seed(3)
    fixed = textured.clone().requires_grad_(True)
    moving = (0.6 * textured + 20.0 * torch.rand(textured.shape, generator=g, dtype=torch.float64)).requires_grad_(True)
    mask = (torch.rand(textured.shape, generator=g) > 0.3).to(torch.float64)
    value = lncc(fixed, moving, mask, radius)
    value.sum().backward()
    closed, d_fixed, d_moving = lncc_with_gradient(fixed.detach(), moving.detach(), mask, radius)
    assert torch.allclose(closed, value.detach(), atol=1e-12)
    assert torch.allclose(d_fixed, fixed.grad, atol=1e-12)
    assert torch.allclose(d_moving, moving.grad, atol=1e-12)
    assert float(d_moving.abs().max()) > 1e-6


def test_empty_mask_is_a_processing_error() -> None:
    with pytest.raises(ProcessingError, match="metric mask"):
        ncc(torch.ones(1, 4), torch.ones(1, 4), torch.zeros(1, 4))
