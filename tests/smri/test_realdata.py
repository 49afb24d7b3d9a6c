"""End to end on aomic sub-0001 (LIA, uint8, skull on), decimated to 3 mm, against fMRIPrep and FreeSurfer."""

from __future__ import annotations

import re

import pytest
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.io import load_image
from neurolearn_cli.engine.resample import resample, resample_labels
from neurolearn_cli.smri.initialize import initialize
from neurolearn_cli.smri.parcellation import load_atlas
from neurolearn_cli.smri.pipeline import preprocess_t1w

from .helpers import dice

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
STEP = 3


def _decimated(image: Image, step: int) -> Image:
    """Every ``step``-th voxel in the stored order (keeps LIA), with the matching affine."""
    scale = torch.diag(torch.tensor([step, step, step, 1.0], dtype=torch.float64))
    return Image(image.data[::step, ::step, ::step].contiguous(), image.affine @ scale)


@pytest.fixture(scope="module")
def aomic(shared_data):
    root = shared_data / "aomic"
    cpu = torch.device("cpu")
    t1w = load_image(root / "bids/sub-0001/anat/sub-0001_T1w.nii.gz", cpu)
    reference = root / "reference/fmriprep/sub-0001/anat"
    stats = (root / "reference/freesurfer/sub-0001/stats/aseg.stats").read_text(encoding="utf-8")
    etiv = float(re.search(r"EstimatedTotalIntraCranialVol, eTIV, [^,]*, ([0-9.]+)", stats).group(1)) / 1000
    return {
        "t1w": _decimated(t1w, STEP),
        "mask": load_image(reference / "sub-0001_desc-brain_mask.nii.gz", cpu),
        "dseg": load_image(reference / "sub-0001_dseg.nii.gz", cpu),
        "etiv_ml": etiv,
    }


@pytest.mark.parametrize("skull_stripped", [False, True])
def test_initial_affine_puts_template_mask_on_the_brain(aomic, template_2mm, skull_stripped) -> None:
    t1w = aomic["t1w"]
    reference = resample(aomic["mask"], t1w.grid, order="nearest").data > 0.5
    if skull_stripped:
        t1w = t1w.with_data(t1w.data * reference)
    init = initialize(t1w, template_2mm)
    warped = resample(template_2mm.mask, t1w.grid, init.transform.inverse()).data > 0.5
    assert dice(warped, reference) > 0.9


@pytest.fixture(scope="module")
def result(aomic, template_2mm):
    cpu = torch.device("cpu")
    return preprocess_t1w([aomic["t1w"]], ["sub-0001_T1w.nii.gz"], template_2mm, load_atlas(cpu), cpu)


def test_brain_mask_and_tissues_match_fmriprep(result, aomic) -> None:
    grid = result.t1w.grid
    reference_mask = resample(aomic["mask"], grid, order="nearest").data > 0.5
    reference_dseg = resample_labels(aomic["dseg"], grid).data
    scores = {"mask": dice(result.mask.data > 0.5, reference_mask)}
    for label, name in ((1, "GM"), (2, "WM"), (3, "CSF")):
        scores[name] = dice(result.dseg.data == label, reference_dseg == label)
    print("aomic 3 mm Dice vs fMRIPrep:", {k: round(v, 3) for k, v in scores.items()})
    assert scores["mask"] > 0.93
    assert scores["WM"] > 0.86
    assert scores["GM"] > 0.82
    assert scores["CSF"] > 0.62


def test_volumes_and_morphometry(result, aomic) -> None:
    row = result.morphometry.iloc[0]
    assert row["GM"] + row["WM"] < row["TIV"]  # the pulled-back template mask holds the brain's tissue
    assert row["TIV"] == pytest.approx(aomic["etiv_ml"], rel=0.2)
    parcels = row.drop(["TIV", "GM", "WM", "CSF"])
    assert len(parcels) == 108 and float(parcels.min()) > 0
    assert float(parcels.sum()) <= row["GM"]
    assert result.mni.dseg.shape3 == result.mni.t1w.shape3
    assert result.t1w.spacing == pytest.approx((STEP, STEP, STEP))


def _with_rician_noise(image: Image, sd: float, seed: int = 0) -> Image:
    """``image`` as a magnitude image with complex Gaussian noise of ``sd`` added (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    real = image.data + sd * torch.randn(image.shape3, generator=generator)
    imaginary = sd * torch.randn(image.shape3, generator=generator)
    return image.with_data(torch.hypot(real, imaginary))


def test_half_the_snr_keeps_the_tissue_volumes(result, aomic, template_2mm) -> None:
    """Rician noise of a 28th of the white matter's intensity (the noise SD of the robustness benchmark's
    half-SNR copy): the zero-filled background becomes noisy air, which the tissue mixture leaves out.
    Modelled, the air took the non-brain class's Gaussians; WM lost 8 % to GM at 2 mm and CSF grew 72 %."""
    cpu = torch.device("cpu")
    t1w = aomic["t1w"]
    white = resample(result.tissues["WM"], t1w.grid).data > 0.95
    sd = float(t1w.data[white].median()) / 28
    noisy = preprocess_t1w([_with_rician_noise(t1w, sd)], ["sub-0001_T1w.nii.gz"], template_2mm, load_atlas(cpu), cpu)
    clean_row, noisy_row = result.morphometry.iloc[0], noisy.morphometry.iloc[0]
    changes = {k: noisy_row[k] / clean_row[k] - 1 for k in ("GM", "WM", "CSF")}
    print("aomic 3 mm, half the SNR: volume changes", {k: f"{100 * v:+.1f} %" for k, v in changes.items()})
    assert abs(changes["GM"]) < 0.05 and abs(changes["WM"]) < 0.05
    assert abs(changes["CSF"]) < 0.35
