import math

import numpy as np
import pytest
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.io import load_image
from neurolearn_cli.engine.morphology import dilate, erode, fill_holes, largest_component
from neurolearn_cli.engine.threshold import otsu_threshold
from neurolearn_cli.engine.transforms import AffineTransform
from neurolearn_cli.fmri.masking import intensity_mask
from neurolearn_cli.fmri.nonsteady import detect_nonsteady
from neurolearn_cli.fmri.reference import bold_reference

AFFINE = torch.diag(torch.tensor([3.0, 3.0, 3.5, 1.0], dtype=torch.float64))


def _ellipsoid(shape=(34, 38, 30), radii=(13.0, 15.0, 11.0)) -> torch.Tensor:
    grid = torch.stack(
        torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij"), -1
    )
    centre = torch.tensor([(n - 1) / 2 for n in shape])
    return (((grid - centre) / torch.tensor(radii)) ** 2).sum(-1) <= 1


def test_morphology_cleans_a_known_mask():
    brain = _ellipsoid()
    noisy = brain.clone()
    noisy[16:18, 18:20, 14:16] = False  # a cavity
    noisy[0, 0, 0:3] = True  # a speck apart
    cleaned = fill_holes(largest_component(noisy, 3))
    assert torch.equal(cleaned, brain)
    assert not bool(erode(torch.ones(4, 5, 6, dtype=torch.bool))[0].any())


def test_otsu_splits_two_populations():
    values = torch.cat([torch.full((500,), 10.0), torch.full((300,), 90.0)])
    assert 10.0 < otsu_threshold(values) < 90.0


def test_reference_is_median_after_dummies_and_mask_is_the_phantom():
    gen = torch.Generator().manual_seed(0)
    brain = _ellipsoid()
    clean = 5.0 + 100.0 * brain.float()
    series = clean[..., None] + 2.0 * torch.randn(*brain.shape, 12, generator=gen)
    series[..., :2] *= 1.8  # two bright dummies
    series[..., 6] += 400.0  # a spike volume the median ignores
    bold = Image(series, AFFINE)
    n = detect_nonsteady(bold.data)
    assert n == 2
    reference = bold_reference(bold, n)
    assert float((reference.data - clean).abs().max()) < 4.0
    mask = intensity_mask(reference.data)
    # the mask follows the phantom's surface to within one voxel
    assert not bool((mask & ~dilate(brain)).any())
    assert not bool((erode(brain) & ~mask).any())


def test_reference_undoes_known_shifts_through_transforms():
    brain = _ellipsoid()
    volume = 100.0 * brain.float()
    shifts = torch.tensor([[0.0, 0, 0], [3.0, 0, 0], [0, -3.0, 0]], dtype=torch.float64)
    moved = torch.stack(
        [torch.roll(volume, int(s[0] / 3), 0).roll(int(s[1] / 3), 1) for s in shifts], -1
    )
    transforms = AffineTransform.rigid(torch.zeros(3, 3, dtype=torch.float64), shifts)
    reference = bold_reference(Image(moved, AFFINE), 0, transforms=transforms)
    inner = erode(brain, 2) | ~erode(~brain, 2)
    assert float((reference.data - volume)[inner].abs().max()) < 1e-3


def test_sbref_takes_precedence():
    bold = Image(torch.rand(6, 7, 8, 5), AFFINE)
    sbref = Image(torch.arange(6 * 7 * 8, dtype=torch.float32).reshape(6, 7, 8), AFFINE)
    assert torch.allclose(bold_reference(bold, 0, sbref=sbref).data, sbref.data)


@pytest.mark.realdata
def test_real_bold_mask_is_brain_sized(data_dir):
    path = data_dir / "xa30" / "bids" / "sub-01" / "func" / "sub-01_task-fa_run-1_bold.nii.gz"
    bold = load_image(path, torch.device("cpu"))
    reference = bold_reference(bold, detect_nonsteady(bold.data))
    mask = intensity_mask(reference.data)
    volume_ml = float(mask.sum()) * math.prod(bold.spacing) / 1000.0
    assert 900.0 < volume_ml < 1900.0
    inside = float(reference.data[mask].mean())
    outside = float(reference.data[~mask].mean())
    assert inside > 4 * outside
    assert np.isfinite(volume_ml)
