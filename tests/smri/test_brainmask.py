"""Brain mask cleaning: largest component, holes filled, limited to the warped template mask; CSF only inside it."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.smri.brainmask import (
    _clean_in_box,
    brain_mask,
    clean_mask,
    detached_white_rim,
    grow,
)


def _ellipsoid(shape, centre, radii) -> torch.Tensor:
    index = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij"), -1)
    return (((index - torch.tensor(centre)) / torch.tensor(radii)) ** 2).sum(-1) <= 1


def test_clean_mask_keeps_largest_component_and_fills_holes() -> None:
    shape = (30, 34, 32)
    brain = _ellipsoid(shape, (15, 17, 16), (10, 12, 11))
    hole = _ellipsoid(shape, (15, 17, 16), (3, 3, 3))
    island = _ellipsoid(shape, (3, 3, 3), (2, 2, 2))
    raw = (brain & ~hole) | island
    cleaned = clean_mask(raw, (2.0, 2.0, 2.0))
    assert not cleaned[3, 3, 3]
    assert bool(cleaned[hole].all())
    assert abs(int(cleaned.sum()) - int(brain.sum())) < 0.03 * int(brain.sum())


def test_brain_mask_from_posteriors_respects_template_mask() -> None:
    shape = (30, 34, 32)
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0], dtype=torch.float64))
    brain = _ellipsoid(shape, (15, 17, 16), (10, 12, 11))
    scalp = _ellipsoid(shape, (15, 17, 16), (14, 16, 15)) & ~_ellipsoid(shape, (15, 17, 16), (12, 14, 13))
    post = torch.zeros(4, *shape)
    post[0] = (brain | scalp).float()
    post[3] = 1 - post[0]
    template = Image(_ellipsoid(shape, (15, 17, 16), (9, 11, 10)).float(), affine)
    mask = brain_mask(post, template, margin_mm=4.0).data > 0.5
    assert not bool(mask[scalp].any())
    overlap = 2 * float((mask & brain).sum()) / float(mask.sum() + brain.sum())
    assert overlap > 0.95


def test_fluid_outside_the_template_brain_is_not_brain() -> None:
    shape = (30, 34, 32)
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0], dtype=torch.float64))
    centre = (15, 17, 16)
    brain = _ellipsoid(shape, centre, (10, 12, 11))
    ventricle = _ellipsoid(shape, centre, (2, 4, 3))
    fluid = _ellipsoid(shape, centre, (12, 14, 13)) & ~brain
    post = torch.zeros(4, *shape)
    post[0] = (brain & ~ventricle).float()
    post[2] = (ventricle | fluid).float()
    post[3] = 1 - post[0] - post[2]
    mask = brain_mask(post, Image(brain.float(), affine), margin_mm=6.0).data > 0.5
    assert bool(mask[ventricle].all())
    assert not bool(mask[fluid].any())
    assert int(mask.sum()) > 0.97 * int(brain.sum())
    wider = brain_mask(post, Image(brain.float(), affine), margin_mm=6.0, csf_margin_mm=6.0).data > 0.5
    assert float(wider[fluid].float().mean()) > 0.9


def _scipy_clean(mask: np.ndarray, ball: np.ndarray, pad: int) -> np.ndarray:
    """The cleaning written with scipy.ndimage: opening, largest 6-connected component, padded closing, fills."""
    labels, _ = ndi.label(ndi.binary_opening(mask, structure=ball))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    closed = ndi.binary_closing(np.pad(labels == np.argmax(sizes), pad), structure=ball)[pad:-pad, pad:-pad, pad:-pad]
    filled = ndi.binary_fill_holes(closed)
    for axis in range(3):
        planes = [ndi.binary_fill_holes(plane) for plane in np.moveaxis(filled, axis, 0)]
        filled = np.stack(planes, axis=axis)
    return filled


def test_clean_mask_equals_scipy_at_the_grid_edge() -> None:
    shape = (30, 34, 32)
    raw = _ellipsoid(shape, (8, 17, 16), (10, 12, 11)) | _ellipsoid(shape, (25, 30, 28), (3, 3, 3))
    raw &= torch.rand(shape, generator=torch.Generator().manual_seed(3)) > 0.1
    spacing = (2.0, 1.0, 2.0)  # radii (1, 2, 1) voxels
    axes = np.meshgrid(*[np.arange(-r, r + 1) / r for r in (1, 2, 1)], indexing="ij")
    ball = sum(a**2 for a in axes) <= 1.0
    expected = _scipy_clean(raw.numpy(), ball, 2)
    assert np.array_equal(clean_mask(raw, spacing).numpy(), expected)
    assert np.array_equal(_clean_in_box(raw, spacing).numpy(), expected)


def test_grow_is_a_box_dilation_in_mm() -> None:
    mask = torch.zeros(7, 8, 9, dtype=torch.bool)
    mask[0, 3, 4] = mask[5, 6, 8] = True
    # radii (1, 2, 0): 2 mm is under half of the 4 mm voxel, so the box stays within its slice
    expected = ndi.binary_dilation(mask.numpy(), structure=np.ones((3, 5, 1), dtype=bool))
    assert np.array_equal(grow(mask, (2.0, 1.0, 4.0), 2.0).numpy(), expected)
    assert grow(mask, (2.0, 1.0, 4.0), 0.0) is mask


def test_white_matter_on_the_rim_with_grey_beneath_it_is_not_brain() -> None:
    """A bright layer on top of the cortex (dura, a sinus) leaves the mask; white matter that continues inwards to
    the rim (the brainstem's cut), a lesion given as ``keep`` and a cropped scan's cut stay."""
    shape = (30, 34, 32)
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0], dtype=torch.float64))
    centre = (15, 17, 16)
    brain = _ellipsoid(shape, centre, (10, 12, 11))
    white = _ellipsoid(shape, centre, (7, 9, 8))
    stem = torch.zeros(shape, dtype=torch.bool)
    stem[13:18, 15:20, :16] = True
    dura = torch.zeros(shape, dtype=torch.bool)
    dura[12:19, 14:21, 26:28] = True
    lesion = torch.zeros(shape, dtype=torch.bool)
    lesion[5, 16:19, 15:17] = True  # on the rim, grey beneath it
    head = brain | dura
    post = torch.zeros(4, *shape)
    post[1] = (white | stem | (dura & ~brain) | lesion).float()
    post[0] = (head & ~(post[1] > 0)).float()
    post[3] = 1 - post[0] - post[1]
    template = Image(head.float(), affine)
    mask = brain_mask(post, template, margin_mm=4.0).data > 0.5
    outside_brain = dura & ~brain
    assert bool(outside_brain.any()) and not bool(mask[outside_brain].any())
    assert bool(mask[stem & brain].all())
    assert not bool(mask[lesion].any())
    kept = brain_mask(post, template, margin_mm=4.0, keep=lesion).data > 0.5
    assert bool(kept[lesion].all())
    assert torch.equal(kept & ~lesion, mask)
    assert abs(int(mask.sum()) - int(brain.sum())) < 0.03 * int(brain.sum())
    cut = torch.zeros(shape, dtype=torch.bool)
    cut[:, :, 0] = True
    assert not bool(detached_white_rim(torch.ones(shape, dtype=torch.bool), cut).any())
