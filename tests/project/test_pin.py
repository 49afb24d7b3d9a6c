"""``--project`` runs exactly the project's workflow: contradictions, versions and atlases are usage errors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from neurolearn_cli.config import RunConfig
from neurolearn_cli.errors import UsageError
from neurolearn_cli.project.model import load_project
from neurolearn_cli.project.pin import pin_config, workflow_fingerprint

from .conftest import write_project

Cli = Callable[..., tuple[int, str, str]]


def _edit(path: Path, **workflow: object) -> Path:
    payload = yaml.safe_load(path.read_text())
    payload["workflow"].update(workflow)
    path.write_text(yaml.safe_dump(payload))
    return path


@pytest.mark.parametrize(("extra", "message"), [
    (["--fd-spike-threshold", "0.3"], "--fd-spike-threshold 0.3 contradicts project 'consortium'"),
    (["--stages", "smri"], "--stages smri contradicts project 'consortium'"),
    (["--atlas", "atlas.nii.gz"], "--atlas: project 'consortium' uses the bundled atlas"),
])
def test_a_contradicting_option_is_a_usage_error(cli: Cli, make_bids: Callable[..., Path], tmp_path: Path,
                                                 extra: list[str], message: str) -> None:
    bids, project = make_bids(), write_project(tmp_path / "project")
    (tmp_path / "atlas.nii.gz").write_bytes(b"not an atlas")
    extra = [str(tmp_path / e) if e.endswith(".gz") else e for e in extra]
    code, _, stderr = cli(bids, tmp_path / "out", "participant", "--project", project, *extra, "--dry-run")
    assert code == 2 and message in stderr and stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_agreeing_options_run_and_the_project_values_apply(cli: Cli, make_bids: Callable[..., Path],
                                                           tmp_path: Path) -> None:
    bids, project = make_bids(), write_project(tmp_path / "project")
    code, stdout, stderr = cli(bids, tmp_path / "out", "participant", "--project", project, "--seed", "0",
                               "--stages", "smri,qc", "--dry-run")
    assert code == 0, stderr
    assert "stages: smri, qc" in stdout
    config = pin_config(RunConfig(bids_dir=bids, output_dir=tmp_path / "out"), load_project(project), project, set())
    assert config.stages == ("smri", "qc")
    other = pin_config(RunConfig(bids_dir=bids, output_dir=tmp_path / "out", dvars_spike_threshold=2.0),
                       load_project(project), project, set())  # not given by the user: the project's value wins
    assert other.dvars_spike_threshold == 1.5 and workflow_fingerprint(other) == workflow_fingerprint(config)


def test_a_version_outside_the_range_is_refused(cli: Cli, make_bids: Callable[..., Path], tmp_path: Path) -> None:
    bids, project = make_bids(), write_project(tmp_path / "project")
    code, _, stderr = cli(bids, tmp_path / "out", "group", "--project", project, "--dry-run")
    assert code == 0, stderr  # the group level (a SLURM group job gets every job's options) pins nothing
    payload = yaml.safe_load(project.read_text())
    payload["neurolearn"] = ">=9.0"
    project.write_text(yaml.safe_dump(payload))
    code, _, stderr = cli(bids, tmp_path / "out", "participant", "--project", project)
    assert code == 2 and stderr.strip().endswith("project 'consortium' needs neurolearn >=9.0; this neurolearn is 0.1.0")
    payload["neurolearn"] = "0.1 or later"
    project.write_text(yaml.safe_dump(payload))
    code, _, stderr = cli(bids, tmp_path / "out", "participant", "--project", project)
    assert code == 2 and "field 'neurolearn': '0.1 or later' is not a version range" in stderr


def test_an_atlas_is_pinned_by_its_hash(make_bids: Callable[..., Path], tmp_path: Path) -> None:
    bids = make_bids()
    atlas, wrong = tmp_path / "atlas.nii.gz", tmp_path / "wrong.nii.gz"
    atlas.write_bytes(b"atlas bytes")
    wrong.write_bytes(b"other bytes")
    project = _edit(write_project(tmp_path / "project"), atlas={"sha256": hashlib.sha256(b"atlas bytes").hexdigest()})
    pinned = load_project(project)
    config = RunConfig(bids_dir=bids, output_dir=tmp_path / "out", atlas=atlas)
    assert pin_config(config, pinned, project, {"atlas"}).atlas == atlas
    with pytest.raises(UsageError, match="not the project's atlas"):
        pin_config(config.model_copy(update={"atlas": wrong}), pinned, project, {"atlas"})
    with pytest.raises(UsageError, match="needs --atlas: the atlas file with sha256"):
        pin_config(config.model_copy(update={"atlas": None}), pinned, project, set())


def test_init_refuses_an_existing_project_and_a_bad_name(cli: Cli, tmp_path: Path) -> None:
    assert cli("project", "init", tmp_path / "p", "--name", "ok")[0] == 0
    code, _, stderr = cli("project", "init", tmp_path / "p", "--name", "ok")
    assert code == 2 and "exists already" in stderr
    code, _, stderr = cli("project", "init", tmp_path / "q", "--name", "no spaces")
    assert code == 2 and "--name 'no spaces'" in stderr and not (tmp_path / "q" / "project.yaml").exists()
