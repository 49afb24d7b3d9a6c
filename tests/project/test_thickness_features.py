"""Where the project's workflow makes surfaces, its ``morph`` feature set carries the parcels' thickness too."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from neurolearn_cli.project.export import export_bundle
from neurolearn_cli.project.model import load_project

from .conftest import REGIONS, write_project, write_site


def test_morph_bundle_holds_thickness_where_the_workflow_makes_surfaces(tmp_path: Path) -> None:
    path = write_project(tmp_path / "project")
    payload = yaml.safe_load(path.read_text())
    payload["workflow"]["stages"] = ["smri", "surfaces", "qc"]
    path.write_text(yaml.safe_dump(payload, sort_keys=False))
    project = load_project(path)
    assert project.site_features("morph").stat == ("gmvolume", "thickness")
    assert project.site_features("iqm") == project.feature_sets["iqm"]
    site = write_site(tmp_path, "north", 1, 4, path)
    for anat in sorted(site.out.glob("sub-*/anat")):
        subject = anat.parent.name
        frame = pd.DataFrame([[2.5] * len(REGIONS)], columns=REGIONS)
        frame.insert(0, "participant_id", subject)
        frame.to_csv(anat / f"{subject}_seg-toy_stat-thickness_morph.tsv", sep="\t", index=False)
    export_bundle(project, path, site.bids, site.out, "north", tmp_path / "bundle", keep_ids=True)
    morph = pd.read_csv(tmp_path / "bundle" / "features" / "morph.tsv", sep="\t")
    assert [f"thickness_{r}" for r in REGIONS] == [c for c in morph.columns if c.startswith("thickness_")]
    assert (morph[f"thickness_{REGIONS[0]}"] == 2.5).all() and len(morph) == 4

    # a set that names its stat reads exactly that
    payload["feature_sets"]["morph"]["stat"] = "gmvolume"
    path.write_text(yaml.safe_dump(payload, sort_keys=False))
    assert load_project(path).site_features("morph").stat == ("gmvolume",)
