"""Implausible structural results fail the participant: volumes, normalization, mask on the border; noise end to end."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.errors import ProcessingError
from neurolearn_cli.smri.plausibility import (
    MAX_MASK_BORDER_FRACTION,
    check_mask_border,
    check_normalization,
    check_snr,
    check_volumes,
    mask_border_fraction,
)


def test_implausible_volumes_fail() -> None:
    check_volumes({"TIV": 1500.0, "GM": 650.0, "WM": 500.0, "CSF": 350.0})
    with pytest.raises(ProcessingError, match="intracranial volume 90 mL"):
        check_volumes({"TIV": 90.0, "GM": 40.0, "WM": 30.0, "CSF": 20.0})
    with pytest.raises(ProcessingError, match="intracranial volume 2481 mL"):
        check_volumes({"TIV": 2481.0, "GM": 1000.0, "WM": 900.0, "CSF": 500.0})
    with pytest.raises(ProcessingError, match="WM fraction 0.07"):
        check_volumes({"TIV": 1500.0, "GM": 700.0, "WM": 100.0, "CSF": 700.0})


def test_poor_normalization_fails_with_the_measured_similarity() -> None:
    check_normalization(0.76)
    with pytest.raises(ProcessingError, match="local correlation with the template 0.70, below 0.75"):
        check_normalization(0.698)
    with pytest.raises(ProcessingError):
        check_normalization(float("nan"))


def test_too_noisy_an_image_fails_with_the_measured_snr() -> None:
    check_snr(10.2)  # studyforrest with twice its noise SD: a right map
    check_snr(None)  # no noise sample in a zero-filled background: not checked
    with pytest.raises(ProcessingError, match="signal-to-noise ratio 6.5 of the white matter"):
        check_snr(6.5)  # xa30 with eight times its noise SD: GM -12 %


def test_mask_border_fraction_counts_face_voxels() -> None:
    mask = torch.zeros(7, 8, 9, dtype=torch.bool)
    mask[2:5, 3:6, 3:6] = True  # inside: touches no face
    assert mask_border_fraction(mask) == 0.0
    mask[0, 0:2, 0:3] = True  # 6 voxels on the x=0 face, 3 of them on the y=0 face and 2 on the z=0 face
    faces = 2 * (8 * 9 + 7 * 9 + 7 * 8)
    assert mask_border_fraction(mask) == pytest.approx((6 + 3 + 2) / faces)
    assert mask_border_fraction(torch.ones(7, 8, 9, dtype=torch.bool)) == 1.0


def test_a_mask_covering_the_border_fails() -> None:
    affine = torch.eye(4, dtype=torch.float64)
    cropped_top = torch.zeros(7, 8, 9)
    cropped_top[2:5, 2:6, 4:] = 1.0  # a brain cut by the top face only
    assert check_mask_border(Image(cropped_top, affine)) <= MAX_MASK_BORDER_FRACTION
    leaked = torch.zeros(7, 8, 9)
    leaked[:, :, 3:] = 1.0
    with pytest.raises(ProcessingError, match="covers .* % of the image border"):
        check_mask_border(Image(leaked, affine))


@pytest.mark.slow
def test_a_t1w_of_uniform_noise_fails_with_the_reason(tmp_path: Path, cli) -> None:
    """Uniform noise in a head-sized field of view (4 mm): exit 1, the measured reason, no anatomical output,
    and the group report lists it."""
    bids, out = tmp_path / "bids", tmp_path / "out"
    (bids / "sub-01" / "anat").mkdir(parents=True)
    (bids / "dataset_description.json").write_text(json.dumps({"Name": "noise", "BIDSVersion": "1.9.0"}))
    noise = np.random.default_rng(0).uniform(0, 1000, (40, 48, 44)).astype(np.float32)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-80.0, -110.0, -80.0]
    nib.save(nib.Nifti1Image(noise, affine), bids / "sub-01" / "anat" / "sub-01_T1w.nii.gz")

    code, _, err = cli("smri", bids, out, "participant", "--omp-nthreads", "2")

    assert code == 1
    status = json.loads((out / "logs" / "status" / "sub-01.json").read_text())
    assert status["status"] == "failed"
    assert status["reason"].startswith("normalization: local correlation with the template 0.")
    assert "normalization: local correlation" in err
    assert not list((out / "sub-01").rglob("*.nii.gz"))

    # the group report lists the failed participant with the measured reason, though no T1w has IQMs
    code, _, _ = cli("qc", bids, out, "group")
    assert code == 0
    page = (out / "group_T1w.html").read_text()
    assert "<td>sub-01</td><td>failed: normalization: local correlation with the template 0." in page
    assert not (out / "group_T1w.tsv").exists() and not (out / "group_bold.html").exists()
