"""Lesion masks in the plan: found as BIDS and fMRIPrep name them, valid names, problems named."""

from __future__ import annotations

import shutil

from neurolearn_cli.dataset.query import plan_dataset
from neurolearn_cli.run import participant_inputs


def test_lesion_mask_is_planned_and_fingerprinted_with_the_t1w(make_bids):
    root = make_bids(("01", "02"))
    anat = root / "sub-01" / "anat"
    shutil.copy(anat / "sub-01_T1w.nii.gz", anat / "sub-01_label-lesion_roi.nii.gz")
    plan = plan_dataset(root)  # validation on: the name is valid BIDS
    first, second = plan.participants
    assert first.lesion is not None and first.lesion.path.name == "sub-01_label-lesion_roi.nii.gz"
    assert first.problems == () and second.lesion is None
    assert first.lesion.path in participant_inputs(first, anatomical_only=True)
    assert [i.path.name for i in first.t1w] == ["sub-01_T1w.nii.gz"]


def test_two_lesion_masks_or_a_broken_one_skip_only_that_participant(make_bids):
    root = make_bids(("01", "02"))
    anat = root / "sub-01" / "anat"
    shutil.copy(anat / "sub-01_T1w.nii.gz", anat / "sub-01_label-lesion_roi.nii.gz")
    shutil.copy(anat / "sub-01_T1w.nii.gz", anat / "sub-01_acq-flair_label-lesion_roi.nii.gz")
    (root / "sub-02" / "anat" / "sub-02_label-lesion_roi.nii.gz").write_bytes(b"not a nifti")
    first, second = plan_dataset(root).participants
    assert len(first.problems) == 1 and "more than one lesion mask" in first.problems[0]
    assert len(second.problems) == 1 and "sub-02_label-lesion_roi.nii.gz" in second.problems[0]
