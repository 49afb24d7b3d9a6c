"""The scheduler: stages declare what they read; the runner visits needs first and runs the stale ones."""

from __future__ import annotations

import json
import logging

import pytest

from neurolearn_cli import stages
from neurolearn_cli.config import RunConfig
from neurolearn_cli.dataset.query import plan_dataset
from neurolearn_cli.run import run_participant
from neurolearn_cli.stages import PARTICIPANT_STAGES, STAGE_CURRENT, STAGE_NEEDS, stage_order
from neurolearn_cli.verify import recorded_hashes, verify


def test_every_stage_needs_stages_registered_before_it():
    order = list(PARTICIPANT_STAGES)
    assert set(STAGE_NEEDS) == set(order) and set(STAGE_CURRENT) == set(order)
    for stage, needs in STAGE_NEEDS.items():
        assert all(order.index(need) < order.index(stage) for need in needs), stage


@pytest.mark.parametrize(
    ("selected", "expected"),
    [
        (["fmri"], ["smri", "fmri"]),
        (["qc"], ["smri", "fmri", "qc"]),
        (["qc", "smri"], ["smri", "fmri", "qc"]),
        (["smri"], ["smri"]),
    ],
)
def test_needs_are_visited_first_in_registry_order(selected, expected):
    assert stage_order(selected) == expected


def test_a_surface_space_makes_fmri_need_the_surfaces(tmp_path):
    config = RunConfig(bids_dir=tmp_path / "bids", output_dir=tmp_path / "out", output_spaces=("fsnative", "T1w"))
    assert stage_order(["qc"], config) == ["smri", "surfaces", "fmri", "qc"]
    assert stage_order(["smri"], config) == ["smri"]
    plain = RunConfig(bids_dir=tmp_path / "bids", output_dir=tmp_path / "out")
    assert stage_order(["fmri"], plain) == ["smri", "fmri"]


def test_a_surface_space_without_the_surfaces_stage_is_refused_before_any_work(make_bids, tmp_path, cli):
    bids, out = make_bids(("01",)), tmp_path / "out"
    code, _, err = cli(bids, out, "participant", "--stages", "smri,fmri", "--output-spaces", "fsaverage5", "T1w")
    assert code == 2
    assert "output space fsaverage5 samples the BOLD on the cortical surfaces" in err
    assert "is missing): select it" in err
    assert "--stages smri,surfaces,fmri" in err and "Traceback" not in err
    assert not (out / "sub-01").exists()
    code, _, err = cli("fmri", bids, out, "participant", "--output-spaces", "fsnative")
    assert code == 2 and "fsnative" in err and not (out / "sub-01").exists()


def test_needs_of_needs_are_visited(monkeypatch):
    monkeypatch.setattr(stages, "PARTICIPANT_STAGES", {"a": "", "b": "", "c": "", "d": ""})
    monkeypatch.setattr(stages, "STAGE_NEEDS", {"a": (), "b": ("a",), "c": ("b",), "d": ()})
    assert stage_order(["c"]) == ["a", "b", "c"]
    assert stage_order(["d", "b"]) == ["a", "b", "d"]


def test_runner_runs_stale_needs_first_with_one_template_and_atlas(make_bids, tmp_path, monkeypatch):
    root = make_bids(("01",))
    dataset = plan_dataset(root)
    ran, contexts = [], []

    def fake(name):
        def stage(participant, context):
            ran.append(name)
            contexts.append(context)
        return stage

    monkeypatch.setattr(stages, "load_stage", lambda name, level: fake(name))
    monkeypatch.setattr(stages, "load_currency_check", lambda name: lambda participant, context: name == "fmri")
    config = RunConfig(bids_dir=root, output_dir=tmp_path / "out", stages=("qc",))
    assert run_participant(config, dataset, dataset.participants[0]).status == "done"
    assert ran == ["smri", "qc"]  # fmri is current: not rerun
    assert contexts[0].template is contexts[1].template is not None
    assert contexts[0].atlas is contexts[1].atlas is not None
    assert contexts[0].writer.fingerprint != contexts[1].writer.fingerprint  # each stage's own


@pytest.mark.slow
def test_fmri_on_fresh_output_runs_smri_first_then_qc_reads_both(tmp_path, cli):
    from neurolearn_cli.example_data import write_example_dataset

    bids = write_example_dataset(tmp_path / "bids", participants=1, seed=3, volumes=30)
    out = tmp_path / "out"

    def newest_log() -> str:
        return max((out / "logs").glob("neurolearn-*.log"), key=lambda p: p.stat().st_mtime_ns).read_text()

    code, _, _ = cli("fmri", bids, out, "participant", "--omp-nthreads", "2")
    assert code == 0
    log = newest_log()
    assert "smri outputs missing or stale; running smri first" in log
    assert log.index("sub-01: smri") < log.index("sub-01: fmri") and "sub-01: qc" not in log
    recorded = set(json.loads((out / "logs" / "manifest" / "sub-01.json").read_text()))
    assert "sub-01/anat/sub-01_desc-preproc_T1w.nii.gz" in recorded
    assert "sub-01/func/sub-01_task-faces_desc-confounds_timeseries.tsv" in recorded
    assert not (out / "sub-01.html").exists()

    before = {p for p in out.rglob("*") if p.is_file()}
    for level in ("participant", "group"):
        code, _, _ = cli("qc", bids, out, level, "--omp-nthreads", "2")
        assert code == 0
        if level == "participant":  # smri and fmri are current: only qc runs
            log = newest_log()
            assert "sub-01: qc\n" in log and "sub-01: smri\n" not in log and "sub-01: fmri\n" not in log
            assert "sub-01: smri outputs are up to date" in log and "sub-01: fmri outputs are up to date" in log
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p not in before}
    qc_outputs = {"sub-01.html", "sub-01/anat/sub-01_T1w.json", "sub-01/func/sub-01_task-faces_bold.json",
                  "group_T1w.tsv", "group_T1w.html", "group_bold.tsv", "group_bold.html", "logs/CITATION.md"}
    assert qc_outputs <= written
    data = {path for path in written if not path.startswith("logs/") or path == "logs/CITATION.md"}
    assert data <= set(recorded_hashes(out))  # every qc output is in a manifest
    assert verify(out).ok

    # unchanged participant: qc's outputs are kept, not rewritten
    participant_qc = [out / path for path in sorted(qc_outputs) if path.startswith("sub-")]
    stamps = {path: path.stat().st_mtime_ns for path in participant_qc}
    manifest = (out / "logs" / "manifest" / "sub-01.json").read_bytes()
    code, _, _ = cli("qc", bids, out, "participant", "--omp-nthreads", "2")
    assert code == 0
    log = newest_log()
    assert "sub-01: qc outputs are up to date" in log and "sub-01: qc\n" not in log
    assert {path: path.stat().st_mtime_ns for path in participant_qc} == stamps
    assert (out / "logs" / "manifest" / "sub-01.json").read_bytes() == manifest
    (out / "logs" / "CITATION.md").write_text("edited\n")
    assert verify(out).changed == ["logs/CITATION.md"]


def test_a_stage_without_its_inputs_has_nothing_to_do(caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace

    from neurolearn_cli.dataset.plan import ParticipantPlan
    from neurolearn_cli.run import run_stage

    logger = logging.getLogger("test.stages")
    participant = ParticipantPlan(label="05", sessions=(), t1w=(), bold=())
    context = SimpleNamespace(log=logger, for_stage=lambda stage: pytest.fail("fmri was scheduled without a BOLD run"))
    with caplog.at_level(logging.INFO, logger="test.stages"):
        run_stage("fmri", participant, context)  # type: ignore[arg-type]
    assert caplog.messages == ["sub-05: fmri: nothing to do (no BOLD run)"]


def test_a_failed_surfaces_stage_fails_the_participant_but_qc_reports_it(make_bids, tmp_path, monkeypatch):
    """smri's volumes and the report are still made; the report's context carries the one-line reason."""
    from neurolearn_cli.errors import ProcessingError

    root = make_bids(("01",))
    dataset = plan_dataset(root)
    ran, failures = [], {}

    def fake(name):
        def stage(participant, context):
            ran.append(name)
            failures[name] = dict(context.failed_stages)
            if name == "surfaces":
                raise ProcessingError("surfaces: white surface has Euler characteristic 0 after topology correction")
        return stage

    monkeypatch.setattr(stages, "load_stage", lambda name, level: fake(name))
    # qc's outputs look current, but it reads the surfaces, which failed in this run: it runs again
    monkeypatch.setattr(stages, "load_currency_check", lambda name: lambda participant, context: name == "qc")
    config = RunConfig(bids_dir=root, output_dir=tmp_path / "out", stages=("smri", "surfaces", "qc"))
    outcome = run_participant(config, dataset, dataset.participants[0])
    assert ran == ["smri", "surfaces", "fmri", "qc"]
    assert outcome.status == "failed" and outcome.reason.startswith("surfaces: white surface has Euler")
    assert failures["qc"] == {"surfaces": outcome.reason} and failures["smri"] == {}
    status = json.loads((tmp_path / "out" / "logs" / "status" / "sub-01.json").read_text())
    assert status["reason"] == outcome.reason

    # a failure of any other stage still stops the participant at once
    ran.clear()
    monkeypatch.setattr(stages, "load_stage", lambda name, level: (lambda p, c: (_ for _ in ()).throw(
        ProcessingError("smri: segmentation did not converge"))) if name == "smri" else fake(name))
    assert run_participant(config, dataset, dataset.participants[0]).status == "failed" and ran == []


def test_qc_digest_covers_the_surfaces_only_where_they_were_recorded(tmp_path):
    from types import SimpleNamespace

    from neurolearn_cli.derivatives import DerivativesWriter

    writer = DerivativesWriter(tmp_path, "sub-01", "start")
    context = stages.StageContext(config=SimpleNamespace(output_spaces=()), device="cpu", dataset=None, writer=writer,
                                  log=logging.getLogger("test"),
                                  fingerprints={"smri": "s", "surfaces": "f", "fmri": "b", "qc": "q"})
    before = context.stage_digest("qc")
    surfaces = context.for_stage("surfaces").writer
    surfaces.write_text(tmp_path / "sub-01" / "anat" / "sub-01_hemi-L_white.surf.gii", "mesh")
    after = context.stage_digest("qc")
    assert after != before
    surfaces.write_text(tmp_path / "sub-01" / "anat" / "sub-01_hemi-L_white.surf.gii", "other mesh")
    assert context.stage_digest("qc") not in (before, after)
