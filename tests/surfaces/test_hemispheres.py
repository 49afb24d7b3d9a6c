"""The hemisphere fill and the white surface's intensity field."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from neurolearn_cli.surfaces.hemispheres import brainstem, deep_region, hemisphere_fields
from neurolearn_cli.surfaces.placement import WHITE_CONTRAST_LEVEL, tissue_contrast

#: Template (MNI) mm of structures the fill must hold, and of cortex and medial temporal grey it must leave out.
FILLED = {"caudate head": (-13.0, 12.0, 10.0), "putamen": (-25.0, 2.0, 2.0), "pallidum": (-19.0, -4.0, 0.0),
          "thalamus": (-11.0, -18.0, 7.0), "lateral ventricle body": (-15.0, -10.0, 25.0),
          "ventricle atrium": (-25.0, -40.0, 15.0), "frontal horn": (-8.0, 15.0, 15.0)}
LEFT_OUT = {"insula": (-40.0, 0.0, 5.0), "cingulate gyrus": (-6.0, 10.0, 35.0), "hippocampus": (-28.0, -22.0, -14.0),
            "amygdala": (-23.0, -4.0, -18.0), "isthmus of the cingulate": (-8.0, -48.0, 12.0),
            "subcallosal gyrus": (-5.0, 25.0, -10.0)}


@pytest.mark.parametrize(("points", "expected"), [(FILLED, True), (LEFT_OUT, False)])
def test_deep_region_holds_the_nuclei_and_ventricles_not_the_cortex(points: dict[str, tuple[float, float, float]],
                                                                   expected: bool) -> None:
    left = torch.tensor(list(points.values()))
    right = left * torch.tensor([-1.0, 1.0, 1.0])
    assert deep_region(left, "L").tolist() == [expected] * len(points)
    assert deep_region(right, "R").tolist() == [expected] * len(points)
    assert not deep_region(right, "L").any()


#: Template mm of the brainstem and peduncles the cut takes, and of the cerebrum's underside it must leave.
STEM = {"pons": (-5.0, -25.0, -30.0), "medulla": (-3.0, -40.0, -50.0), "superior cerebellar peduncle": (-8.0, -45.0, -22.0),
        "middle cerebellar peduncle": (-17.0, -40.0, -32.0)}
NOT_STEM = {"midbrain": (-5.0, -25.0, -8.0), "lingual gyrus": (-12.0, -75.0, -12.0),
            "occipital pole underside": (-18.0, -90.0, -17.0), "fusiform gyrus": (-30.0, -60.0, -18.0)}


@pytest.mark.parametrize(("points", "expected"), [(STEM, True), (NOT_STEM, False)])
def test_brainstem_cut_takes_the_stem_not_the_occipital_lobe(points: dict[str, tuple[float, float, float]],
                                                            expected: bool) -> None:
    for sign in (1.0, -1.0):
        where = torch.tensor(list(points.values())) * torch.tensor([sign, 1.0, 1.0])
        assert brainstem(where).tolist() == [expected] * len(points)


def test_white_boundary_field_is_one_half_at_the_white_level() -> None:
    """An intensity ramp, confident grey matter at its dark end and white at its bright end: the field rises by
    1 from the grey mean to the white mean and is 0.5 where the intensity is WHITE_CONTRAST_LEVEL of the way up."""
    shape = (7, 8, 9)
    ramp = torch.linspace(40.0, 120.0, shape[0])[:, None, None].expand(shape).clone()
    wm = (ramp >= 100).float()
    gm = (ramp <= 60).float()
    field = tissue_contrast(ramp, wm, gm, (1.0, 1.0, 1.0), fwhm_mm=None)
    grey, white = ramp[gm > 0].mean(), ramp[wm > 0].mean()
    torch.testing.assert_close(field, (ramp - grey) / (white - grey) + 0.5 - WHITE_CONTRAST_LEVEL)
    on_level = grey + WHITE_CONTRAST_LEVEL * (white - grey)
    crossing = torch.nonzero(field[:, 0, 0] >= 0.5)[0, 0]
    assert ramp[crossing - 1, 0, 0] < on_level <= ramp[crossing, 0, 0]


@pytest.mark.parametrize("with_contrast", [False, True])
def test_white_field_leaves_out_the_brain_masks_outermost_layer(with_contrast: bool) -> None:
    """A bright layer (dura, a sinus) on the brain mask's top is labelled white matter: the white surface's
    field is 0 there and unchanged one voxel deeper, while the pial field still counts it."""
    shape = (16, 16, 16)
    mask = torch.zeros(shape)
    mask[2:14, 2:14, 2:14] = 1.0
    wm = torch.zeros(shape)
    wm[5:11, 5:11, 5:11] = 1.0
    wm[4:12, 4:12, 13] = 1.0  # the bright layer, in the mask's top slice
    wm[4:12, 4:12, 12] = 1.0  # and genuine white matter one voxel below it
    gm = (mask - wm).clamp(min=0.0)
    axis = torch.arange(16.0) - 7.5
    template_points = torch.stack(torch.meshgrid(axis, axis, axis + 40.0, indexing="ij"), dim=-1)
    contrast = wm.clone() if with_contrast else None
    fields = hemisphere_fields(wm, gm, mask, template_points, contrast)
    boundary = fields["L"].boundary + fields["R"].boundary
    assert boundary[4:12, 4:12, 13].max() == 0.0
    assert boundary[4:12, 4:12, 12].min() == 1.0
    inside = fields["L"].inside + fields["R"].inside
    assert inside[4:12, 4:12, 13].min() == 1.0


def test_tissue_contrast_gives_the_same_bits_on_1_and_2_threads(threads: Callable[[int], None]) -> None:
    """The whole-brain grey and white means (where too few confident voxels are near) are summed the same way on
    any thread count: summed the torch way, they moved every surface output of a scan with the thread count."""
    generator = torch.Generator().manual_seed(5)
    shape = (48, 52, 44)
    wm = torch.rand(shape, generator=generator)
    gm = (1 - wm) * torch.rand(shape, generator=generator)
    t1w = 60 + 40 * wm + 5 * torch.rand(shape, generator=generator)
    contrasts = []
    for count in (1, 2):
        threads(count)
        contrasts.append(tissue_contrast(t1w, wm, gm, (2.0, 2.0, 2.0), fwhm_mm=None))
    assert torch.equal(contrasts[0], contrasts[1])
