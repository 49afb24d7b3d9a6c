"""Shared fixtures for the engine tests: small smooth images with axes that all differ."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from neurolearn_cli.engine.image import Grid, Image


@pytest.fixture
def device() -> torch.device:
    """Tests run on the CPU; the code under test only uses the device it is given."""
    return torch.device("cpu")


def oblique_affine(spacing: tuple[float, float, float], angle_deg: float = 10.0) -> torch.Tensor:
    """A voxel-to-world affine rotated about z, with anisotropic voxels and an offset."""
    a = math.radians(angle_deg)
    rot = torch.tensor(
        [[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )
    affine = torch.eye(4, dtype=torch.float64)
    affine[:3, :3] = rot @ torch.diag(torch.tensor(spacing, dtype=torch.float64))
    affine[:3, 3] = torch.tensor([-20.0, -25.0, -18.0], dtype=torch.float64)
    return affine


def blobs(world: torch.Tensor) -> torch.Tensor:
    """Two anisotropic Gaussian blobs (peaks 100 and 60) at world points (..., 3) in mm."""
    world = world.to(torch.float64)
    c1 = torch.tensor([-8.0, -5.5, 6.0], dtype=torch.float64)
    c2 = torch.tensor([-13.0, -1.0, 3.0], dtype=torch.float64)
    d1 = (world - c1) / torch.tensor([5.0, 6.0, 4.5], dtype=torch.float64)
    d2 = (world - c2) / 3.5
    return (
        100.0 * torch.exp(-0.5 * (d1**2).sum(-1)) + 60.0 * torch.exp(-0.5 * (d2**2).sum(-1))
    ).float()


def smooth_volume(shape: tuple[int, int, int], affine: torch.Tensor) -> torch.Tensor:
    """:func:`blobs` sampled at the voxel centres of a grid, float32."""
    axes = [torch.arange(n, dtype=torch.float64) for n in shape]
    index = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    return blobs(index @ affine[:3, :3].T + affine[:3, 3])


@pytest.fixture
def blob_function() -> Callable[[torch.Tensor], torch.Tensor]:
    """The analytic image behind ``smooth_image``: ground truth at any world point."""
    return blobs


@pytest.fixture
def smooth_image() -> Image:
    """A smooth 20x22x24 image, 1.5x1.75x2 mm voxels, rotated 10 degrees about z."""
    affine = oblique_affine((1.5, 1.75, 2.0))
    return Image(smooth_volume((20, 22, 24), affine), affine)


@pytest.fixture
def small_grid() -> Grid:
    """A 7x8x9 grid with 2x2.5x3 mm voxels, axis-aligned."""
    affine = torch.diag(torch.tensor([2.0, 2.5, 3.0, 1.0], dtype=torch.float64))
    affine[:3, 3] = torch.tensor([-7.0, -9.0, -12.0], dtype=torch.float64)
    return Grid((7, 8, 9), affine)


@pytest.fixture(scope="session")
def mni_4mm() -> Image:
    """nilearn's MNI152 2009 T1 template, block-averaged 4x4x4 (anti-aliased) to 49x58x47 at 4 mm."""
    import nibabel as nib
    import nilearn
    import numpy as np

    path = (
        Path(nilearn.__file__).parent
        / "datasets"
        / "data"
        / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    )
    if not path.is_file():
        pytest.skip(f"nilearn's MNI152 template is missing: {path}")
    img = nib.load(path)
    data = torch.from_numpy(img.get_fdata(dtype=np.float32))[:196, :232, :188]
    small = torch.nn.functional.avg_pool3d(data[None, None], 4)[0, 0]
    affine = torch.from_numpy(img.affine.copy())
    affine[:3, 3] += affine[:3, :3] @ torch.full((3,), 1.5, dtype=torch.float64)
    affine[:3, :3] *= 4
    return Image(small.contiguous(), affine)
