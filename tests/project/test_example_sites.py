"""``neurolearn example-data --site NAME --site-effect X``: a site's own scanner and its own participants."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurolearn_cli.example_data.participants import SITES, named_site

Cli = Callable[..., tuple[int, str, str]]


def test_a_named_site_departs_from_site_a_by_the_effect() -> None:
    reference, same = SITES["siteA"], named_site("north", 0.0)
    assert (same.t1_scale, same.t1_gamma, same.t1_noise, same.gm_offset) == (
        reference.t1_scale, reference.t1_gamma, reference.t1_noise, 0.0)
    north, south = named_site("north", 1.0), named_site("south", 1.0)
    assert north == named_site("north", 1.0) and north != south
    assert abs(north.t1_scale / reference.t1_scale - 1) <= 0.4 and north.t1_noise >= reference.t1_noise
    stronger = named_site("north", 2.0)
    assert abs(stronger.t1_scale - reference.t1_scale) == pytest.approx(2 * abs(north.t1_scale - reference.t1_scale))


def test_site_datasets_hold_other_people_on_other_scanners(cli: Cli, tmp_path: Path) -> None:
    for site in ("north", "south"):
        code, _, stderr = cli("example-data", tmp_path / site, "--participants", "1", "--bold-participants", "0",
                              "--site", site, "--site-effect", "1.5")
        assert code == 0, stderr
    tables = {s: pd.read_csv(tmp_path / s / "participants.tsv", sep="\t") for s in ("north", "south")}
    assert tables["north"]["site"].tolist() == ["north"] and tables["south"]["site"].tolist() == ["south"]
    assert tables["north"]["age"].iloc[0] != tables["south"]["age"].iloc[0]  # not the same person
    levels = json.loads((tmp_path / "north" / "participants.json").read_text())["site"]["Levels"]
    assert levels == {"north": "Simulated scanner of north"}
    images = {s: np.asarray(nib.load(tmp_path / s / "sub-01" / "anat" / "sub-01_T1w.nii.gz").dataobj, float)
              for s in ("north", "south")}
    ratio = np.percentile(images["north"], 99) / np.percentile(images["south"], 99)
    expected = named_site("north", 1.5).t1_scale / named_site("south", 1.5).t1_scale
    assert abs(ratio / expected - 1) < 0.15  # the intensity scale follows the scanner (contrast and bias blur it)
    code, _, stderr = cli("example-data", tmp_path / "bad", "--site", "site-1")
    assert code == 2 and "--site must be letters and digits" in stderr
