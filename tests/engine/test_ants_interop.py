"""antspyx applies the transforms we write, and we apply the transforms ANTs writes, identically.

Images: nilearn's MNI152 T1 at 4 mm (moving) and an oblique 4.4 mm grid (fixed).
Agreement is measured inside the brain (ANTs' output above 20% of its maximum).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from neurolearn_cli.atomic import write_nifti
from neurolearn_cli.engine.image import Grid, Image, world_grid
from neurolearn_cli.engine.io import load_image, to_nifti
from neurolearn_cli.engine.itkio import read_transform, write_transform
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.engine.transforms import AffineTransform, Chain, DisplacementField

try:
    import ants
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("antspyx is not installed", allow_module_level=True)


def _fixed_grid(moving: Image) -> Grid:
    angle = math.radians(8.0)
    affine = torch.eye(4, dtype=torch.float64)
    affine[:3, :3] = 4.4 * torch.tensor(
        [
            [math.cos(angle), -math.sin(angle), 0.0],
            [math.sin(angle), math.cos(angle), 0.0],
            [0.0, 0.0, 1.0],
        ],
        dtype=torch.float64,
    )
    shape = (44, 52, 43)
    centre = world_grid(moving.grid).mean(dim=(0, 1, 2)).double()
    affine[:3, 3] = centre - affine[:3, :3] @ ((torch.tensor(shape, dtype=torch.float64) - 1) / 2)
    return Grid(shape, affine)


@pytest.fixture(scope="module")
def scene(mni_4mm: Image, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Moving and fixed images on disk and as ANTs images."""
    folder = tmp_path_factory.mktemp("ants")
    fixed = resample(mni_4mm, _fixed_grid(mni_4mm))
    write_nifti(folder / "moving.nii.gz", to_nifti(mni_4mm))
    write_nifti(folder / "fixed.nii.gz", to_nifti(fixed))
    return {
        "folder": folder,
        "moving": load_image(folder / "moving.nii.gz", torch.device("cpu")),
        "fixed": load_image(folder / "fixed.nii.gz", torch.device("cpu")),
        "ants_moving": ants.image_read(str(folder / "moving.nii.gz")),
        "ants_fixed": ants.image_read(str(folder / "fixed.nii.gz")),
    }


def _agreement(ants_image, ours: Image) -> tuple[float, float]:
    """Correlation in the brain and largest difference relative to the brain maximum."""
    reference = torch.from_numpy(ants_image.numpy().astype(np.float32))
    assert reference.shape == ours.data.shape
    brain = reference > 0.2 * reference.max()
    a, b = reference[brain].double(), ours.data[brain].double()
    corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    return corr, float((a - b).abs().max() / a.max())


def _smooth_field(grid: Grid, amplitude_mm: float) -> torch.Tensor:
    world = world_grid(grid).double()
    centre = world.mean(dim=(0, 1, 2))
    weight = torch.exp(-0.5 * ((world - centre) ** 2).sum(-1) / 30.0**2)
    direction = torch.tensor([0.8, -0.6, 0.5], dtype=torch.float64)
    return (amplitude_mm * weight[..., None] * direction).float()


def test_ants_applies_our_written_transforms(scene: dict) -> None:
    fixed, moving, folder = scene["fixed"], scene["moving"], scene["folder"]
    centre = world_grid(fixed.grid).mean(dim=(0, 1, 2)).double()
    affine = AffineTransform.rigid(
        torch.tensor([0.08, -0.05, 0.12]), torch.tensor([4.0, -3.0, 2.5]), centre
    )
    affine = AffineTransform(
        affine.matrix @ torch.diag(torch.tensor([1.05, 0.97, 1.02, 1.0], dtype=torch.float64))
    )
    warp = DisplacementField(_smooth_field(fixed.grid, 6.0), fixed.grid)
    ours = resample(moving, fixed.grid, Chain([warp, affine]))
    files = {
        "mat": write_transform(affine, folder / "ours_affine.mat"),
        "txt": write_transform(affine, folder / "ours_affine.txt"),
        "warp": write_transform(warp, folder / "ours_warp.nii.gz"),
        "h5": write_transform(Chain([warp, affine]), folder / "ours_composite.h5"),
    }
    runs = {
        "mat": [files["warp"], files["mat"]],
        "txt": [files["warp"], files["txt"]],
        "h5": [files["h5"]],
    }
    for name, transforms in runs.items():
        theirs = ants.apply_transforms(
            scene["ants_fixed"],
            scene["ants_moving"],
            [str(t) for t in transforms],
            interpolator="linear",
        )
        corr, worst = _agreement(theirs, ours)
        assert corr > 0.999, name
        assert worst < 0.02, name
    # The order matters: the reversed chain is measurably worse than the ANTs order.
    swapped = resample(moving, fixed.grid, Chain([affine, warp]))
    theirs = ants.apply_transforms(scene["ants_fixed"], scene["ants_moving"], [str(files["h5"])])
    assert _agreement(theirs, swapped)[1] > 5 * _agreement(theirs, ours)[1]


@pytest.fixture(scope="module")
def ants_registration(scene: dict) -> dict:
    """A short ANTs SyN run (fixed <- moving), written both as separate files and as a composite .h5."""
    kwargs = {
        "type_of_transform": "SyN",
        "reg_iterations": (10, 5, 0),
        "aff_iterations": (20, 10, 0, 0),
    }
    separate = ants.registration(
        scene["ants_fixed"], scene["ants_moving"], outprefix=str(scene["folder"] / "syn_"), **kwargs
    )
    composite = ants.registration(
        scene["ants_fixed"],
        scene["ants_moving"],
        outprefix=str(scene["folder"] / "comp_"),
        write_composite_transform=True,
        **kwargs,
    )
    return {"separate": separate, "composite": composite}


def test_we_reproduce_ants_with_its_written_transforms(
    scene: dict, ants_registration: dict
) -> None:
    fixed, moving = scene["fixed"], scene["moving"]
    for run in ants_registration.values():
        files = run["fwdtransforms"]
        files = [files] if isinstance(files, str) else files
        theirs = ants.apply_transforms(scene["ants_fixed"], scene["ants_moving"], files)
        ours = resample(moving, fixed.grid, Chain([read_transform(f) for f in files]))
        corr, worst = _agreement(theirs, ours)
        assert corr > 0.999 and worst < 0.02, files


def test_inverse_of_ants_transforms(scene: dict, ants_registration: dict) -> None:
    fixed, moving = scene["fixed"], scene["moving"]
    affine_file, inverse_warp_file = ants_registration["separate"]["invtransforms"]
    theirs = ants.apply_transforms(
        scene["ants_moving"],
        scene["ants_fixed"],
        [affine_file, inverse_warp_file],
        whichtoinvert=[True, False],
    )
    chain = Chain([read_transform(affine_file).inverse(), read_transform(inverse_warp_file)])
    ours = resample(fixed, moving.grid, chain)
    corr, worst = _agreement(theirs, ours)
    assert corr > 0.999 and worst < 0.02
    assert Path(affine_file).suffix == ".mat"
    assert nib.load(inverse_warp_file).shape[3:] == (1, 3)
