"""Building blocks of the registration engine: centre of mass, sample thinning, sampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from neurolearn_cli.engine._sampling import grid_sample_threaded
from neurolearn_cli.engine.geometry import center_of_mass, index_grid
from neurolearn_cli.engine.registration.sampler import FixedSamples
from neurolearn_cli.engine.registration.space import apply_matrix
from neurolearn_cli.engine.registration.syn import _axis_coords, _AxisGrid


def test_center_of_mass_from_marginals_equals_the_weighted_mean() -> None:
    g = torch.Generator().manual_seed(4)
    data = torch.rand(7, 8, 9, generator=g) - 0.2  # some negatives, which count as zero
    mask = (torch.rand(7, 8, 9, generator=g) > 0.4).float()
    affine = torch.tensor([[1.1, 0.1, 0.0, 3.0], [0.0, 0.9, 0.2, -4.0], [0.1, 0.0, 1.3, 5.0], [0, 0, 0, 1]],
                          dtype=torch.float64)
    weights = data.to(torch.float64).clamp(min=0) * mask
    expected = (weights.unsqueeze(-1) * index_grid((7, 8, 9), data.device)).sum((0, 1, 2)) / weights.sum()
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


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threaded_grid_sample_equals_one_call(threads: int) -> None:
    g = torch.Generator().manual_seed(6)
    volume = torch.randn(1, 4, 7, 8, 9, generator=g)
    points = torch.rand(1, 13, 11, 10, 3, generator=g) * 2.4 - 1.2  # some outside
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for padding in ("zeros", "border"):
            expected = F.grid_sample(volume, points, align_corners=True, padding_mode=padding)
            assert torch.equal(grid_sample_threaded(volume, points, padding_mode=padding), expected)
    finally:
        torch.set_num_threads(before)


def test_axis_grid_interpolates_like_grid_sample_and_splats_as_its_adjoint() -> None:
    g = torch.Generator().manual_seed(7)
    field = torch.randn(1, 3, 5, 6, 7, generator=g, dtype=torch.float64).float()
    # an axis-aligned grid of points in the field's normalized frame (reversed axes), as a pyramid level's voxels
    theta = torch.tensor([[[0.8, 0, 0, 0.05], [0, 0.9, 0, -0.1], [0, 0, 0.7, 0.02]]])
    points = F.affine_grid(theta, [1, 1, 9, 10, 11], align_corners=True)
    axes = _AxisGrid.at(_axis_coords(points), field.shape[2:])
    expected = F.grid_sample(field, points, align_corners=True, padding_mode="border")[0]
    assert torch.allclose(axes.interpolate(field[0]), expected, atol=1e-5)
    values = torch.randn(3, 9, 10, 11, generator=g)
    lhs = (axes.interpolate(field[0]) * values).sum()
    rhs = (field[0] * axes.splat(values)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-4)
