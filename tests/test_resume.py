"""Resume bookkeeping: one fingerprint per stage, stale temporaries cleared, stages rerun only when needed."""

from __future__ import annotations

import pytest

from neurolearn_cli import atomic
from neurolearn_cli.config import RunConfig
from neurolearn_cli.dataset.query import plan_dataset
from neurolearn_cli.derivatives import DerivativesWriter
from neurolearn_cli.run import stage_fingerprints
from neurolearn_cli.spaces import parse_output_space


@pytest.fixture
def tiny(make_bids, tmp_path):
    """A one-participant BIDS tree, its plan and a base config."""
    root = make_bids(("01",))
    participant = plan_dataset(root).participants[0]
    return root, participant, RunConfig(bids_dir=root, output_dir=tmp_path / "out")


def changed_stages(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {stage for stage in before if before[stage] != after[stage]}


def test_fmri_settings_leave_smri_fingerprint(tiny):
    root, participant, config = tiny
    base = stage_fingerprints(config, participant)
    assert set(base) == {"smri", "fmri", "qc"}
    spaces = config.model_copy(update={"output_spaces": (parse_output_space("T1w"),)})
    assert changed_stages(base, stage_fingerprints(spaces, participant)) == {"fmri", "qc"}
    threshold = config.model_copy(update={"fd_spike_threshold": 0.2})
    assert changed_stages(base, stage_fingerprints(threshold, participant)) == {"fmri", "qc"}


def test_shared_settings_change_every_stage(tiny):
    root, participant, config = tiny
    base = stage_fingerprints(config, participant)
    assert changed_stages(base, stage_fingerprints(config.model_copy(update={"seed": 7}), participant)) == set(base)
    quiet = config.model_copy(update={"nprocs": 2, "verbosity": -1, "target": "age"})
    assert changed_stages(base, stage_fingerprints(quiet, participant)) == set()


def test_input_bytes_reach_the_stages_that_read_them(tiny):
    root, participant, config = tiny
    base = stage_fingerprints(config, participant)
    sidecar = root / "sub-01" / "func" / "sub-01_task-rest_bold.json"
    sidecar.write_text(sidecar.read_text().replace("2.0", "2.5"))
    assert changed_stages(base, stage_fingerprints(config, participant)) == {"fmri", "qc"}
    t1w = root / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    t1w.write_bytes(t1w.read_bytes() + b"\0")
    assert changed_stages(base, stage_fingerprints(config, participant)) == {"smri", "fmri", "qc"}


def test_atlas_file_contents_are_fingerprinted(tiny, tmp_path):
    root, participant, config = tiny
    atlas, labels = tmp_path / "atlas.nii.gz", tmp_path / "atlas.tsv"
    atlas.write_bytes(b"atlas")
    labels.write_text("index\tname\n1\ta\n")
    with_atlas = config.model_copy(update={"atlas": atlas, "atlas_labels": labels})
    before = stage_fingerprints(with_atlas, participant)
    labels.write_text("index\tname\n1\tb\n")
    assert changed_stages(before, stage_fingerprints(with_atlas, participant)) == set(before)


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
