"""Three simulated sites, each a BIDS folder and the outputs a run with ``--project`` leaves.

The outputs are written directly (morphometry tables, T1w IQM JSONs, status
records), not computed from images, so the whole collaborative flow runs in
seconds; the run record comes from the same functions the participant level
calls. Patients have 15 % less grey matter in the first three regions; each
site scales every IQM by its own factor and shifts each regional volume by its own
amount (a scanner's contrast moves tissue boundaries region by region).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from neurolearn_cli.config import RunConfig
from neurolearn_cli.project.init import init_project
from neurolearn_cli.project.model import load_project
from neurolearn_cli.project.pin import pin_config, record_run

SITE_SCALE = {"north": 1.0, "south": 1.25, "east": 0.8}
SITE_SEED = {"north": 11, "south": 12, "east": 13}
REGIONS = [f"L_gm_{k:02d}" for k in range(1, 13)]


@dataclass(frozen=True)
class Site:
    name: str
    bids: Path
    out: Path


def write_project(folder: Path, *, name: str = "consortium", permutations: int = 2) -> Path:
    """A project from ``project init``, made quick: smri and qc, one small SVM analysis."""
    path = init_project(folder, name)
    payload = yaml.safe_load(path.read_text())
    payload["workflow"]["stages"] = ["smri", "qc"]
    payload["analyses"] = [{"name": "dx", "features": "morph", "target": {"column": "group"},
                            "model": {"name": "svm", "grid": {"C": [1.0]}},
                            "preprocessing": {"harmonize": "combat"},
                            "validation": {"outer": 3, "inner": 3, "permutations": permutations, "bootstrap": 20}}]
    path.write_text(yaml.safe_dump(payload, sort_keys=False))
    return path


def write_site(root: Path, name: str, first: int, count: int, project_path: Path, *, failed: int | None = None) -> Site:
    """Participants ``first``..``first + count - 1`` of one site: raw participants.tsv, outputs and run record."""
    rng = np.random.default_rng(first)
    scale = SITE_SCALE[name]
    shift = np.random.default_rng(SITE_SEED[name]).normal(0.0, 0.4, len(REGIONS))
    bids, out = root / name / "bids", root / name / "out"
    bids.mkdir(parents=True)
    (bids / "dataset_description.json").write_text(json.dumps({"Name": name, "BIDSVersion": "1.9.0"}))
    rows = []
    for index in range(first, first + count):
        subject = f"sub-{index:03d}"
        group = "patient" if index % 2 else "control"
        rows.append({"participant_id": subject, "age": round(float(rng.uniform(50, 80)), 1),
                     "sex": "F" if index % 3 else "M", "group": group, "notes": f"participant {index} scanned by Dr. X at {name}"})
        anat = out / subject / "anat"
        anat.mkdir(parents=True)
        volumes = rng.normal(6.0, 0.3, len(REGIONS)) + shift
        if group == "patient":
            volumes[:3] *= 0.85
        tiv = rng.normal(1500, 60)
        frame = pd.DataFrame([[tiv, *(volumes * tiv / 1500)]], columns=["TIV", *REGIONS])
        frame.insert(0, "participant_id", subject)
        frame.to_csv(anat / f"{subject}_seg-toy_stat-gmvolume_morph.tsv", sep="\t", index=False)
        iqms = {"bids_name": f"{subject}_T1w", "cjv": 0.5 * scale + rng.normal(0, 0.02),
                "cnr": 2.4 / scale + rng.normal(0, 0.1), "snr_total": 15 / scale + rng.normal(0, 0.5)}
        (anat / f"{subject}_T1w.json").write_text(json.dumps(iqms))
        status = "failed" if index == failed else "done"
        (out / "logs" / "status").mkdir(parents=True, exist_ok=True)
        (out / "logs" / "status" / f"{subject}.json").write_text(json.dumps(
            {"participant_id": subject, "status": status, "reason": "internal error at /home/site/x.py" if failed else ""}))
    pd.DataFrame(rows).to_csv(bids / "participants.tsv", sep="\t", index=False)
    project = load_project(project_path)
    config = pin_config(RunConfig(bids_dir=bids, output_dir=out), project, project_path, set())
    record_run(config, project, project_path)
    return Site(name, bids, out)


@pytest.fixture
def three_sites(tmp_path: Path) -> tuple[Path, list[Site]]:
    """The project file and three sites of 14 participants; north has one failed participant."""
    project = write_project(tmp_path / "project")
    sites = [write_site(tmp_path, "north", 1, 14, project, failed=3),
             write_site(tmp_path, "south", 101, 14, project),
             write_site(tmp_path, "east", 201, 14, project)]
    return project, sites
