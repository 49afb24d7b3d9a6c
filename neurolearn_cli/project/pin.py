"""``--project``: run exactly a project's local workflow, and record that it was run.

The project's option values replace the run's; an option the user gave (on
the command line or in ``--config-file``) with another value is a usage
error, never a silent override. The atlas is pinned by the SHA-256 of its
files, since its path differs from site to site. The run leaves
``OUTPUT_DIR/logs/project/<name>.json``, which ``project export`` requires:
the project's digest and the fingerprint of the workflow that ran.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from neurolearn_cli import __version__, atomic
from neurolearn_cli.config import AnalysisLevel, RunConfig
from neurolearn_cli.derivatives import sha256_file
from neurolearn_cli.errors import InputError, SpecError, UsageError
from neurolearn_cli.messages import plain_message
from neurolearn_cli.project.model import WORKFLOW_OPTIONS, Project, project_sha256

#: Where a run with ``--project`` leaves its record (and export its key and pseudonym table), under OUTPUT_DIR.
RECORD_FOLDER = Path("logs") / "project"


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def _pinned_config(config: RunConfig, project: Project, path: Path) -> RunConfig:
    """A config holding only the project's values (for comparison and to copy from)."""
    pinned = {**project.workflow.options, "stages": project.workflow.stages}
    try:
        return RunConfig(bids_dir=config.bids_dir, output_dir=config.output_dir, **pinned)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(["workflow", "options", *(str(p) for p in error["loc"])])
        raise SpecError(path, field, plain_message(error["msg"])) from None


def _check_atlas(config: RunConfig, project: Project) -> None:
    pin = project.workflow.atlas
    if pin is None:
        if config.atlas is not None:
            raise UsageError(f"--atlas: project '{project.name}' uses the bundled atlas; leave --atlas out")
        return
    if config.atlas is None:
        raise UsageError(f"project '{project.name}' needs --atlas: the atlas file with sha256 {pin.sha256}")
    if sha256_file(config.atlas) != pin.sha256:
        raise UsageError(f"--atlas {config.atlas}: not the project's atlas (its sha256 must be {pin.sha256})")
    if pin.labels_sha256 is not None and (config.atlas_labels is None
                                          or sha256_file(config.atlas_labels) != pin.labels_sha256):
        raise UsageError(f"--atlas-labels: project '{project.name}' needs the label table with sha256 "
                         f"{pin.labels_sha256}")


def pin_config(config: RunConfig, project: Project, path: Path, given: set[str]) -> RunConfig:
    """``config`` with the project's workflow applied.

    Parameters
    ----------
    config : RunConfig
        The run as the command line and config file built it.
    project, path
        The project and its file (named in errors).
    given : set of str
        The options the user set (command line or config file): these must
        agree with the project.

    Raises
    ------
    UsageError
        A version outside the project's range, an option that contradicts
        the project, or the wrong atlas (at participant level; the group
        level is only checked for the version).
    """
    project.require_version()
    if config.analysis_level is not AnalysisLevel.participant:
        return config  # the group level (e.g. a SLURM array's group job, given every job's options) pins nothing
    reference = _pinned_config(config, project, path)
    wanted, current = reference.model_dump(mode="json"), config.model_dump(mode="json")
    for key in ("stages", *project.workflow.options):
        if key in given and current[key] != wanted[key]:
            raise UsageError(f"--{key.replace('_', '-')} {_shown(current[key])} contradicts project "
                             f"'{project.name}' ({path}), which pins {_shown(wanted[key])}")
    _check_atlas(config, project)
    return config.model_copy(update={key: getattr(reference, key) for key in ("stages", *project.workflow.options)})


def workflow_fingerprint(config: RunConfig) -> str:
    """Digest of every feature-shaping option of a run, its stages and its atlas' bytes."""
    dumped = config.model_dump(mode="json")
    settings = {key: dumped[key] for key in WORKFLOW_OPTIONS}
    settings["stages"] = list(config.selected_stages)
    settings["atlas"] = None if config.atlas is None else sha256_file(config.atlas)
    settings["atlas_labels"] = None if config.atlas_labels is None else sha256_file(config.atlas_labels)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def record_path(output_dir: Path, project: Project) -> Path:
    """Where a run with ``--project`` records the project and its workflow."""
    return Path(output_dir) / RECORD_FOLDER / f"{project.name}.json"


def record_run(config: RunConfig, project: Project, path: Path) -> Path:
    """Write the run record ``logs/project/<name>.json`` (project digest, workflow fingerprint, version, date)."""
    record = {"project": project.name, "project_sha256": project_sha256(path), "neurolearn": __version__,
              "workflow_fingerprint": workflow_fingerprint(config),
              "date": datetime.now(timezone.utc).date().isoformat()}
    return atomic.write_json(record_path(config.output_dir, project), record)


def read_record(output_dir: Path, project: Project, path: Path) -> dict[str, Any]:
    """The run record of ``project`` in ``output_dir``, checked against the project file.

    Raises
    ------
    InputError
        No record (OUTPUT_DIR was not run with ``--project``), or one of
        another version of the project.
    """
    where = record_path(output_dir, project)
    try:
        record = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(output_dir, f"not run with --project {path}: run 'neurolearn BIDS_DIR {output_dir} "
                                     f"participant --project {path}' first") from None
    if record.get("project_sha256") != project_sha256(path):
        raise InputError(where, f"was run with another version of project '{project.name}': "
                                "run the participant level again with this project file")
    return dict(record)
