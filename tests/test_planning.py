"""BIDS planning over small trees: selection, filters, metadata, problems."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from neurolearn_cli.dataset.intendedfor import resolve_intended_for
from neurolearn_cli.dataset.query import plan_dataset
from neurolearn_cli.errors import InputError, UsageError


def test_plan_lists_participants_runs_and_metadata(make_bids):
    root = make_bids(("01", "02"), tasks=("rest", "faces"))
    plan = plan_dataset(root)
    assert [p.label for p in plan.participants] == ["01", "02"]
    first = plan.participants[0]
    assert [i.path.name for i in first.t1w] == ["sub-01_T1w.nii.gz"]
    assert sorted(r.image.entities["task"] for r in first.bold) == ["faces", "rest"]
    run = first.bold[0]
    assert (run.repetition_time, run.n_volumes) == (2.0, 10)
    assert run.image.shape == (6, 7, 8, 10)
    assert first.problems == ()
    assert plan.participants_table == root / "participants.tsv"


def test_selection_by_participant_session_task(make_bids):
    root = make_bids(("01", "02", "03"), sessions=("a", "b"), tasks=("rest", "faces"))
    plan = plan_dataset(root, participant_labels=("03", "01"), sessions=("b",), tasks=("faces",))
    assert [p.label for p in plan.participants] == ["03", "01"]
    for participant in plan.participants:
        assert participant.sessions == ("b",)
        assert [r.image.entities["task"] for r in participant.bold] == ["faces"]
        assert all(i.entities["session"] == "b" for i in participant.t1w)


def test_bids_filter_file_entities(make_bids):
    root = make_bids(("01",), tasks=("rest", "faces"))
    plan = plan_dataset(root, filters={"bold": {"task": "rest"}})
    assert [r.image.entities["task"] for r in plan.participants[0].bold] == ["rest"]


def test_unknown_participant_lists_available(make_bids):
    root = make_bids(("01", "02"))
    with pytest.raises(UsageError, match=r"unknown participant\(s\) 07 .*available: 01, 02"):
        plan_dataset(root, participant_labels=("07",))


def test_not_bids(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        plan_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="dataset_description.json: missing"):
        plan_dataset(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "dataset_description.json").write_text("{oops")
    with pytest.raises(InputError, match="not valid JSON"):
        plan_dataset(tmp_path / "broken")


def test_invalid_file_name_is_reported_unless_skipped(make_bids):
    root = make_bids(("01",))
    (root / "sub-01" / "anat" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="notes.txt: file name is not valid BIDS"):
        plan_dataset(root)
    assert plan_dataset(root, validate=False).participants[0].label == "01"


def test_missing_repetition_time_is_a_participant_problem(make_bids):
    root = make_bids(("01",), bold_meta={"TaskName": "rest"})
    make_bids(("02",), root=root)
    plan = plan_dataset(root)
    bad, good = plan.participants
    assert "RepetitionTime" in bad.problems[0] and "sub-01_task-rest_bold.nii.gz" in bad.problems[0]
    assert good.problems == ()


def test_fieldmap_intended_for_bids_uri_and_relative(make_bids):
    root = make_bids(("01",))
    fmap = root / "sub-01" / "fmap"
    bold = "func/sub-01_task-rest_bold.nii.gz"
    fmap.mkdir()
    for name in ("phasediff", "magnitude1"):
        shutil.copy(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz", fmap / f"sub-01_{name}.nii.gz")
    meta = {"EchoTime1": 0.004, "EchoTime2": 0.0065, "IntendedFor": [f"bids::sub-01/{bold}"]}
    (fmap / "sub-01_phasediff.json").write_text(json.dumps(meta))
    run = plan_dataset(root).participants[0].bold[0]
    assert [f.kind for f in run.fieldmaps] == ["phasediff"]
    assert [i.path.name for i in run.fieldmaps[0].images] == ["sub-01_phasediff.nii.gz", "sub-01_magnitude1.nii.gz"]
    meta["IntendedFor"] = bold
    (fmap / "sub-01_phasediff.json").write_text(json.dumps(meta))
    assert len(plan_dataset(root).participants[0].bold[0].fieldmaps) == 1


def test_intended_for_uris_and_relative_paths():
    fmap = "sub-01/ses-1/fmap/sub-01_ses-1_phasediff.nii.gz"
    assert resolve_intended_for(
        [
            "bids::sub-01/ses-1/func/sub-01_ses-1_task-a_bold.nii.gz",
            "ses-1/func/sub-01_ses-1_task-b_bold.nii.gz",
        ],
        fmap,
    ) == [
        "sub-01/ses-1/func/sub-01_ses-1_task-a_bold.nii.gz",
        "sub-01/ses-1/func/sub-01_ses-1_task-b_bold.nii.gz",
    ]
    assert resolve_intended_for("func/x_bold.nii.gz", "sub-02/fmap/p.nii.gz") == [
        "sub-02/func/x_bold.nii.gz"
    ]
    with pytest.raises(InputError, match="leaves the dataset"):
        resolve_intended_for("../../etc/passwd", fmap, "p.json")
    with pytest.raises(InputError, match="another dataset"):
        resolve_intended_for("bids:raw:sub-01/func/x.nii.gz", fmap, "p.json")


def test_bad_intended_for_skips_only_that_participant(make_bids):
    root = make_bids(("01", "02"))
    fmap = root / "sub-01" / "fmap"
    fmap.mkdir()
    shutil.copy(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz", fmap / "sub-01_phasediff.nii.gz")
    sidecar = fmap / "sub-01_phasediff.json"
    sidecar.write_text(json.dumps({"EchoTime1": 0.004, "EchoTime2": 0.0065, "IntendedFor": "../../etc/passwd"}))
    first, second = plan_dataset(root).participants
    assert first.problems == (f"{sidecar}: IntendedFor '../../etc/passwd' leaves the dataset",)
    assert second.problems == ()


def test_fieldmap_chosen_by_b0_field_source_over_intended_for(make_bids):
    root = make_bids(("01",), tasks=("rest", "nback"))
    func = root / "sub-01" / "func"
    fmap = root / "sub-01" / "fmap"
    fmap.mkdir()
    t1w = root / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    for direction, identifier in (("AP", "pepolar0"), ("PA", ["pepolar0", "spare"])):
        shutil.copy(t1w, fmap / f"sub-01_dir-{direction}_epi.nii.gz")
        meta = {"PhaseEncodingDirection": "j" if direction == "AP" else "j-", "TotalReadoutTime": 0.05,
                "B0FieldIdentifier": identifier,
                "IntendedFor": "func/sub-01_task-nback_bold.nii.gz"}  # names the other run on purpose
        (fmap / f"sub-01_dir-{direction}_epi.json").write_text(json.dumps(meta))
    rest_sidecar = func / "sub-01_task-rest_bold.json"
    rest_sidecar.write_text(json.dumps({"RepetitionTime": 2.0, "TaskName": "rest", "B0FieldSource": "pepolar0"}))
    runs = {run.image.entities["task"]: run for run in plan_dataset(root).participants[0].bold}
    assert sorted(f.images[0].path.name for f in runs["rest"].fieldmaps) == [
        "sub-01_dir-AP_epi.nii.gz", "sub-01_dir-PA_epi.nii.gz"]
    # no B0FieldSource: IntendedFor still decides
    assert len(runs["nback"].fieldmaps) == 2
    # a B0FieldSource that names no fieldmap falls back to IntendedFor (none for this run)
    rest_sidecar.write_text(json.dumps({"RepetitionTime": 2.0, "TaskName": "rest", "B0FieldSource": "other"}))
    rest = next(r for r in plan_dataset(root).participants[0].bold if r.image.entities["task"] == "rest")
    assert rest.fieldmaps == ()


def test_intended_for_a_missing_file_is_a_warning(make_bids, caplog):
    root = make_bids(("01",))
    fmap = root / "sub-01" / "fmap"
    fmap.mkdir()
    shutil.copy(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz", fmap / "sub-01_phasediff.nii.gz")
    sidecar = fmap / "sub-01_phasediff.json"
    sidecar.write_text(json.dumps({"EchoTime1": 0.004, "EchoTime2": 0.0065,
                                   "IntendedFor": "func/sub-01_task-gone_bold.nii.gz"}))
    logger = logging.getLogger("neurolearn")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="neurolearn"):
            plan = plan_dataset(root)
    finally:
        logger.removeHandler(caplog.handler)
    assert plan.participants[0].problems == () and plan.participants[0].bold[0].fieldmaps == ()
    assert {r.getMessage() for r in caplog.records} == {  # the handler may see it directly and through the root
        f"{sidecar}: IntendedFor names sub-01/func/sub-01_task-gone_bold.nii.gz, which is not in the dataset: "
        "this fieldmap corrects no run there"}
