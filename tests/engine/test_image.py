"""Tests of Image/Grid geometry, reorientation and NIfTI IO."""

from __future__ import annotations

import gzip
import math

import nibabel as nib
import nibabel.orientations as nio
import numpy as np
import pytest
import torch

from neurolearn_cli.atomic import write_nifti
from neurolearn_cli.engine.image import (
    Grid,
    Image,
    bounding_box,
    conform_grid,
    reorient_to_ras,
    world_grid,
)
from neurolearn_cli.engine.io import load_image, to_nifti
from neurolearn_cli.errors import InputError


def test_image_properties(smooth_image: Image) -> None:
    assert smooth_image.shape3 == (20, 22, 24)
    assert smooth_image.spacing == pytest.approx((1.5, 1.75, 2.0))
    assert smooth_image.n_volumes == 1
    four_d = smooth_image.with_data(torch.zeros(20, 22, 24, 5))
    assert four_d.n_volumes == 5 and four_d.grid.shape == (20, 22, 24)
    with pytest.raises(ValueError):
        smooth_image.with_data(torch.zeros(20, 22, 23))


def test_grid_equality(small_grid: Grid) -> None:
    same = Grid((7, 8, 9), small_grid.affine.clone())
    assert same == small_grid
    assert Grid((7, 8, 10), small_grid.affine) != small_grid
    moved = small_grid.affine.clone()
    moved[0, 3] += 1e-9
    assert Grid((7, 8, 9), moved) != small_grid


def test_world_grid_matches_affine(small_grid: Grid) -> None:
    world = world_grid(small_grid)
    assert world.shape == (7, 8, 9, 3)
    assert world[6, 7, 8].tolist() == pytest.approx([5.0, 8.5, 12.0])
    assert world[0, 0, 0].tolist() == pytest.approx([-7.0, -9.0, -12.0])


def _lia_image() -> Image:
    data = torch.arange(7 * 8 * 9, dtype=torch.float32).reshape(7, 8, 9)
    affine = torch.tensor(
        [[-2.0, 0, 0, 10], [0, 0, 3.0, -20], [0, -2.5, 0, 30], [0, 0, 0, 1]], dtype=torch.float64
    )
    return Image(data, affine)


def test_reorient_to_ras_keeps_world_positions() -> None:
    image = _lia_image()
    ras = reorient_to_ras(image)
    assert nio.aff2axcodes(ras.affine.numpy()) == ("R", "A", "S")
    assert ras.shape3 == (7, 9, 8)
    assert ras.spacing == pytest.approx((2.0, 3.0, 2.5))
    # Every value sits at the same world point before and after.
    before = world_grid(image.grid).reshape(-1, 3)[image.data.reshape(-1).long()]
    order = ras.data.reshape(-1).long()
    after = torch.empty_like(before)
    after[order] = world_grid(ras.grid).reshape(-1, 3)
    assert torch.allclose(before, after)
    assert reorient_to_ras(ras) is ras


def test_conform_grid_keeps_centre(smooth_image: Image) -> None:
    grid = conform_grid(smooth_image.grid, (1.0, 1.0, 1.0), (32, 34, 36))
    centre_in = world_grid(smooth_image.grid).mean(dim=(0, 1, 2))
    centre_out = world_grid(grid).mean(dim=(0, 1, 2))
    assert torch.allclose(centre_in, centre_out, atol=1e-4)
    assert grid.spacing == (1.0, 1.0, 1.0) and grid.shape == (32, 34, 36)


def test_nifti_round_trip_applies_scaling(tmp_path, device: torch.device) -> None:
    raw = np.arange(7 * 8 * 9, dtype=np.int16).reshape(7, 8, 9)
    affine = np.diag([2.0, 2.5, 3.0, 1.0])
    img = nib.Nifti1Image(raw, affine)
    img.header.set_slope_inter(0.5, 10.0)
    write_nifti(tmp_path / "in.nii.gz", img)
    image = load_image(tmp_path / "in.nii.gz", device)
    assert image.data.dtype == torch.float32
    assert image.data[6, 7, 8].item() == pytest.approx(503 * 0.5 + 10.0)
    assert image.spacing == pytest.approx((2.0, 2.5, 3.0))
    write_nifti(tmp_path / "out.nii.gz", to_nifti(image, header=img.header))
    again = load_image(tmp_path / "out.nii.gz", device)
    assert torch.equal(again.data, image.data)
    assert torch.allclose(again.affine, image.affine)


def _write(path, data, sform=None) -> None:
    img = nib.Nifti1Image(data, np.eye(4))
    if sform is not None:
        img.set_qform(None, code=0)
        img.set_sform(sform, code=1)
    write_nifti(path, img)


@pytest.mark.parametrize(
    "case, problem",
    [
        ("missing", "not found"),
        ("empty", "empty"),
        ("truncated", "cannot read"),
        ("nan", "NaN"),
        ("zeros", "all zero"),
        ("flat", "3D or 4D"),
        ("singular", "singular"),
    ],
)
def test_load_image_rejects_bad_files(
    tmp_path, device: torch.device, case: str, problem: str
) -> None:
    path = tmp_path / f"{case}.nii.gz"
    ones = np.ones((7, 8, 9), dtype=np.float32)
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        _write(path, ones)
        blob = gzip.compress(gzip.decompress(path.read_bytes()))
        path.write_bytes(blob[: len(blob) // 2])
    elif case == "nan":
        bad = ones.copy()
        bad[3, 4, 5] = math.nan
        _write(path, bad)
    elif case == "zeros":
        _write(path, np.zeros((7, 8, 9), dtype=np.float32))
    elif case == "flat":
        _write(path, np.ones((7, 8, 1), dtype=np.float32))
    elif case == "singular":
        _write(path, ones, np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(InputError, match=problem) as info:
        load_image(path, device)
    assert info.value.path == str(path)


@pytest.mark.realdata
def test_reorient_real_lia_scan(shared_data, device: torch.device) -> None:
    """AOMIC's T1w is stored LIA (uint8): after reorientation each voxel keeps its world position."""
    image = load_image(
        shared_data / "aomic" / "bids" / "sub-0001" / "anat" / "sub-0001_T1w.nii.gz", device
    )
    assert nio.aff2axcodes(image.affine.numpy()) == ("L", "I", "A")
    ras = reorient_to_ras(image)
    assert nio.aff2axcodes(ras.affine.numpy()) == ("R", "A", "S")
    gen = torch.Generator().manual_seed(0)
    voxels = torch.stack(
        [torch.randint(0, n, (2000,), generator=gen) for n in image.shape3], dim=-1
    )
    world = voxels.double() @ image.affine[:3, :3].T + image.affine[:3, 3]
    inv = torch.linalg.inv(ras.affine)
    target = torch.round(world @ inv[:3, :3].T + inv[:3, 3]).long()
    assert torch.equal(image.data[tuple(voxels.T)], ras.data[tuple(target.T)])
    assert float(image.data.sum()) == pytest.approx(float(ras.data.sum()))


def test_strided_grid_samples_every_step_th_voxel() -> None:
    from neurolearn_cli.engine.image import Grid

    affine = torch.tensor(
        [
            [0.0, -1.2, 0.1, 30.0],
            [1.1, 0.0, 0.0, -20.0],
            [0.0, 0.2, 1.3, 5.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
        dtype=torch.float64,
    )
    grid = Grid((7, 8, 9), affine)
    coarse = grid.strided(2)
    assert coarse.shape == (4, 4, 5)  # len(range(0, n, 2))
    ijk = torch.tensor([3.0, 1.0, 4.0, 1.0], dtype=torch.float64)
    assert torch.allclose(coarse.affine @ ijk, affine @ (ijk * torch.tensor([2.0, 2.0, 2.0, 1.0])))


def test_bounding_box_margins_clip_and_empty() -> None:
    mask = torch.zeros(10, 12, 14, dtype=torch.bool)
    mask[3:5, 0:2, 8:14] = True
    assert bounding_box(mask) == (slice(2, 6), slice(0, 3), slice(7, 14))
    assert bounding_box(mask, (0, 4, 2)) == (slice(3, 5), slice(0, 6), slice(6, 14))
    assert bounding_box(torch.zeros(4, 4, 4, dtype=torch.bool)) == (slice(0, 0),) * 3
