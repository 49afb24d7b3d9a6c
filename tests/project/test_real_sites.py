"""The whole collaborative flow on images: three simulated scanner sites processed, exported and pooled.

Heavy (each site's participants go through smri and qc): run with ``make test-heavy``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from .conftest import write_project

pytestmark = pytest.mark.heavy

Cli = Callable[..., tuple[int, str, str]]
SITES = ("north", "south", "east")


def test_three_scanner_sites_processed_exported_and_pooled(cli: Cli, tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", permutations=5)
    bundles = []
    for site in SITES:
        bids, out = tmp_path / site / "bids", tmp_path / site / "out"
        assert cli("example-data", bids, "--participants", "4", "--bold-participants", "0", "--site", site,
                   "--site-effect", "2")[0] == 0
        code, _, stderr = cli(bids, out, "participant", "--project", project, "--omp-nthreads", "2")
        assert code == 0, stderr
        bundle = tmp_path / "bundles" / f"{site}.tar.gz"
        code, _, stderr = cli("project", "export", project, bids, out, "--site", site, "--out", bundle)
        assert code == 0, stderr
        bundles.append(bundle)
    code, _, stderr = cli("project", "pool", project, *bundles, "--out", tmp_path / "pool", "--device", "cpu")
    assert code == 0, stderr
    sites = pd.read_csv(tmp_path / "pool" / "sites.tsv", sep="\t")
    assert sites["participants"].tolist() == [4, 4, 4] and sites["excluded"].tolist() == [0, 0, 0]
    effects = pd.read_csv(tmp_path / "pool" / "site_effects.tsv", sep="\t").set_index("feature_set")
    assert effects.loc["iqm", "site_auc_raw"] > 0.9  # the scanners differ
    assert effects.loc["morph", "site_auc_combat"] < effects.loc["morph", "site_auc_raw"]
    results = json.loads((tmp_path / "pool" / "mvpa" / "dx" / "results.json").read_text())
    assert results["n_samples"] == 12 and results["sites"] == sorted(SITES)
