"""``project init``: a project file with every workflow option pinned to today's default, and a README for sites."""

from __future__ import annotations

from pathlib import Path

import yaml

from neurolearn_cli import __version__, atomic
from neurolearn_cli.config import PARTICIPANT_STAGES, RunConfig
from neurolearn_cli.errors import SpecError, UsageError
from neurolearn_cli.mvpa.spec import validate_spec
from neurolearn_cli.project.model import WORKFLOW_OPTIONS, Project

PROJECT_FILE = "project.yaml"

HEADER = """\
# A neurolearn collaborative project. Every site runs the workflow below on its own scans
# (neurolearn BIDS_DIR OUTPUT_DIR participant --project project.yaml), exports the feature sets
# (neurolearn project export ...) and sends the bundle to the coordinator, who pools them
# (neurolearn project pool ...). Changing this file changes its sha256: bundles made with another
# version of it are refused, so agree on it before the sites run.
"""

README = """\
# Project {name}

This folder defines a neurolearn collaborative project. Every site runs the same local
workflow on its own scans and shares only small feature tables; the coordinator pools
them and runs the analyses of `project.yaml`.

At each site (neurolearn {version} or another version in the project's range):

```bash
neurolearn BIDS_DIR OUTPUT_DIR participant --project project.yaml
neurolearn project export project.yaml BIDS_DIR OUTPUT_DIR --site SITE --out SITE.tar.gz
```

`--project` runs exactly the pinned workflow: an option that contradicts the project stops
the run. The bundle holds the feature tables, the participants.tsv columns listed under
`share_columns`, a QC table (IQMs and done/failed status) and a manifest with checksums; no
image and no free text. Participant IDs are replaced by keyed hashes whose key stays in
`OUTPUT_DIR/logs/project/` with the table that maps them back (`--keep-ids` opts out).

The coordinator:

```bash
neurolearn project pool project.yaml siteA.tar.gz siteB.tar.gz ... --out POOL_DIR
```

checks every bundle (checksums, project, version, columns, duplicate participants) and
writes the pooled tables, each analysis' results and `POOL_DIR/report.html`.
"""


def _version_range() -> str:
    major, minor = (int(part) for part in __version__.split(".")[:2])
    return f">={major}.{minor},<{major}.{minor + 1}"


def project_text(name: str) -> str:
    """The project file of a new project ``name``: today's defaults for every option that changes a feature."""
    defaults = RunConfig(bids_dir=Path("bids"), output_dir=Path("out")).model_dump(mode="json")
    payload = {
        "name": name,
        "title": name,
        "description": "",
        "methods": "",
        "neurolearn": _version_range(),
        "workflow": {"stages": list(PARTICIPANT_STAGES), "options": {k: defaults[k] for k in WORKFLOW_OPTIONS},
                     "atlas": None},
        "feature_sets": {"morph": {"kind": "morph", "normalize": "tiv"}, "iqm": {"kind": "iqm"}},
        "share_columns": ["age", "sex", "group"],
        "qc_exclude": [],
        "analyses": [{"name": "group_svm", "features": "morph", "target": {"column": "group"},
                      "model": {"name": "svm"},
                      "preprocessing": {"harmonize": "combat", "selection": {"method": "anova", "percentile": 10}},
                      "validation": {"outer": 4, "inner": 3, "permutations": 50}}],
    }
    return HEADER + yaml.safe_dump(payload, sort_keys=False)


def init_project(folder: Path, name: str) -> Path:
    """Write ``folder/project.yaml`` and ``folder/README.md``; return the project file.

    Raises
    ------
    UsageError
        A project file is there already, or the name is not letters, digits, ``.``, ``-`` and ``_``.
    """
    path = Path(folder) / PROJECT_FILE
    if path.exists():
        raise UsageError(f"{path}: exists already; edit it, or choose another folder")
    text = project_text(name)
    try:
        validate_spec(Project, yaml.safe_load(text), path)
    except SpecError as error:
        raise UsageError(f"--name '{name}': {error.field_problem}") from None
    atomic.write_text(path, text)
    atomic.write_text(Path(folder) / "README.md", README.format(name=name, version=__version__))
    return path
