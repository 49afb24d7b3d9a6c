"""The bad-input and fault matrix, for each participant stage.

One participant's bad input: one line naming the file, that participant
skipped, the others run, exit 2. A write error (a full disk, simulated):
exit 1, the file named, nothing half-written, the others run. The stage here
is a stand-in that reads its inputs with the engine's reader, as every real
stage does, and writes through the run's derivatives writer, so what is
tested is the runner's, the planner's, the reader's and the writer's
handling, under each stage name.
"""

from __future__ import annotations

import builtins
import errno
import gzip
import io
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurolearn_cli import atomic, stages

PARTICIPANT_STAGES = ("smri", "fmri", "qc")
T1W = "sub-02/anat/sub-02_T1w.nii.gz"
BOLD = "sub-02/func/sub-02_task-rest_bold.nii.gz"


def reading_stage(participant, context):
    """A stand-in stage: read every input image with the engine's reader, then record that it ran."""
    from neurolearn_cli.engine.io import load_image

    for image in (*participant.t1w, *(run.image for run in participant.bold)):
        load_image(image.path, context.device)
    context.writer.write_json(context.writer.path({"subject": participant.label, "suffix": "ran", "extension": ".json"}), {})


@pytest.fixture(params=PARTICIPANT_STAGES)
def stage(request, monkeypatch):
    """Each participant stage name, served by the stand-in."""
    monkeypatch.setattr(stages, "load_stage", lambda name, level: reading_stage)
    return request.param


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def two_dimensional(path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((7, 8), np.float32), np.eye(4)), path)


def nan_only(path: Path) -> None:
    nib.save(nib.Nifti1Image(np.full((7, 8, 9), np.nan, np.float32), np.eye(4)), path)


def some_nans(path: Path) -> None:
    image = nib.load(path)
    data = np.asanyarray(image.dataobj).astype(np.float32)
    data[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(data, image.affine), path)


def complex_valued(path: Path) -> None:
    image = nib.load(path)
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj).astype(np.complex64), image.affine), path)


def bold_3d(path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((6, 7, 8), np.float32), np.eye(4)), path)


def five_dimensional(path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((6, 7, 8, 1, 2), np.float32), np.eye(4)), path)


def no_voxel_geometry(path: Path) -> None:
    """Zero voxel sizes and neither sform nor qform (nibabel would silently read the sizes as 1 mm)."""
    image = nib.Nifti1Image(np.ones((7, 8, 9), np.float32), None)
    image.header["pixdim"][1:4] = 0
    image.header["sform_code"] = image.header["qform_code"] = 0
    nib.save(image, path)


def not_nifti(path: Path) -> None:
    path.write_bytes(gzip.compress(b"this is not a NIfTI header" * 20))


def sidecar(path: Path) -> Path:
    return path.with_name(path.name.replace(".nii.gz", ".json"))


def no_repetition_time(path: Path) -> None:
    sidecar(path).write_text(json.dumps({"TaskName": "rest"}))


def short_slice_timing(path: Path) -> None:
    sidecar(path).write_text(json.dumps({"TaskName": "rest", "RepetitionTime": 2.0, "SliceTiming": [0.0, 1.0]}))


DAMAGES = [
    (T1W, truncate, "truncated"),
    (BOLD, truncate, "truncated"),
    (T1W, empty, "empty file"),
    (T1W, two_dimensional, "2D image"),
    (T1W, nan_only, "no finite voxel values"),
    (T1W, some_nans, "NaN or infinite"),
    (BOLD, some_nans, "NaN or infinite"),
    (T1W, complex_valued, "unsupported data type complex64"),
    (T1W, not_nifti, "cannot read NIfTI header"),
    (BOLD, bold_3d, "3D image of shape (6, 7, 8); expected a 4D time series"),
    (BOLD, five_dimensional, "5D image of shape (6, 7, 8, 1, 2); expected a 4D time series"),
    (T1W, five_dimensional, "5D image of shape (6, 7, 8, 1, 2); expected a 3D volume"),
    (T1W, no_voxel_geometry, "the voxel geometry is unknown"),
    (BOLD, no_repetition_time, "RepetitionTime"),
    (BOLD, short_slice_timing, "SliceTiming has 2 values but the image has 8 slices"),
]


def ran(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("sub-*/anat/*_ran.json"))


@pytest.mark.parametrize(("relpath", "damage", "message"), DAMAGES,
                         ids=[f"{r.split('_')[-1].split('.')[0]}-{d.__name__}" for r, d, _ in DAMAGES])
def test_bad_input_skips_only_that_participant(cli, make_bids, tmp_path, stage, relpath, damage, message):
    root = make_bids(("01", "02", "03"))
    damage(root / relpath)
    out = tmp_path / "out"
    code, _, err = cli(root, out, "participant", "--stages", stage)
    assert code == 2
    lines = [line for line in err.splitlines() if relpath.split("/")[-1] in line]
    assert lines and message in lines[0], err
    assert "Traceback" not in err
    assert ran(out) == ["sub-01_ran.json", "sub-03_ran.json"]
    assert not list((out / "sub-02").rglob("*.nii*")) and not list((out / "sub-02").rglob("*_ran.json"))
    assert not list(out.rglob("*.part"))
    status = json.loads((out / "logs" / "status" / "sub-02.json").read_text())
    assert status["status"] == "skipped" and message in status["reason"]


def test_unreadable_file_skips_only_that_participant(cli, make_bids, tmp_path, stage, monkeypatch):
    """Permission denied: by chmod, and by a simulated refusal where the tests run as root (root reads anything)."""
    root = make_bids(("01", "02", "03"))
    target = (root / T1W).resolve()
    (root / T1W).chmod(0)
    if os.geteuid() == 0:
        real_open = builtins.open

        def refusing_open(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and Path(file).resolve() == target:
                raise PermissionError(errno.EACCES, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refusing_open)
        monkeypatch.setattr(io, "open", refusing_open)
    code, _, err = cli(root, tmp_path / "out", "participant", "--stages", stage)
    assert code == 2
    assert any("sub-02_T1w.nii.gz" in line and "permission denied" in line for line in err.splitlines()), err
    assert ran(tmp_path / "out") == ["sub-01_ran.json", "sub-03_ran.json"]


def test_disk_full_fails_only_that_participant(cli, make_bids, tmp_path, stage, monkeypatch):
    """A write that runs out of space: exit 1, the file named, no partial or temporary file, the others done."""
    root = make_bids(("01", "02", "03"))
    real_fdopen = os.fdopen

    class FullDisk(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def fdopen(fd, mode="r", *args, **kwargs):
        handle = real_fdopen(fd, mode, *args, **kwargs)
        if "sub-02_ran.json" in os.readlink(f"/proc/self/fd/{fd}"):
            handle.close()
            return FullDisk()
        return handle

    monkeypatch.setattr(atomic.os, "fdopen", fdopen)
    out = tmp_path / "out"
    code, _, err = cli(root, out, "participant", "--stages", stage)
    assert code == 1
    assert any("sub-02_ran.json" in line and "No space left on device" in line for line in err.splitlines()), err
    assert "Traceback" not in err
    assert ran(out) == ["sub-01_ran.json", "sub-03_ran.json"]
    assert not [p for p in (out / "sub-02").rglob("*") if p.is_file()]
    status = json.loads((out / "logs" / "status" / "sub-02.json").read_text())
    assert status["status"] == "failed" and "No space left on device" in status["reason"]


def test_disk_full_at_group_level_is_one_line(cli, make_bids, tmp_path, monkeypatch):
    """A group stage whose write fails: exit 1 and one line naming the file, no traceback."""
    def writing_group_stage(dataset, context):
        context.writer.write_json(context.config.output_dir / "group_table.json", {})

    real_write_bytes = atomic.write_bytes

    def refuse(path, data):
        if Path(path).name == "group_table.json":
            raise OSError(errno.ENOSPC, f"cannot write {path}: No space left on device")
        return real_write_bytes(path, data)

    monkeypatch.setattr(stages, "load_stage",
                        lambda name, level: reading_stage if level == "participant" else writing_group_stage)
    root = make_bids(("01",))
    out = tmp_path / "out"
    code, _, _ = cli(root, out, "participant", "--stages", "qc")
    assert code == 0
    monkeypatch.setattr(atomic, "write_bytes", refuse)
    code, _, err = cli(root, out, "group", "--stages", "qc")
    assert code == 1
    assert any("group_table.json" in line and "No space left on device" in line for line in err.splitlines()), err
    assert "Traceback" not in err and not (out / "group_table.json").exists()


def test_unreadable_sidecar_skips_only_its_participant(cli, make_bids, tmp_path, monkeypatch):
    monkeypatch.setattr(stages, "load_stage", lambda name, level: reading_stage)
    root = make_bids(("01", "02", "03"))
    sidecar(root / BOLD).write_text("{ not json")
    code, _, err = cli(root, tmp_path / "out", "participant", "--stages", "smri", "--dry-run")
    assert code == 0 and "Traceback" not in err  # the plan is made; the participant is marked
    code, _, err = cli(root, tmp_path / "out", "participant", "--stages", "smri")
    assert code == 2
    status = json.loads((tmp_path / "out" / "logs" / "status" / "sub-02.json").read_text())
    assert status["status"] == "skipped" and "sub-02_task-rest_bold.json: not valid JSON" in status["reason"]
    assert ran(tmp_path / "out") == ["sub-01_ran.json", "sub-03_ran.json"]


def test_unreadable_top_level_sidecar_is_one_line(cli, make_bids, tmp_path):
    root = make_bids(("01", "02"))
    (root / "task-rest_bold.json").write_text("[1, 2")
    code, _, err = cli(root, tmp_path / "out", "participant")
    assert code == 2
    assert err.strip() == f"neurolearn: error: {root / 'task-rest_bold.json'}: not valid JSON " \
                          "(Expecting ',' delimiter: line 1 column 6 (char 5))"
    assert not (tmp_path / "out").exists()


def test_output_dir_that_cannot_hold_derivatives_is_refused_first(cli, make_bids, tmp_path):
    root = make_bids(("01",))
    afile = tmp_path / "results"
    afile.write_text("")
    code, _, err = cli(root, afile, "participant")
    assert (code, err.strip()) == (2, f"neurolearn: error: {afile}: is a file; OUTPUT_DIR must be a directory")
    code, _, err = cli(root, afile / "out", "participant")
    assert (code, err.strip()) == (2, f"neurolearn: error: {afile}: is a file; OUTPUT_DIR cannot be created under it")
    code, _, err = cli(root, "/proc/neurolearn-out", "participant")  # not writable, even as root
    assert code == 2 and err.startswith("neurolearn: error: /proc: not writable")
