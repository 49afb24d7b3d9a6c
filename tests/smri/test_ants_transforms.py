"""The normalization's transforms, written as ITK composites, applied by ANTs (antspyx) give our resampling.

smri writes ``from-T1w_to-<template>_mode-image_xfm.h5`` (and the inverse)
with the engine's ITK writer; fMRIPrep users apply them with
``antsApplyTransforms``. Here a small subject (the 4 mm template moved by a
known rotation and shift onto an oblique LIA grid) is normalized with a short
SyN schedule, both transforms are written, and ANTs' resampling through the
files must match ours inside the brain.
"""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
import torch

from neurolearn_cli.engine.image import Grid, Image
from neurolearn_cli.engine.io import to_nifti
from neurolearn_cli.engine.itkio import write_transform
from neurolearn_cli.engine.registration import SynSettings
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.engine.transforms import AffineTransform
from neurolearn_cli.smri.normalize import normalize

ants = pytest.importorskip("ants")


def _subject_grid(device: torch.device) -> Grid:
    """A 3 mm LIA grid (as FreeSurfer stores images), tilted 10 degrees about x, covering the template brain."""
    lia = torch.tensor([[-3.0, 0, 0], [0, 0, 3.0], [0, -3.0, 0]], dtype=torch.float64)
    angle = math.radians(10.0)
    tilt = torch.tensor([[1.0, 0, 0], [0, math.cos(angle), -math.sin(angle)], [0, math.sin(angle), math.cos(angle)]],
                        dtype=torch.float64)
    affine = torch.eye(4, dtype=torch.float64)
    affine[:3, :3] = tilt @ lia
    shape = (60, 64, 72)
    centre = affine[:3, :3] @ ((torch.tensor(shape, dtype=torch.float64) - 1) / 2)
    affine[:3, 3] = torch.tensor([0.0, -18.0, 15.0], dtype=torch.float64) - centre
    return Grid(shape, affine.to(device))


def _known_affine(device: torch.device) -> AffineTransform:
    """Template -> subject map: 6 degrees about z, 5 % larger, shifted (4, -3, 6) mm."""
    angle = math.radians(6.0)
    matrix = torch.eye(4, dtype=torch.float64)
    matrix[:3, :3] = 1.05 * torch.tensor(
        [[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]], dtype=torch.float64
    )
    matrix[:3, 3] = torch.tensor([4.0, -3.0, 6.0], dtype=torch.float64)
    return AffineTransform(matrix.to(device))


def _save(image: Image, path) -> str:
    nib.save(to_nifti(image), path)
    return str(path)


def _correlation(a: np.ndarray, b: np.ndarray, inside: np.ndarray) -> float:
    return float(np.corrcoef(a[inside], b[inside])[0, 1])


@pytest.fixture(scope="module")
def normalized(template_4mm):
    device = torch.device("cpu")
    truth = _known_affine(device)
    brain = resample(template_4mm.t1w.with_data(template_4mm.t1w.data * (template_4mm.mask.data > 0.5)),
                     _subject_grid(device), truth.inverse())
    start = AffineTransform(truth.matrix.clone())
    start.matrix[:3, 3] += torch.tensor([2.0, 2.0, -2.0], dtype=torch.float64)
    norm = normalize(brain, template_4mm, start, settings=SynSettings(levels_mm=(8.0,), iterations=(15,)))
    return brain, norm


def test_ants_applies_the_forward_and_inverse_composites_as_we_do(normalized, template_4mm, tmp_path) -> None:
    brain, norm = normalized
    displacement = norm.t1w_to_template.transforms[0].displacement
    assert float(displacement.norm(dim=-1).max()) > 0.5
    forward = write_transform(norm.t1w_to_template, tmp_path / "from-T1w_to-MNI_mode-image_xfm.h5")
    inverse = write_transform(norm.template_to_t1w, tmp_path / "from-MNI_to-T1w_mode-image_xfm.h5")
    template_file = _save(template_4mm.t1w, tmp_path / "template.nii.gz")
    brain_file = _save(brain, tmp_path / "brain.nii.gz")

    ours = resample(brain, template_4mm.t1w.grid, norm.t1w_to_template).data.numpy()
    theirs = ants.apply_transforms(ants.image_read(template_file), ants.image_read(brain_file),
                                   transformlist=[str(forward)], interpolator="linear").numpy()
    inside = template_4mm.mask.data.numpy() > 0.5
    assert _correlation(ours, theirs, inside) > 0.999

    ours_back = resample(template_4mm.t1w, brain.grid, norm.template_to_t1w).data.numpy()
    theirs_back = ants.apply_transforms(ants.image_read(brain_file), ants.image_read(template_file),
                                        transformlist=[str(inverse)], interpolator="linear").numpy()
    assert _correlation(ours_back, theirs_back, brain.data.numpy() > 0.1) > 0.999
