"""Resume bookkeeping: one fingerprint per stage, stale temporaries cleared, stages rerun only when needed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from neurolearn_cli import atomic, stages
from neurolearn_cli.config import RunConfig
from neurolearn_cli.dataset.plan import ParticipantPlan
from neurolearn_cli.dataset.query import plan_dataset
from neurolearn_cli.derivatives import DerivativesWriter
from neurolearn_cli.qc import workflow as qc_workflow
from neurolearn_cli.run import run_participant, stage_fingerprints
from neurolearn_cli.spaces import parse_output_space
from neurolearn_cli.stages import StageContext
from neurolearn_cli.templateflow import scan_home, templateflow_home


@pytest.fixture
def tiny(make_bids, tmp_path):
    """A one-participant BIDS tree, its plan and a base config."""
    root = make_bids(("01",))
    participant = plan_dataset(root).participants[0]
    return root, participant, RunConfig(bids_dir=root, output_dir=tmp_path / "out")


def fingerprints(config: RunConfig, participant: ParticipantPlan) -> dict[str, str]:
    """The per-stage digests, with the config's TemplateFlow home listed as the runner lists it."""
    return stage_fingerprints(config, participant, scan_home(templateflow_home(config.templateflow_dir)))


def changed_stages(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {stage for stage in before if before[stage] != after[stage]}


def test_fmri_settings_leave_smri_fingerprint(tiny):
    root, participant, config = tiny
    base = fingerprints(config, participant)
    assert set(base) == {"smri", "surfaces", "fmri", "qc"}
    spaces = config.model_copy(update={"output_spaces": (parse_output_space("T1w"),)})
    assert changed_stages(base, fingerprints(spaces, participant)) == {"fmri", "qc"}
    threshold = config.model_copy(update={"fd_spike_threshold": 0.2})
    assert changed_stages(base, fingerprints(threshold, participant)) == {"fmri", "qc"}


def test_shared_settings_change_every_stage(tiny):
    root, participant, config = tiny
    base = fingerprints(config, participant)
    assert changed_stages(base, fingerprints(config.model_copy(update={"seed": 7}), participant)) == set(base)
    quiet = config.model_copy(update={"nprocs": 2, "verbosity": -1, "target": "age"})
    assert changed_stages(base, fingerprints(quiet, participant)) == set()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_counts_as_resolved(tiny):
    root, participant, config = tiny
    automatic = fingerprints(config.model_copy(update={"device": "auto"}), participant)
    assert fingerprints(config.model_copy(update={"device": "cpu"}), participant) == automatic


def test_input_bytes_reach_the_stages_that_read_them(tiny):
    root, participant, config = tiny
    base = fingerprints(config, participant)
    sidecar = root / "sub-01" / "func" / "sub-01_task-rest_bold.json"
    sidecar.write_text(sidecar.read_text().replace("2.0", "2.5"))
    assert changed_stages(base, fingerprints(config, participant)) == {"fmri", "qc"}
    t1w = root / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    t1w.write_bytes(t1w.read_bytes() + b"\0")
    assert changed_stages(base, fingerprints(config, participant)) == {"smri", "surfaces", "fmri", "qc"}


def test_atlas_file_contents_are_fingerprinted(tiny, tmp_path):
    root, participant, config = tiny
    atlas, labels = tmp_path / "atlas.nii.gz", tmp_path / "atlas.tsv"
    atlas.write_bytes(b"atlas")
    labels.write_text("index\tname\n1\ta\n")
    with_atlas = config.model_copy(update={"atlas": atlas, "atlas_labels": labels})
    before = fingerprints(with_atlas, participant)
    labels.write_text("index\tname\n1\tb\n")
    assert changed_stages(before, fingerprints(with_atlas, participant)) == set(before)


def test_stage_writers_share_one_manifest(tmp_path):
    writer = DerivativesWriter(tmp_path, "sub-01", "")
    smri, fmri = writer.with_fingerprint("smri-digest"), writer.with_fingerprint("fmri-digest")
    anat = smri.write_text(tmp_path / "sub-01" / "anat" / "a.txt", "anat")
    func = fmri.write_text(tmp_path / "sub-01" / "func" / "f.txt", "func")
    reread = DerivativesWriter(tmp_path, "sub-01", "")
    assert reread.with_fingerprint("smri-digest").is_current([anat])
    assert reread.with_fingerprint("fmri-digest").is_current([func])
    assert not reread.with_fingerprint("fmri-digest").is_current([anat])
    assert not reread.with_fingerprint("smri-digest2").is_current([anat])


def test_remove_temporaries_clears_only_partial_writes(tmp_path):
    keep = atomic.write_text(tmp_path / "sub-01" / "anat" / "keep.json", "{}")
    hidden = tmp_path / "sub-01" / ".hidden"
    hidden.write_text("not ours")
    stale = tmp_path / "sub-01" / "func" / ".x_bold.nii.gz.k2j3.part"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    assert atomic.remove_temporaries(tmp_path / "sub-01") == [stale]
    assert keep.is_file() and hidden.is_file() and not stale.exists()
    assert atomic.remove_temporaries(tmp_path / "missing") == []
    manifests = tmp_path / "logs" / "manifest"
    manifests.mkdir(parents=True)
    mine, other = manifests / ".sub-01.json.a1b2.part", manifests / ".sub-02.json.c3d4.part"
    mine.write_text("{")
    other.write_text("{")
    assert atomic.remove_temporaries(tmp_path / "logs", name="sub-01.json") == [mine]
    assert other.exists()


REAL_CURRENCY_CHECK = stages.load_currency_check


class FakeStages:
    """Stages that write through the real writer; qc keeps its registered currency check and planned paths.

    ``smri`` writes ``smri_bytes`` (so a test can make it write other bytes),
    ``fmri`` one file; ``qc`` writes every path :func:`qc.workflow.planned_outputs`
    names. ``ran`` lists the stages that ran, in order.
    """

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.smri_bytes = "smri v1"

    def smri_output(self, context) -> Path:
        return context.writer.output_dir / "sub-01" / "anat" / "smri.txt"

    def fmri_output(self, context) -> Path:
        return context.writer.output_dir / "sub-01" / "func" / "fmri.txt"

    def load_stage(self, name: str, level: str):
        def stage(participant, context) -> None:
            self.ran.append(name)
            if name == "smri":
                context.writer.write_text(self.smri_output(context), self.smri_bytes)
            elif name == "fmri":
                context.writer.write_text(self.fmri_output(context), "fmri")
            else:
                for path in qc_workflow.planned_outputs(participant, context):
                    context.writer.write_text(path, f"qc of {self.smri_output(context).read_text()}")
        return stage

    def load_currency_check(self, name: str):
        if name == "qc":
            return REAL_CURRENCY_CHECK(name)
        output = self.smri_output if name == "smri" else self.fmri_output
        return lambda participant, context: context.writer.is_current([output(context)])


@pytest.fixture
def neurolearn_log(caplog):
    """Records of the ``neurolearn`` logger (which does not propagate once the CLI set it up)."""
    logger = logging.getLogger("neurolearn")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="neurolearn")
    yield caplog
    logger.removeHandler(caplog.handler)


def test_qc_reruns_only_when_what_it_reads_changes(tiny, monkeypatch, neurolearn_log):
    root, participant, config = tiny
    dataset = plan_dataset(root)
    fakes = FakeStages()
    monkeypatch.setattr(stages, "load_stage", fakes.load_stage)
    monkeypatch.setattr(stages, "load_currency_check", fakes.load_currency_check)
    config = config.model_copy(update={"stages": ("qc",)})
    out = config.output_dir
    manifest = out / "logs" / "manifest" / "sub-01.json"

    def run(run_config: RunConfig) -> list[str]:
        fakes.ran.clear()
        neurolearn_log.clear()
        assert run_participant(run_config, dataset, dataset.participants[0]).status == "done"
        return list(fakes.ran)

    assert run(config) == ["smri", "fmri", "qc"]
    qc_paths = [out / "sub-01.html", out / "sub-01" / "anat" / "sub-01_T1w.json",
                out / "sub-01" / "func" / "sub-01_task-rest_bold.json"]
    stamps = {path: path.stat().st_mtime_ns for path in qc_paths}
    recorded = manifest.read_bytes()

    assert run(config) == []  # unchanged: qc is kept, and the stages it needs are not run either
    assert "sub-01: qc outputs are up to date" in neurolearn_log.messages
    assert {path: path.stat().st_mtime_ns for path in qc_paths} == stamps
    assert manifest.read_bytes() == recorded

    assert run(config.model_copy(update={"fd_spike_threshold": 0.3})) == ["fmri", "qc"]  # a setting qc reads

    assert run(config.model_copy(update={"resume": False})) == ["smri", "fmri", "qc"]

    # smri's output lost and written again with the same bytes: what reads it is kept
    (out / "sub-01" / "anat" / "smri.txt").unlink()
    assert run(config) == ["smri"]
    # ... with other bytes (its own inputs unchanged): fmri and qc, which read it, rerun in the same run
    (out / "sub-01" / "anat" / "smri.txt").unlink()
    fakes.smri_bytes = "smri v2"
    assert run(config) == ["smri", "fmri", "qc"]
    assert (out / "sub-01.html").read_text() == "qc of smri v2"
    assert run(config) == []


def test_stage_digest_covers_the_recorded_outputs_of_its_needs(tiny):
    root, participant, config = tiny
    digests = fingerprints(config, participant)
    writer = DerivativesWriter(config.output_dir, "sub-01", "")
    context = StageContext(config=config, device="cpu", dataset=plan_dataset(root), writer=writer,
                           log=logging.getLogger("test"), fingerprints=digests)
    before = {stage: context.stage_digest(stage) for stage in digests}
    assert before["smri"] == digests["smri"]  # needs nothing
    anat = context.for_stage("smri").writer.write_text(config.output_dir / "sub-01" / "anat" / "a.txt", "a")
    after = {stage: context.stage_digest(stage) for stage in digests}
    assert changed_stages(before, after) == {"surfaces", "fmri", "qc"}
    context.for_stage("qc").writer.write_text(config.output_dir / "sub-01.html", "report")  # qc's own: no change
    assert {stage: context.stage_digest(stage) for stage in digests} == after
    context.for_stage("smri").writer.write_text(anat, "b")
    assert changed_stages(after, {stage: context.stage_digest(stage) for stage in digests}) == {"surfaces", "fmri",
                                                                                                 "qc"}


def test_fmri_reads_the_surfaces_only_for_a_surface_space(tiny):
    root, participant, config = tiny

    def surfaces_rewrite_changes(run_config: RunConfig) -> set[str]:
        digests = fingerprints(run_config, participant)
        writer = DerivativesWriter(run_config.output_dir, "sub-01", "")
        context = StageContext(config=run_config, device="cpu", dataset=plan_dataset(root), writer=writer,
                               log=logging.getLogger("test"), fingerprints=digests)
        before = {stage: context.stage_digest(stage) for stage in digests}
        context.for_stage("surfaces").writer.write_text(run_config.output_dir / "sub-01" / "anat" / "s.txt",
                                                        str(run_config.output_spaces))
        return changed_stages(before, {stage: context.stage_digest(stage) for stage in digests})

    assert surfaces_rewrite_changes(config) == {"qc"}  # qc shows the surfaces wherever they were recorded
    with_surface = config.model_copy(update={"output_spaces": (*config.output_spaces, parse_output_space("fsnative"))})
    assert surfaces_rewrite_changes(with_surface) == {"fmri", "qc"}
