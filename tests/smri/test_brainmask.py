"""Brain mask cleaning: largest component, holes filled, limited to the warped template mask; CSF only inside it."""

from __future__ import annotations

import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.smri.brainmask import brain_mask, clean_mask


def _ellipsoid(shape, centre, radii) -> torch.Tensor:
    index = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij"), -1)
    return (((index - torch.tensor(centre)) / torch.tensor(radii)) ** 2).sum(-1) <= 1


def test_clean_mask_keeps_largest_component_and_fills_holes() -> None:
    shape = (30, 34, 32)
    brain = _ellipsoid(shape, (15, 17, 16), (10, 12, 11))
    hole = _ellipsoid(shape, (15, 17, 16), (3, 3, 3))
    island = _ellipsoid(shape, (3, 3, 3), (2, 2, 2))
    raw = (brain & ~hole) | island
    cleaned = torch.as_tensor(clean_mask(raw.numpy(), (2.0, 2.0, 2.0)))
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
