"""Already skull-stripped, top-cropped and neck-to-vertex T1w images: recognised, and the brain mask does not
cut into the brain.

Small cases: synthetic ellipsoids for the recognition and the cut below the
vertex, and a simulated head of the example dataset (2 mm, ground-truth
labels) stripped with its own brain labels or cut 30 mm below the vertex,
through the initial affine and the first segmentation pass as the pipeline
runs them. The neck-to-vertex placement is checked on xa30 (real data, 2 mm).
"""

from __future__ import annotations

from pathlib import PurePath

import pytest
import torch
from scipy.ndimage import distance_transform_edt

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.io import load_image
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.smri.conform import conform_t1w
from neurolearn_cli.smri.initialize import (
    COARSE_MM,
    HEAD_HEIGHT_MM,
    HEAD_MM,
    background_noise_sd,
    below_vertex,
    coarse_copy,
    field_of_view,
    initialize,
    slice_heights,
)
from neurolearn_cli.smri.parcellation import load_atlas
from neurolearn_cli.smri.pipeline import affine_pass, preprocess_t1w
from neurolearn_cli.smri.plausibility import MIN_WM_SNR
from neurolearn_cli.smri.template import Template

from .helpers import dice

#: xa30's T1w (2 mm, RAS, down to the shoulders), relative to the shared data folder.
XA30_T1W = PurePath("xa30/bids/sub-01/anat/sub-01_acq-tfl_T1w.nii.gz")


def _ellipsoid(radii_mm: tuple[float, float, float], top_cut_mm: float | None = None, background: float = 0.0) -> Image:
    """A bright ellipsoid on ``background`` in a 4 mm grid of 60x64x56 voxels (RAS, centred), cut above ``top_cut_mm``."""
    shape, spacing = (60, 64, 56), 4.0
    affine = torch.diag(torch.tensor([spacing, spacing, spacing, 1.0], dtype=torch.float64))
    affine[:3, 3] = torch.tensor([-(n - 1) * spacing / 2 for n in shape], dtype=torch.float64)
    index = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in shape], indexing="ij"), -1)
    world = index * spacing + affine[:3, 3]
    inside = ((world / torch.tensor(radii_mm, dtype=torch.float64)) ** 2).sum(-1) <= 1
    data = torch.where(inside, 100.0, background).float()
    image = Image(data, affine)
    if top_cut_mm is None:
        return image
    keep = int((world[0, 0, :, 2] <= top_cut_mm).sum())
    return Image(data[:, :, :keep].contiguous(), affine)


def test_field_of_view_recognises_stripped_and_cropped_inputs() -> None:
    head = field_of_view(coarse_copy(_ellipsoid((80.0, 100.0, 95.0)), HEAD_MM))  # 3180 mL: a head
    assert (head.skull_stripped, head.top_cropped) == (False, False) and head.describe() == ""
    brain = field_of_view(coarse_copy(_ellipsoid((60.0, 75.0, 60.0)), HEAD_MM))  # 1131 mL: a brain
    assert (brain.skull_stripped, brain.top_cropped) == (True, False)
    small_head = field_of_view(coarse_copy(_ellipsoid((60.0, 75.0, 60.0), background=2.0), HEAD_MM))
    assert not small_head.skull_stripped  # a background of noise, not zeros: a head in a tight field of view
    cut = field_of_view(coarse_copy(_ellipsoid((80.0, 100.0, 95.0), top_cut_mm=60.0), HEAD_MM))
    assert (cut.skull_stripped, cut.top_cropped) == (False, True)
    assert cut.describe() == "top of the head outside the field of view"


def _first_pass_mask(t1w: Image, template) -> tuple[torch.Tensor, object]:
    init, _, brain = affine_pass(conform_t1w([t1w], ["sub-08_T1w.nii.gz"]), template)
    return brain.mask.data > 0.5, init.field_of_view


@pytest.mark.slow
def test_already_stripped_head_keeps_its_whole_brain(participant_8, template_2mm) -> None:
    t1w, truth = participant_8
    brain = truth.data > 0
    mask, seen = _first_pass_mask(t1w.with_data(t1w.data * brain), template_2mm)
    assert seen.skull_stripped and not seen.top_cropped
    assert dice(mask, brain) > 0.95
    assert float((brain & ~mask).sum()) / float(brain.sum()) < 0.05  # the mask does not cut into the brain


@pytest.mark.slow
def test_head_cut_below_the_vertex_keeps_the_brain_in_view(participant_8, template_2mm) -> None:
    t1w, truth = participant_8
    head = t1w.data > 0.1 * float(t1w.data.max())
    top = int(torch.nonzero(head.any(0).any(0)).max())
    keep = top + 1 - 15  # 30 mm at 2 mm voxels: the scalp and the top of the brain are cut off
    cut, cut_truth = (Image(image.data[:, :, :keep].contiguous(), image.affine) for image in (t1w, truth))
    mask, seen = _first_pass_mask(cut, template_2mm)
    assert seen.top_cropped and not seen.skull_stripped
    brain = cut_truth.data > 0
    assert dice(mask, brain) > 0.95
    assert float((brain & ~mask).sum()) / float(brain.sum()) < 0.05


def _brain_distance_mm(moved: torch.Tensor, reference: torch.Tensor, template: Template) -> float:
    """Mean distance (mm) between where two template -> T1w affines put the template's brain voxels."""
    brain = torch.nonzero(template.mask.data > 0.5).to(torch.float64)
    points = torch.cat([brain @ template.mask.affine[:3, :3].T + template.mask.affine[:3, 3],
                        torch.ones(len(brain), 1, dtype=torch.float64)], 1)
    return float(((moved - reference) @ points.T)[:3].norm(dim=0).mean())


def _tilted(image: Image, degrees: float) -> tuple[Image, torch.Tensor]:
    """``image`` with its header rotated ``degrees`` about the left-right axis through the grid centre, and the rotation."""
    centre = image.affine[:3, :3] @ ((torch.tensor(image.shape3, dtype=torch.float64) - 1) / 2) + image.affine[:3, 3]
    angle = torch.tensor(degrees, dtype=torch.float64).deg2rad()
    rotation = torch.eye(4, dtype=torch.float64)
    rotation[1:3, 1:3] = torch.stack([torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])])
    rotation[:3, 3] = centre - rotation[:3, :3] @ centre
    return Image(image.data, rotation @ image.affine), rotation


@pytest.mark.slow
def test_a_head_tilted_in_its_header_gets_the_same_initial_affine(participant_8, template_2mm) -> None:
    """45 degrees of pitch in the header (the start alone left the brain 34 mm off): the same voxels, so the
    same brain placement up to that rotation."""
    t1w, _ = participant_8
    tilted, rotation = _tilted(t1w, 45.0)
    upright = initialize(conform_t1w([t1w], ["sub-08_T1w.nii.gz"]), template_2mm).transform.matrix
    moved = initialize(conform_t1w([tilted], ["sub-08_T1w.nii.gz"]), template_2mm).transform.matrix
    assert _brain_distance_mm(torch.linalg.inv(rotation) @ moved, upright, template_2mm) < 2.0


def test_below_vertex_keeps_the_head_height_under_the_top() -> None:
    """A tall head (a neck-to-vertex field of view) is cut to the height below its top; a short one keeps every voxel."""
    tall = coarse_copy(_ellipsoid((60.0, 80.0, 105.0)), COARSE_MM)  # 210 mm from its bottom to the vertex
    cut = below_vertex(tall, HEAD_HEIGHT_MM)
    top, bottom = float(slice_heights(tall.grid)[-1]), float(slice_heights(cut.grid)[0])
    assert torch.equal(cut.data, tall.data[:, :, -cut.shape3[2]:])
    head_top = float(slice_heights(tall.grid)[torch.nonzero(tall.data.amax(dim=(0, 1)) > 50).max()])
    assert abs(head_top - bottom - HEAD_HEIGHT_MM) <= 2 * COARSE_MM  # the vertex is found to within a slice or two
    assert float(slice_heights(tall.grid)[0]) < bottom - 20.0  # the tall head lost its lowest 20 mm and more
    assert float(slice_heights(cut.grid)[-1]) == top
    short = coarse_copy(_ellipsoid((60.0, 80.0, 80.0)), COARSE_MM)
    assert float(below_vertex(short, HEAD_HEIGHT_MM).data.sum()) == float(short.data.sum())  # all of it kept


@pytest.mark.realdata
@pytest.mark.slow
def test_an_already_stripped_scan_keeps_its_bias_field_and_tissue_volumes(shared_data, template_2mm) -> None:
    """xa30 (2 mm) stripped with its own run's brain mask, as ``benchmarks/robustness.py`` makes its stripped
    case. With the head's bending penalty the stripped run's field made the outer 4 mm of the brain 7 % brighter
    against the rest, and WM grew 5.5 % from the cortex's inner edge."""
    cpu, name = torch.device("cpu"), XA30_T1W.name
    t1w, atlas = load_image(shared_data / XA30_T1W, cpu), load_atlas(cpu)
    head = preprocess_t1w([t1w], [name], template_2mm, atlas, cpu)
    brain = resample(head.mask, t1w.grid, order="nearest").data > 0.5
    stripped = preprocess_t1w([t1w.with_data(t1w.data * brain)], [name], template_2mm, atlas, cpu)
    assert stripped.field_of_view.skull_stripped
    inside = head.mask.data > 0.5
    depth_mm = torch.from_numpy(distance_transform_edt(inside.numpy(), sampling=head.mask.spacing))
    log_ratio = torch.log(stripped.bias_field.data / head.bias_field.data)[inside]
    shell = depth_mm[inside] <= 4.0
    assert abs(float(log_ratio[shell].mean() - log_ratio[~shell].mean())) < 0.01
    head_row, stripped_row = head.morphometry.iloc[0], stripped.morphometry.iloc[0]
    changes = {k: stripped_row[k] / head_row[k] - 1 for k in ("GM", "WM")}
    print("xa30 stripped: volume changes", {k: f"{100 * v:+.1f} %" for k, v in changes.items()})
    assert all(abs(v) < 0.05 for v in changes.values())


def _with_neck(image: Image, neck_mm: float) -> Image:
    """``image`` (RAS) extended ``neck_mm`` downwards by its lowest slice repeated with 5 % noise (seeded),
    as ``benchmarks/robustness.py`` makes its neck-to-vertex case."""
    n = round(neck_mm / image.spacing[2])
    generator = torch.Generator().manual_seed(0)
    lowest = image.data[:, :, :1].expand(-1, -1, n)
    pad = lowest * (1 + 0.05 * torch.randn(lowest.shape, generator=generator))
    affine = image.affine.clone()
    affine[:3, 3] -= affine[:3, 2] * n
    return Image(torch.cat([pad, image.data], dim=2), affine)


@pytest.mark.realdata
@pytest.mark.slow
def test_a_neck_to_vertex_field_of_view_gets_the_same_initial_affine(shared_data, template_2mm) -> None:
    """xa30 (2 mm, RAS, already down to the shoulders) with 60 mm more below: without the cut to
    ``HEAD_HEIGHT_MM`` the search chose another start and the brain lay 12 mm from the original's placement."""
    t1w = load_image(shared_data / XA30_T1W, torch.device("cpu"))
    head = initialize(conform_t1w([t1w], [XA30_T1W.name]), template_2mm).transform.matrix
    necked = initialize(conform_t1w([_with_neck(t1w, 60.0)], [XA30_T1W.name]),
                        template_2mm).transform.matrix
    assert _brain_distance_mm(necked, head, template_2mm) < 2.0


def _with_bias(image: Image) -> Image:
    """``image`` times a smooth field from about 0.5 to 2, as ``benchmarks/robustness.py`` makes its bias case."""
    unit = [torch.linspace(-1.0, 1.0, n) for n in image.shape3]
    field = torch.exp(0.5 * unit[0][:, None, None] + 0.3 * unit[1][None, :, None] ** 2 - 0.2 * unit[2][None, None, :])
    return image.with_data(image.data * field)


@pytest.mark.realdata
@pytest.mark.slow
def test_a_strongly_biased_head_gets_the_same_initial_affine(shared_data, template_2mm) -> None:
    """xa30 times a 0.5-to-2 field: without the bias correction before the start the brain lay 13 to 16 mm off."""
    t1w = load_image(shared_data / XA30_T1W, torch.device("cpu"))
    head = initialize(conform_t1w([t1w], [XA30_T1W.name]), template_2mm).transform.matrix
    biased = initialize(conform_t1w([_with_bias(t1w)], [XA30_T1W.name]), template_2mm).transform.matrix
    assert _brain_distance_mm(biased, head, template_2mm) < 2.0


def _with_rician_noise(image: Image, sd: float, seed: int = 0) -> Image:
    """``image`` as a magnitude image with complex Gaussian noise of ``sd`` added (seeded), as
    ``benchmarks/robustness.py`` makes its noise cases."""
    generator = torch.Generator().manual_seed(seed)
    real = image.data + sd * torch.randn(image.shape3, generator=generator)
    imaginary = sd * torch.randn(image.shape3, generator=generator)
    return image.with_data(torch.hypot(real, imaginary))


def test_background_noise_is_measured_in_the_air_of_a_noisy_head_and_not_in_a_zero_filled_one() -> None:
    """Rayleigh air of SD 10 around a bright head: measured within 10 %; a zero background (a defaced or
    masked scan) is no noise sample."""
    head = _ellipsoid((80.0, 100.0, 95.0))
    assert background_noise_sd(coarse_copy(_with_rician_noise(head, 10.0), COARSE_MM)) == pytest.approx(10.0, rel=0.1)
    assert background_noise_sd(coarse_copy(head, COARSE_MM)) is None


@pytest.mark.slow
def test_a_noisy_head_keeps_its_initial_affine_and_measures_its_snr(participant_8, template_2mm) -> None:
    """Rician noise of an eighth of the white matter's intensity (the benchmark's heavy_noise SNR): the brain
    stays where it was (0.5 mm), and the SNR the pipeline checks falls from 16.8 to 6.5, under its bound."""
    t1w, truth = participant_8
    sd = float(t1w.data[truth.data == 2].median()) / 8
    clean = initialize(conform_t1w([t1w], ["sub-08_T1w.nii.gz"]), template_2mm)
    noisy = initialize(conform_t1w([_with_rician_noise(t1w, sd)], ["sub-08_T1w.nii.gz"]), template_2mm)
    assert _brain_distance_mm(noisy.transform.matrix, clean.transform.matrix, template_2mm) < 2.0
    assert clean.wm_snr is not None and noisy.wm_snr is not None
    assert clean.wm_snr >= MIN_WM_SNR > noisy.wm_snr


@pytest.mark.realdata
@pytest.mark.heavy
def test_a_very_noisy_head_gets_the_same_initial_affine(shared_data, template_2mm) -> None:
    """xa30 (2 mm) with eight times its noise SD (7.3 in its white matter): without the noise floor the
    mixture modelled the air and skull and the brain lay 8.9 mm off (0.8 mm with it)."""
    t1w = load_image(shared_data / XA30_T1W, torch.device("cpu"))
    head = initialize(conform_t1w([t1w], [XA30_T1W.name]), template_2mm).transform.matrix
    noisy_t1w = conform_t1w([_with_rician_noise(t1w, 7.3 * 63**0.5)], [XA30_T1W.name])
    noisy = initialize(noisy_t1w, template_2mm).transform.matrix
    assert _brain_distance_mm(noisy, head, template_2mm) < 2.0
