"""Building blocks of the registration engine: centre of mass, sample thinning, mask dilation."""

from __future__ import annotations

import torch

from neurolearn_cli.engine.registration.init import center_of_mass
from neurolearn_cli.engine.registration.pyramid import dilate
from neurolearn_cli.engine.registration.sampler import FixedSamples
from neurolearn_cli.engine.registration.space import apply_matrix, index_points


def test_center_of_mass_from_marginals_equals_the_weighted_mean() -> None:
    g = torch.Generator().manual_seed(4)
    data = torch.rand(7, 8, 9, generator=g) - 0.2  # some negatives, which count as zero
    mask = (torch.rand(7, 8, 9, generator=g) > 0.4).float()
    affine = torch.tensor([[1.1, 0.1, 0.0, 3.0], [0.0, 0.9, 0.2, -4.0], [0.1, 0.0, 1.3, 5.0], [0, 0, 0, 1]],
                          dtype=torch.float64)
    weights = data.to(torch.float64).clamp(min=0) * mask
    expected = (weights.unsqueeze(-1) * index_points((7, 8, 9), data.device)).sum((0, 1, 2)) / weights.sum()
    assert torch.allclose(center_of_mass(data, affine, mask), apply_matrix(affine, expected), atol=1e-9)


def test_thinned_samples_are_a_regular_subset_within_the_cap() -> None:
    fixed = torch.arange(7 * 8 * 9, dtype=torch.float32).reshape(7, 8, 9)
    mask = torch.zeros(7, 8, 9)
    mask[1:6, 2:7, 1:8] = 1.0
    samples = FixedSamples.build(fixed, mask, as_grid=False)
    thin = samples.thinned(40)
    assert samples.values.shape[1] == 175 and thin.values.shape[1] == 35  # every 5th of 175
    assert torch.equal(thin.values, samples.values[:, ::5])
    assert torch.equal(thin.points, samples.points[::5])
    assert samples.thinned(None) is samples and samples.thinned(175) is samples
    grid = FixedSamples.build(fixed, mask, as_grid=True)
    assert grid.thinned(10) is grid


def test_separable_dilation_equals_the_cube() -> None:
    mask = (torch.rand(1, 1, 7, 8, 9, generator=torch.Generator().manual_seed(5)) > 0.95).float()
    cube = torch.nn.functional.max_pool3d(mask, 5, stride=1, padding=2)
    assert torch.equal(dilate(mask, 2), cube)
