"""Dry runs of the real datasets in ../shared/data, and the cropped-copy fixture."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from neurolearn_cli.dataset.query import plan_dataset

pytestmark = pytest.mark.realdata


def test_studyforrest_dry_run(cli, shared_data, tmp_path):
    code, out, _ = cli(shared_data / "studyforrest" / "bids", tmp_path / "out", "participant", "--dry-run")
    assert code == 0
    assert "sub-02" in out and "sub-02_T1w.nii.gz" in out
    assert "sub-02_task-oneback_run-1_bold.nii.gz" in out and "TR 2 s" in out and "156 vols" in out


def test_xa30_plan_metadata(shared_data):
    participant = plan_dataset(shared_data / "xa30" / "bids").participants[0]
    assert participant.label == "01" and participant.problems == ()
    assert [i.entities["acquisition"] for i in participant.t1w] == ["tfl"]
    run = participant.bold[0]
    assert (run.repetition_time, run.n_volumes) == (1.0, 20)
    assert run.has_slice_timing and len(run.image.metadata["SliceTiming"]) == run.image.shape[2]
    assert run.image.metadata["PhaseEncodingDirection"] == "j-"
    assert [f.kind for f in run.fieldmaps] == ["phasediff"]
    names = [i.path.name for i in run.fieldmaps[0].images]
    assert names == ["sub-01_phasediff.nii.gz", "sub-01_magnitude1.nii.gz", "sub-01_magnitude2.nii.gz"]


def test_aomic_dry_run(cli, shared_data, tmp_path):
    code, out, _ = cli(shared_data / "aomic" / "bids", tmp_path / "out", "participant", "--dry-run", "--participant-label", "0001")
    assert code == 0 and "sub-0001" in out and "256x256x256" in out


def test_cropped_copy_keeps_world_coordinates(shared_data, real_scan_copy):
    source = shared_data / "xa30" / "bids"
    relpath = "sub-01/anat/sub-01_acq-tfl_T1w.nii.gz"
    root = real_scan_copy(source, relpath, step=2, crop=((10, 90), (20, 120), (4, 124)))
    original, copy = nib.load(source / relpath), nib.load(root / relpath)
    assert copy.shape == (40, 50, 60)
    # voxel (i, j, k) of the copy is voxel (10 + 2i, 20 + 2j, 4 + 2k) of the original, at the same world point
    ijk = np.array([3, 5, 7])
    world = nib.affines.apply_affine(copy.affine, ijk)
    np.testing.assert_allclose(world, nib.affines.apply_affine(original.affine, [10, 20, 4] + 2 * ijk), atol=1e-4)
    assert copy.get_fdata()[3, 5, 7] == pytest.approx(original.get_fdata()[16, 30, 18])
    assert (root / "sub-01" / "anat" / "sub-01_acq-tfl_T1w.json").is_file()
    assert plan_dataset(root).participants[0].t1w[0].shape == (40, 50, 60)
