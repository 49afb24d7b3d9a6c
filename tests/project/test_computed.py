"""The project's computed tables: validated in project.yaml, computed at the pool from the shared sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from neurolearn_cli.errors import SpecError
from neurolearn_cli.project.checks import open_bundles
from neurolearn_cli.project.computed import computed_table
from neurolearn_cli.project.export import export_bundle
from neurolearn_cli.project.model import ComputedSet, load_project, project_sha256
from neurolearn_cli.project.pool import pool_tables

from .conftest import REGIONS, Site, write_project, write_site


def test_concat_prefixes_and_ratio_divides_shared_columns() -> None:
    index = pd.Index(["sub-1", "sub-2", "sub-3"], name="participant_id")
    volume = pd.DataFrame({"A": [2.0, 3.0, 4.0], "B": [1.0, 1.0, 1.0]}, index=index)
    thickness = pd.DataFrame({"A": [1.0, 0.0, 2.0], "C": [9.0, 9.0, 9.0]}, index=index[:3])
    both = computed_table(ComputedSet(operation="concat", of=["vol", "thick"]), {"vol": volume, "thick": thickness})
    assert list(both.columns) == ["vol_A", "vol_B", "thick_A", "thick_C"]
    ratio = computed_table(ComputedSet(operation="ratio", of=["vol", "thick"]), {"vol": volume, "thick": thickness})
    assert list(ratio.columns) == ["A"]
    np.testing.assert_array_equal(ratio["A"].to_numpy(), [2.0, np.nan, 2.0])  # a zero denominator is missing
    with pytest.raises(ValueError, match="share no column"):
        computed_table(ComputedSet(operation="ratio", of=["vol", "other"]),
                       {"vol": volume, "other": thickness[["C"]]})


def _with(path: Path, **changes: object) -> Path:
    payload = yaml.safe_load(path.read_text())
    payload.update(changes)
    path.write_text(yaml.safe_dump(payload, sort_keys=False))
    return path


@pytest.mark.parametrize(("computed", "problem"), [
    ({"both": {"operation": "concat", "of": ["morph", "nope"]}}, "reads 'nope', which is not in feature_sets"),
    ({"r": {"operation": "ratio", "of": ["morph", "iqm", "morph2"]}}, "a ratio takes two feature sets"),
    ({"morph": {"operation": "concat", "of": ["morph", "iqm"]}}, "apart from every feature set"),
    ({"both": {"operation": "sum", "of": ["morph", "iqm"]}}, "computed.both.operation"),
])
def test_bad_computed_tables_name_the_field(three_sites: tuple[Path, list[Site]], computed: dict,
                                            problem: str) -> None:
    project, _ = three_sites
    with pytest.raises(SpecError, match=problem):
        load_project(_with(project, computed=computed))


def test_the_pool_computes_the_tables_and_an_analysis_may_read_them(tmp_path: Path) -> None:
    path = write_project(tmp_path / "project")
    payload = yaml.safe_load(path.read_text())
    payload["computed"] = {"morph_and_iqm": {"operation": "concat", "of": ["morph", "iqm"], "missing": "mean"}}
    payload["analyses"][0]["features"] = "morph_and_iqm"
    project = load_project(_with(path, **payload))
    assert project.analysis_spec(project.analyses[0]).features.missing == "mean"
    sites = [write_site(tmp_path, "north", 1, 6, path, failed=3), write_site(tmp_path, "south", 101, 6, path)]
    bundles = []
    for site in sites:
        out = tmp_path / f"{site.name}.tar.gz"
        export_bundle(project, path, site.bids, site.out, site.name, out)
        bundles.append(out)
    pooled = pool_tables(project, open_bundles(bundles, project, project_sha256(path)), path)
    table = pooled.features["morph_and_iqm"]
    assert table.shape == (11, len(REGIONS) + 3) and f"morph_{REGIONS[0]}" in table.columns
    assert "iqm_cjv" in table.columns
    pd.testing.assert_series_equal(table["iqm_cjv"], pooled.features["iqm"]["cjv"], check_names=False)
