"""smri end to end on a real T1w with a planted lesion and its BIDS roi mask."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from neurolearn_cli.example_data.lesion import plant_lesion

pytestmark = pytest.mark.realdata

T1W = "sub-01/anat/sub-01_acq-tfl_T1w.nii.gz"


def test_smri_with_a_lesion_mask(cli, shared_data, real_scan_copy, tmp_path) -> None:
    root = real_scan_copy(shared_data / "xa30" / "bids", T1W, crop=((0, 96), (0, 128), (40, 128)))
    image = nib.load(root / T1W)
    data = image.get_fdata(dtype=np.float32)
    centre = nib.affines.apply_affine(image.affine, [62, 55, 42])  # right frontal white matter and cortex
    planted = plant_lesion(data, image.affine, centre, np.array([12.0, 14.0, 10.0]),
                           intensity=float(np.percentile(data[data > data.mean()], 5)), seed=3)
    nib.save(nib.Nifti1Image(planted.t1w, image.affine, image.header), root / T1W)
    nib.save(nib.Nifti1Image(planted.mask, image.affine), root / "sub-01/anat/sub-01_label-lesion_roi.nii.gz")
    out = tmp_path / "out"
    code, _, err = cli(root, out, "participant", "--stages", "smri")
    assert code == 0, err
    anat = out / "sub-01" / "anat"
    lesion = nib.load(anat / "sub-01_label-lesion_roi.nii.gz").get_fdata() > 0
    assert lesion.sum() == planted.mask.sum()  # same grid (RAS already): the mask as given
    dseg = nib.load(anat / "sub-01_dseg.nii.gz").get_fdata()
    assert np.array_equal(dseg == 4, lesion)
    for tissue in ("GM", "WM", "CSF"):
        assert nib.load(anat / f"sub-01_label-{tissue}_probseg.nii.gz").get_fdata()[lesion].max() == 0.0
    assert (anat / "sub-01_dseg.tsv").read_text().splitlines()[-1] == "4\tlesion"
    mni = nib.load(anat / "sub-01_space-MNI152NLin2009aSym_res-2_label-lesion_roi.nii.gz")
    native_ml, mni_ml = lesion.sum() * 8e-3, mni.get_fdata().sum() * np.prod(mni.header.get_zooms()) / 1000
    assert 0.7 < mni_ml / native_ml < 1.4
    assert (nib.load(anat / "sub-01_space-MNI152NLin2009aSym_res-2_dseg.nii.gz").get_fdata() == 4).any()
    raw_uri = "bids:raw:sub-01/anat/sub-01_label-lesion_roi.nii.gz"
    for sidecar in ("sub-01_dseg.json", "sub-01_label-GM_probseg.json",
                    "sub-01_space-MNI152NLin2009aSym_res-2_desc-preproc_T1w.json"):
        assert raw_uri in json.loads((anat / sidecar).read_text())["Sources"]
    morph = json.loads((anat / "sub-01_seg-neurolearnGM108_stat-gmvolume_morph.json").read_text())
    assert morph["QC"]["volume_lesion_ml"] == pytest.approx(native_ml)
    code, _, err = cli("verify", out)
    assert code == 0, err
