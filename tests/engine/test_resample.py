"""Tests of resampling: exact shifts, analytic ground truth, chains, 4D batching, labels."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from neurolearn_cli.engine import resample as resample_module
from neurolearn_cli.engine.image import Grid, Image, world_grid
from neurolearn_cli.engine.resample import resample, resample_labels
from neurolearn_cli.engine.transforms import AffineTransform, Chain, DisplacementField

ORDERS = ("nearest", "linear", "bspline", "sinc")


def _ramp(grid: Grid) -> Image:
    data = torch.arange(7 * 8 * 9, dtype=torch.float32).reshape(7, 8, 9)
    return Image(data, grid.affine)


@pytest.mark.parametrize("order", ORDERS)
def test_identity_returns_input(small_grid: Grid, order: str) -> None:
    image = _ramp(small_grid)
    out = resample(image, small_grid, order=order)
    assert torch.allclose(out.data, image.data, atol=1e-3)


@pytest.mark.parametrize("order", ORDERS)
def test_whole_voxel_shift_on_each_axis(small_grid: Grid, order: str) -> None:
    image = _ramp(small_grid)
    for axis in range(3):
        step = small_grid.affine[:3, axis].clone()
        shift = AffineTransform.rigid(torch.zeros(3), 2 * step)
        out = resample(image, small_grid, shift, order=order, fill=-1.0)
        n = small_grid.shape[axis]
        kept = out.data.narrow(axis, 0, n - 2)
        assert torch.allclose(kept, image.data.narrow(axis, 2, n - 2), atol=1e-3)
        assert bool((out.data.narrow(axis, n - 1, 1) == -1.0).all())


def test_rotation_matches_analytic_image(smooth_image: Image, blob_function: Callable) -> None:
    turn = AffineTransform.rigid(
        torch.tensor([0.1, -0.05, 0.2]), torch.tensor([1.0, -2.0, 0.5]), (-9.0, -4.0, 5.0)
    )
    truth = blob_function(turn.map_points(world_grid(smooth_image.grid).double()))
    inner = (slice(3, -3),) * 3
    errors = {
        order: float(
            (resample(smooth_image, smooth_image.grid, turn, order=order).data - truth)[inner]
            .abs()
            .max()
        )
        for order in ORDERS
    }
    # Peak 110, blob sigma 3.5 mm on ~2 mm voxels: linear error ~ h^2/8 * f'' ~ 5.
    assert errors["nearest"] < 25.0
    assert errors["linear"] < 6.0
    assert errors["bspline"] < 0.25
    assert errors["sinc"] < 0.25


def test_bspline_reproduces_cubic_polynomial_in_the_interior(small_grid: Grid) -> None:
    grid = Grid((24, 26, 28), small_grid.affine)
    index = world_grid(Grid(grid.shape, torch.eye(4, dtype=torch.float64)))
    cubic = lambda v: 0.01 * v[..., 0] ** 3 - 0.2 * v[..., 1] ** 2 + v[..., 0] * v[..., 2]  # noqa: E731
    image = Image(cubic(index), grid.affine)
    half = AffineTransform.rigid(
        torch.zeros(3), 0.5 * (grid.affine[:3, :3] @ torch.ones(3, dtype=torch.float64))
    )
    out = resample(image, grid, half, order="bspline")
    truth = cubic(index + 0.5)
    assert torch.allclose(
        out.data[9:-10, 9:-10, 9:-10], truth[9:-10, 9:-10, 9:-10], rtol=1e-4, atol=1e-3
    )


@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_sinc_keeps_the_variance_of_white_noise_that_a_cubic_spline_smooths(fraction: float) -> None:
    # Sub-voxel shifts of white noise: every interpolator with a short kernel averages
    # neighbours (linear keeps 1/8 of the variance at half a voxel); band-limited
    # interpolation keeps all frequencies but the Nyquist one.
    affine = torch.diag(torch.tensor([3.0, 3.0, 3.3, 1.0], dtype=torch.float64))
    noise = Image(torch.randn(32, 30, 28, generator=torch.Generator().manual_seed(0)), affine)
    shift = AffineTransform.rigid(torch.zeros(3), affine[:3, :3] @ torch.full((3,), fraction, dtype=torch.float64))
    kept = {
        order: float(resample(noise, noise.grid, shift, order=order).data[4:-4, 4:-4, 4:-4].var())
        for order in ("bspline", "sinc")
    }
    assert kept["sinc"] > 0.95
    assert kept["bspline"] < 0.7


def test_chain_once_equals_resampling_twice(smooth_image: Image, blob_function: Callable) -> None:
    first = AffineTransform.rigid(
        torch.tensor([0.0, 0.0, 0.15]), torch.tensor([1.0, 0.0, 0.0]), (-9.0, -4.0, 5.0)
    )
    field = torch.zeros(*smooth_image.shape3, 3)
    field[..., 2] = 1.25
    warp = DisplacementField(field, smooth_image.grid)
    once = resample(smooth_image, smooth_image.grid, Chain([warp, first]), order="bspline")
    twice = resample(
        resample(smooth_image, smooth_image.grid, first, order="bspline"),
        smooth_image.grid,
        warp,
        order="bspline",
    )
    inner = (slice(4, -4),) * 3
    assert torch.allclose(once.data[inner], twice.data[inner], atol=0.5)
    truth = blob_function(Chain([warp, first]).map_points(world_grid(smooth_image.grid).double()))
    assert float((once.data[inner] - truth[inner]).abs().max()) < 0.5


def test_displacement_and_affine_paths_agree(smooth_image: Image) -> None:
    shift = torch.tensor([1.3, -0.7, 2.1])
    field = torch.zeros(*smooth_image.shape3, 3) + shift
    by_field = resample(
        smooth_image, smooth_image.grid, DisplacementField(field, smooth_image.grid)
    )
    by_matrix = resample(
        smooth_image, smooth_image.grid, AffineTransform.rigid(torch.zeros(3), shift.double())
    )
    assert torch.allclose(by_field.data, by_matrix.data, atol=1e-3)


@pytest.mark.parametrize("order", ORDERS)
def test_4d_batched_equals_per_volume(
    smooth_image: Image, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    volumes = torch.stack([smooth_image.data * (1 + t) for t in range(3)], dim=-1)
    image = smooth_image.with_data(volumes)
    angles = torch.tensor([[0.0, 0.0, 0.05 * t] for t in range(3)], dtype=torch.float64)
    shifts = torch.tensor([[0.5 * t, -0.3 * t, 0.2] for t in range(3)], dtype=torch.float64)
    motion = AffineTransform.rigid(angles, shifts, (-9.0, -4.0, 5.0))
    # Two volumes per pass: the chunked loop must stitch volumes back in order.
    monkeypatch.setattr(resample_module, "_MAX_POINTS", 2 * 20 * 22 * 24)
    out = resample(image, smooth_image.grid, motion, order=order)
    assert out.data.shape == (20, 22, 24, 3)
    for t in range(3):
        alone = resample(
            smooth_image.with_data(volumes[..., t]),
            smooth_image.grid,
            AffineTransform(motion.matrix[t]),
            order=order,
        )
        assert torch.allclose(out.data[..., t], alone.data, atol=1e-4)
    shared = resample(image, smooth_image.grid, AffineTransform(motion.matrix[2]), order=order)
    assert torch.allclose(shared.data[..., 2], 3 * shared.data[..., 0], atol=1e-3)
    one = resample(smooth_image, smooth_image.grid, motion.select_volumes(1, 2), order=order)
    assert one.data.shape == (20, 22, 24, 1)


def test_batched_transform_with_warp_chain(smooth_image: Image) -> None:
    image = smooth_image.with_data(torch.stack([smooth_image.data] * 3, dim=-1))
    shifts = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 2.0, 0]], dtype=torch.float64)
    motion = AffineTransform.rigid(torch.zeros(3, 3, dtype=torch.float64), shifts)
    field = torch.zeros(*smooth_image.shape3, 3)
    field[..., 0] = 0.5
    chain = Chain([DisplacementField(field, smooth_image.grid), motion])
    out = resample(image, smooth_image.grid, chain)
    # Translations commute: the per-volume part first takes the volume-by-volume path.
    reversed_order = resample(image, smooth_image.grid, Chain([motion, DisplacementField(field, smooth_image.grid)]))
    assert torch.allclose(reversed_order.data, out.data, atol=1e-3)
    for t in range(3):
        expected = resample(
            smooth_image,
            smooth_image.grid,
            AffineTransform.rigid(
                torch.zeros(3), shifts[t] + torch.tensor([0.5, 0, 0], dtype=torch.float64)
            ),
        )
        assert torch.allclose(out.data[..., t], expected.data, atol=1e-3)


def test_resample_rejects_mismatched_volumes(smooth_image: Image) -> None:
    image = smooth_image.with_data(torch.stack([smooth_image.data] * 3, dim=-1))
    with pytest.raises(ValueError, match="3 volumes"):
        resample(image, smooth_image.grid, AffineTransform.identity(torch.device("cpu"), 4))
    with pytest.raises(ValueError, match="order"):
        resample(smooth_image, smooth_image.grid, order="cubic")  # type: ignore[arg-type]


def test_resample_labels_keeps_values(smooth_image: Image) -> None:
    labels = torch.zeros(smooth_image.shape3)
    labels[smooth_image.data > 20] = 7
    labels[smooth_image.data > 60] = 3
    image = smooth_image.with_data(labels)
    same = resample_labels(image, smooth_image.grid)
    assert torch.equal(same.data, labels)
    turn = AffineTransform.rigid(
        torch.tensor([0.0, 0.0, math.radians(7)]), torch.tensor([0.7, 0.3, -0.4])
    )
    moved = resample_labels(image, smooth_image.grid, turn)
    assert set(torch.unique(moved.data).tolist()) == {0.0, 3.0, 7.0}
    nearest = resample(image, smooth_image.grid, turn, order="nearest")
    assert float((moved.data == nearest.data).float().mean()) > 0.95
    with pytest.raises(ValueError, match="non-integer"):
        resample_labels(smooth_image, smooth_image.grid)


def test_resample_labels_equals_per_label_linear_vote() -> None:
    """The 8-neighbour vote picks what interpolating every label's indicator would."""
    generator = torch.Generator().manual_seed(3)
    coarse = torch.randint(0, 40, (6, 5, 7), generator=generator).float()
    labels = coarse.repeat_interleave(3, 0).repeat_interleave(3, 1).repeat_interleave(3, 2)  # blocky parcels
    image = Image(labels, torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0], dtype=torch.float64)))
    target = Grid((23, 17, 25), torch.tensor([[1.3, 0, 0, -3.0], [0, 1.1, 0, 2.0], [0, 0, 0.9, -1.0], [0, 0, 0, 1]],
                                             dtype=torch.float64))
    turn = AffineTransform.rigid(torch.tensor([0.05, -0.1, 0.2]), torch.tensor([0.7, 0.3, -0.4]))
    voted = resample_labels(image, target, turn).data
    values = torch.unique(labels)
    scores = torch.stack([resample(image.with_data((labels == v).float()), target, turn).data for v in values])
    top, index = scores.max(dim=0)
    expected = torch.where(top > 0, values[index], torch.zeros(()))
    decided = (scores >= top - 1e-5).sum(dim=0) == 1  # no near-tie between two labels
    assert decided.float().mean() > 0.8
    assert torch.equal(voted[decided], expected[decided])
    tied = scores >= top - 1e-5  # at near-ties: one of the tied labels
    chosen = (values.view(-1, 1, 1, 1) == voted).float().argmax(dim=0)
    assert bool(tied.gather(0, chosen.unsqueeze(0)).all())
