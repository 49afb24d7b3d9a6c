"""IQMs on the real scans of ../shared/data fall in the ranges MRIQC reports for such data.

Masks are crude where no segmentation is at hand: the BOLD brain mask is the
head mask of the mean EPI, eroded once; for xa30 and studyforrest T1w the
"brain" is the upper part of the eroded head mask, so only measures that do not
need tissue classes are checked there. The AOMIC T1w uses fMRIPrep's own brain
mask and tissue segmentation (resampled by world coordinates), so every IQM
is checked. Images are strided (every 2nd or 3rd voxel) to stay fast.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from nilearn.image import resample_to_img

from neurolearn_cli.engine.morphology import erode
from neurolearn_cli.fmri.nonsteady import detect_nonsteady
from neurolearn_cli.qc import anatomical, functional, masks, measures
from tests.qc.conftest import probabilities_from_dseg

pytestmark = pytest.mark.realdata


def load_strided(
    path: Path, step: int, volumes: int | None = None
) -> tuple[torch.Tensor, np.ndarray]:
    """Intensities (C-contiguous float32, every ``step``-th voxel) and the matching affine."""
    image = nib.load(path)
    data = np.asarray(image.dataobj, dtype=np.float32)[::step, ::step, ::step]
    if volumes is not None:
        data = data[..., :volumes]
    affine = image.affine.copy()
    affine[:3, :3] *= step
    return torch.from_numpy(np.ascontiguousarray(data)), affine


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(s) for s in nib.affines.voxel_sizes(affine))


@pytest.mark.parametrize(
    ("relpath", "volumes", "repetition_time"),
    [
        ("xa30/bids/sub-01/func/sub-01_task-fa_run-1_bold.nii.gz", None, 1.0),
        ("studyforrest/bids/sub-02/func/sub-02_task-oneback_run-1_bold.nii.gz", 30, 2.0),
    ],
)
def test_bold_iqms_in_mriqc_ranges(
    shared_data: Path, relpath: str, volumes: int | None, repetition_time: float
) -> None:
    bold, affine = load_strided(shared_data / relpath, 1, volumes)
    mask = erode(masks.head_mask(bold.mean(dim=-1)), 1)
    iqms = functional.functional_iqms(
        bold, mask, spacing_of(affine), repetition_time, np.array([]), detect_nonsteady(bold)
    )
    assert 30 < iqms["tsnr"] < 200
    assert 0.9 < iqms["dvars_std"] < 1.6
    assert 0.3 < iqms["efc"] < 0.7
    assert iqms["fber"] > 100
    assert 1.5 < iqms["fwhm_avg"] < 4.0
    assert -0.1 < iqms["gsr_x"] < 0.2 and 0.0 < iqms["gsr_y"] < 0.2
    assert iqms["aor"] < 0.05 and iqms["aqi"] < 0.05
    assert 0.0 < iqms["gcor"] < 0.2
    assert iqms["snr"] > 2.0
    assert isinstance(iqms["fd_mean"], measures.Missing)  # no motion estimates were given


def test_aomic_t1w_iqms_in_mriqc_ranges(shared_data: Path) -> None:
    root = shared_data / "aomic"
    t1w, affine = load_strided(root / "bids/sub-0001/anat/sub-0001_T1w.nii.gz", 2)
    grid = nib.Nifti1Image(np.zeros(t1w.shape, dtype=np.uint8), affine)
    reference = root / "reference/fmriprep/sub-0001/anat"

    def on_grid(name: str) -> torch.Tensor:
        image = resample_to_img(
            nib.load(reference / name),
            grid,
            interpolation="nearest",
            force_resample=True,
            copy_header=True,
        )
        return torch.from_numpy(np.asarray(image.dataobj).astype(np.int16))

    brain, dseg = on_grid("sub-0001_desc-brain_mask.nii.gz") > 0, on_grid("sub-0001_dseg.nii.gz")
    spacing = spacing_of(affine)
    head = masks.head_mask(t1w)
    air = masks.air_mask(t1w, head, brain, affine)
    artifacts = masks.artifact_mask(t1w, air, head, spacing)
    iqms = anatomical.anatomical_iqms(
        t1w, spacing, brain, probabilities_from_dseg(dseg), head, air, artifacts
    )
    assert 0.3 < iqms["cjv"] < 0.8
    assert 1.5 < iqms["cnr"] < 5.0
    assert 0.4 < iqms["efc"] < 0.8
    assert 4.0 < iqms["snr_wm"] < 30.0 and iqms["snr_csf"] < iqms["snr_gm"] < iqms["snr_wm"]
    assert iqms["snrd_total"] > iqms["snr_total"]
    assert 0.6 < iqms["wm2max"] < 0.95
    assert 0.0 <= iqms["qi_1"] < 0.01
    assert 2.0 < iqms["fwhm_avg"] < 5.0
    # the 1.5 l of the FreeSurfer eTIV: GM the largest class, CSF the smallest
    assert iqms["icvs_csf"] < iqms["icvs_wm"] < iqms["icvs_gm"] < 0.6


@pytest.mark.parametrize(
    ("relpath", "step"),
    [
        ("xa30/bids/sub-01/anat/sub-01_acq-tfl_T1w.nii.gz", 1),
        ("studyforrest/bids/sub-02/anat/sub-02_T1w.nii.gz", 4),
    ],
)
def test_raw_t1w_mask_free_iqms(shared_data: Path, relpath: str, step: int) -> None:
    t1w, affine = load_strided(shared_data / relpath, step)
    spacing = spacing_of(affine)
    head = masks.head_mask(t1w)
    axis, direction = masks.superior_axis(affine)
    extent = head.any(dim=tuple(a for a in range(3) if a != axis)).nonzero().reshape(-1)
    cut = int(extent.min() + 0.55 * (extent.max() - extent.min()))
    index = torch.arange(t1w.shape[axis]).reshape([-1 if a == axis else 1 for a in range(3)])
    upper = index >= cut if direction > 0 else index <= cut
    brain = erode(head, int(round(12 / min(spacing)))) & upper
    air = masks.air_mask(t1w, head, brain, affine)
    artifacts = masks.artifact_mask(t1w, air, head, spacing)
    frame = masks.frame_mask(t1w)
    assert 0.4 < measures.efc(t1w, frame) < 0.8
    assert measures.fber(t1w, head, frame) > 50
    assert 0.0 <= anatomical.qi1(air & ~artifacts, artifacts) < 0.02
    assert 1.5 < measures.fwhm_voxels(measures.fwhm(t1w, brain, spacing), spacing)["fwhm_avg"] < 4.0
