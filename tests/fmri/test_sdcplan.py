"""Choosing a run's distortion-correction estimator from planned fieldmaps (no images read)."""

from pathlib import Path

from neurolearn_cli.dataset.plan import FieldmapInput, ImageInput
from neurolearn_cli.fmri.sdcplan import PepolarChoice, PhasediffChoice, choose_estimator

READOUT = 0.04


def _image(name: str, **metadata: object) -> ImageInput:
    return ImageInput(Path(f"/ds/sub-01/fmap/{name}"), {}, dict(metadata), (8, 9, 7), (3.0,) * 3)


def _epi(name: str, direction: str | None) -> FieldmapInput:
    meta = {"TotalReadoutTime": READOUT}
    if direction is not None:
        meta["PhaseEncodingDirection"] = direction
    return FieldmapInput("epi", (_image(name, **meta),))


BOLD = _image("bold.nii.gz", PhaseEncodingDirection="j-", TotalReadoutTime=READOUT)


def test_two_opposite_epis_form_a_pair_sharing_the_bold_axis():
    fieldmaps = [_epi("dir-LR_epi.nii.gz", "i"), _epi("dir-AP_epi.nii.gz", "j-"),
                 _epi("dir-RL_epi.nii.gz", "i-"), _epi("dir-PA_epi.nii.gz", "j")]
    choice, notes = choose_estimator(fieldmaps, BOLD)
    assert isinstance(choice, PepolarChoice) and not notes
    assert (choice.first.path.name, choice.second.path.name) == (
        "dir-PA_epi.nii.gz", "dir-AP_epi.nii.gz")


def test_one_reversed_epi_pairs_with_the_bold_reference():
    choice, notes = choose_estimator([_epi("dir-PA_epi.nii.gz", "j")], BOLD)
    assert isinstance(choice, PepolarChoice) and choice.second is None and not notes


def test_epis_that_cannot_pair_are_skipped_with_notes():
    choice, notes = choose_estimator(
        [_epi("dir-AP_epi.nii.gz", "j-"), _epi("bad_epi.nii.gz", None)], BOLD
    )
    assert choice is None
    assert "bad_epi.nii.gz" in notes[0] and "PhaseEncodingDirection" in notes[0]
    assert "dir-AP_epi.nii.gz" in notes[1] and "pair" in notes[1]


def test_phasediff_is_preferred_over_epis():
    phasediff = FieldmapInput("phasediff", (_image("phasediff.nii.gz"), _image("magnitude1.nii.gz")))
    choice, _ = choose_estimator([_epi("dir-PA_epi.nii.gz", "j"), phasediff], BOLD)
    assert isinstance(choice, PhasediffChoice)
    assert choice.magnitude.path.name == "magnitude1.nii.gz"


def test_no_fieldmap_means_no_estimator():
    assert choose_estimator([], BOLD) == (None, [])


def test_planned_epi_fieldmaps_pair_up(make_bids):
    """The dataset planner's epi fieldmaps (legacy and bids:: IntendedFor) reach the chooser as a pair."""
    import json

    import nibabel as nib
    import numpy as np

    from neurolearn_cli.dataset.query import plan_dataset

    root = make_bids(("01",), bold_meta={"RepetitionTime": 2.0, "TaskName": "rest",
                                         "PhaseEncodingDirection": "j", "TotalReadoutTime": READOUT})
    fmap = root / "sub-01" / "fmap"
    fmap.mkdir()
    bold = "func/sub-01_task-rest_bold.nii.gz"
    for direction, label, target in (("j", "PA", bold), ("j-", "AP", f"bids::sub-01/{bold}")):
        path = fmap / f"sub-01_dir-{label}_epi.nii.gz"
        nib.save(nib.Nifti1Image(np.ones((6, 7, 8, 2), np.float32), np.diag([3.0, 3.0, 3.0, 1.0])), path)
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(
            {"PhaseEncodingDirection": direction, "TotalReadoutTime": READOUT, "IntendedFor": target}))
    (run,) = plan_dataset(root).participants[0].bold
    choice, notes = choose_estimator(run.fieldmaps, run.image)
    assert isinstance(choice, PepolarChoice) and not notes
    assert {choice.first.path.name, choice.second.path.name} == {
        "sub-01_dir-PA_epi.nii.gz", "sub-01_dir-AP_epi.nii.gz"}


def test_unusable_fieldmaps_are_named_in_notes():
    lonely = FieldmapInput("phasediff", (_image("phasediff.nii.gz"),))
    direct = FieldmapInput("fieldmap", (_image("fieldmap.nii.gz"), _image("magnitude.nii.gz")))
    choice, notes = choose_estimator([lonely, direct], BOLD)
    assert choice is None
    assert "phasediff.nii.gz" in notes[0] and "magnitude" in notes[0]
    assert "fieldmap.nii.gz" in notes[1] and "not supported" in notes[1]
