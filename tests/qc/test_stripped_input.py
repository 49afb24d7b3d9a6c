"""qc of an already skull-stripped T1w: it has no air, so no measure against the air (real data, end to end)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from nilearn.image import resample_to_img

pytestmark = pytest.mark.realdata

T1W = "sub-0001/anat/sub-0001_T1w.nii.gz"
#: The measures whose noise reference is the air background.
AGAINST_THE_AIR = ("snrd_csf", "snrd_gm", "snrd_wm", "snrd_total", "cnr", "qi_1", "fber", "summary_bg_stdv")


def test_a_stripped_t1w_has_no_measure_against_the_air(cli, shared_data, real_scan_copy, tmp_path) -> None:
    """aomic (3 mm) times fMRIPrep's brain mask. The zeros left in the brain's surface folds, with a few dim
    edge voxels among them, made an air of a few hundred voxels: xa30's gave an SNR of 9.6 against it."""
    root = real_scan_copy(shared_data / "aomic" / "bids", T1W, step=3)
    image = nib.load(root / T1W)
    reference = nib.load(shared_data / "aomic/reference/fmriprep/sub-0001/anat/sub-0001_desc-brain_mask.nii.gz")
    brain = resample_to_img(reference, image, interpolation="nearest", force_resample=True,
                            copy_header=True).get_fdata() > 0.5
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj) * brain, image.affine, image.header), root / T1W)
    out = tmp_path / "out"
    code, _, err = cli(root, out, "participant", "--stages", "qc")
    assert code == 0, err
    anat = out / "sub-0001" / "anat"
    assert json.loads((anat / "sub-0001_desc-preproc_T1w.json").read_text())["SkullStripped"] is True
    iqms = json.loads((anat / "sub-0001_T1w.json").read_text())
    assert {name: iqms[name] for name in AGAINST_THE_AIR} == dict.fromkeys(AGAINST_THE_AIR)
    assert iqms["snr_wm"] is not None and iqms["cjv"] is not None  # the measures within the brain remain
