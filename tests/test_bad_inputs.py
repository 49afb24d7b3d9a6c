"""Bad input of one participant: one line naming the file, that participant skipped, the others run, exit 2."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurolearn_cli import stages


def record_stage(participant, context):
    """A stand-in stage that records which participants ran."""
    context.writer.write_json(context.writer.path({"subject": participant.label, "suffix": "ran", "extension": ".json"}), {})


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def two_dimensional(path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((7, 8), np.float32), np.eye(4)), path)


def nan_only(path: Path) -> None:
    nib.save(nib.Nifti1Image(np.full((7, 8, 9), np.nan, np.float32), np.eye(4)), path)


def bold_3d(path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((6, 7, 8), np.float32), np.eye(4)), path)


def not_nifti(path: Path) -> None:
    path.write_bytes(gzip.compress(b"this is not a NIfTI header" * 20))


def no_repetition_time(path: Path) -> None:
    path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps({"TaskName": "rest"}))


def unreadable(path: Path) -> None:
    path.chmod(0)


T1W = "sub-02/anat/sub-02_T1w.nii.gz"
BOLD = "sub-02/func/sub-02_task-rest_bold.nii.gz"


@pytest.mark.parametrize(
    ("relpath", "damage", "message"),
    [
        (T1W, truncate, "truncated"),
        (T1W, empty, "empty file"),
        (T1W, two_dimensional, "2D image"),
        (T1W, nan_only, "no finite voxel values"),
        (T1W, not_nifti, "cannot read NIfTI header"),
        (BOLD, bold_3d, "is not 4D"),
        (BOLD, no_repetition_time, "RepetitionTime"),
        pytest.param(T1W, unreadable, "permission denied",
                     marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")),
    ],
)
def test_bad_input_skips_only_that_participant(cli, make_bids, tmp_path, monkeypatch, relpath, damage, message):
    monkeypatch.setitem(stages.PARTICIPANT_STAGES, "smri", "record:stage")
    monkeypatch.setattr(stages, "load_stage", lambda name, level: record_stage)
    root = make_bids(("01", "02", "03"))
    damage(root / relpath)
    out = tmp_path / "out"
    code, _, err = cli(root, out, "participant", "--stages", "smri")
    assert code == 2
    lines = [line for line in err.splitlines() if relpath.split("/")[-1] in line]
    assert lines and message in lines[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.glob("sub-*/anat/*_ran.json")) == ["sub-01_ran.json", "sub-03_ran.json"]
    assert not (out / "sub-02").exists()
    assert not list(out.rglob("*.part"))
