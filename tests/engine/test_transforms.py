"""Tests of transform classes: known maps, composition order, inverses, batching."""

from __future__ import annotations

import math

import pytest
import torch

from neurolearn_cli.engine.image import Grid, world_grid
from neurolearn_cli.engine.transforms import (
    AffineTransform,
    Chain,
    DisplacementField,
    VelocityField,
    as_matrix,
)


def _grid() -> Grid:
    affine = torch.diag(torch.tensor([2.0, 2.25, 2.5, 1.0], dtype=torch.float64))
    affine[:3, 3] = torch.tensor([-19.0, -23.0, -27.0], dtype=torch.float64)
    return Grid((20, 22, 24), affine)


def _bump_field(grid: Grid, amplitude_mm: float) -> torch.Tensor:
    """A smooth displacement: Gaussian bump (sigma 12 mm) pushing along (1, -0.5, 0.7)."""
    world = world_grid(grid).double()
    weight = torch.exp(-0.5 * (world**2).sum(-1) / 12.0**2)
    direction = torch.tensor([1.0, -0.5, 0.7], dtype=torch.float64)
    return (amplitude_mm * weight[..., None] * direction).float()


def test_rigid_maps_known_points() -> None:
    quarter = AffineTransform.rigid(
        torch.tensor([0.0, 0.0, math.pi / 2]), torch.tensor([1.0, 2.0, 3.0])
    )
    out = quarter.map_points(torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))
    assert out[0].tolist() == pytest.approx([1.0, 3.0, 3.0])
    centred = AffineTransform.rigid(
        torch.tensor([math.pi / 2, 0.0, 0.0]), torch.zeros(3), (0.0, 5.0, 5.0)
    )
    assert centred.map_points(
        torch.tensor([0.0, 5.0, 5.0], dtype=torch.float64)
    ).tolist() == pytest.approx([0.0, 5.0, 5.0])


def test_rigid_parameters_round_trip_batched() -> None:
    gen = torch.Generator().manual_seed(0)
    angles = (torch.rand(6, 3, generator=gen, dtype=torch.float64) - 0.5) * 0.6
    trans = (torch.rand(6, 3, generator=gen, dtype=torch.float64) - 0.5) * 20
    centre = (10.0, -4.0, 7.0)
    motion = AffineTransform.rigid(angles, trans, centre)
    assert motion.n_volumes == 6
    got_angles, got_trans = motion.rigid_parameters(centre)
    assert torch.allclose(got_angles, angles, atol=1e-12)
    assert torch.allclose(got_trans, trans, atol=1e-10)
    assert motion.select_volumes(2, 4).matrix.shape == (2, 4, 4)


def test_batched_affine_maps_each_volume() -> None:
    shifts = torch.tensor([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]], dtype=torch.float64)
    motion = AffineTransform.rigid(torch.zeros(3, 3, dtype=torch.float64), shifts)
    points = torch.zeros(1, 5, 3, dtype=torch.float64)
    mapped = motion.map_points(points)
    assert mapped.shape == (3, 5, 3)
    assert torch.equal(mapped[:, 0], shifts)
    with pytest.raises(ValueError, match="per-volume"):
        motion.map_points(torch.zeros(2, 5, 3, dtype=torch.float64))


def test_chain_order_and_inverse() -> None:
    first = AffineTransform.rigid(torch.tensor([0.0, 0.0, math.pi / 2]), torch.zeros(3))
    second = AffineTransform.rigid(torch.zeros(3), torch.tensor([10.0, 0.0, 0.0]))
    chain = Chain([first, second])
    point = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert chain.map_points(point).tolist() == pytest.approx([10.0, 1.0, 0.0])
    assert torch.allclose(as_matrix(chain, point.device), second.matrix @ first.matrix)
    assert torch.allclose(chain.inverse().map_points(chain.map_points(point)), point)


@pytest.mark.parametrize(
    "matrix, problem",
    [
        (torch.diag(torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)), "singular"),
        (torch.full((4, 4), math.nan, dtype=torch.float64), "NaN"),
        (torch.eye(3, dtype=torch.float64), r"\(4, 4\)"),
    ],
)
def test_affine_rejects_bad_matrices(matrix: torch.Tensor, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        AffineTransform(matrix)


def test_chain_rejects_mismatched_batches() -> None:
    with pytest.raises(ValueError, match="disagree"):
        Chain(
            [
                AffineTransform.identity(torch.device("cpu"), 3),
                AffineTransform.identity(torch.device("cpu"), 4),
            ]
        )


def test_displacement_field_interpolates_and_is_zero_outside() -> None:
    grid = _grid()
    field = torch.zeros(20, 22, 24, 3)
    field[..., 0] = 1.5
    warp = DisplacementField(field, grid)
    inside = torch.tensor([[0.3, -2.0, 4.1]])
    outside = torch.tensor([[100.0, 0.0, 0.0]])
    assert warp.map_points(inside)[0].tolist() == pytest.approx([1.8, -2.0, 4.1])
    assert warp.map_points(outside)[0].tolist() == pytest.approx([100.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="shape"):
        DisplacementField(torch.zeros(20, 22, 23, 3), grid)
    field[1, 2, 3, 0] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        DisplacementField(field, grid)


def test_displacement_inverse_is_identity_within_005_voxel() -> None:
    grid = _grid()
    warp = DisplacementField(_bump_field(grid, 3.0), grid)
    points = world_grid(grid)[3:-3, 3:-3, 3:-3]
    for chain in (Chain([warp, warp.inverse()]), Chain([warp.inverse(), warp])):
        error = (chain.map_points(points) - points).norm(dim=-1).max()
        assert error < 0.05 * 2.0
    assert (warp.map_points(points) - points).norm(dim=-1).max() > 3.5


def test_velocity_exp_inverse_and_translation() -> None:
    grid = _grid()
    svf = VelocityField(_bump_field(grid, 3.0), grid)
    points = world_grid(grid)[3:-3, 3:-3, 3:-3]
    error = (Chain([svf, svf.inverse()]).map_points(points) - points).norm(dim=-1).max()
    assert error < 0.05 * 2.0
    constant = torch.zeros(20, 22, 24, 3)
    constant[..., 1] = -2.0
    shift = VelocityField(constant, grid).exp()
    centre = world_grid(grid)[8:12, 8:12, 8:12]
    assert torch.allclose(shift.map_points(centre) - centre, constant[8:12, 8:12, 8:12], atol=1e-5)
