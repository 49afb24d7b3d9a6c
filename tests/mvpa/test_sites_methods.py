"""Sites come from the data (participants.tsv's site column); the report carries the analysis' methods."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from neurolearn_cli.errors import InputError
from neurolearn_cli.mvpa.analysis import run_analysis
from neurolearn_cli.mvpa.dataset import assemble
from neurolearn_cli.mvpa.features import load_features
from neurolearn_cli.mvpa.report import methods
from neurolearn_cli.mvpa.spec import spec_from_dict, spec_to_yaml

from .conftest import make_study


def _payload(table: Path, **features: object) -> dict:
    return {"name": "sites", "target": {"column": "group"},
            "features": {"kind": "table", "sources": [str(table)], **features},
            "model": {"name": "ridge", "grid": {"alpha": [1.0, 10.0]}},
            "preprocessing": {"harmonize": "combat", "confounds": ["age"]},
            "validation": {"outer": 3, "inner": 3, "group_by": "site", "permutations": 7, "bootstrap": 20}}


def test_one_feature_folder_still_names_the_participants_sites(tmp_path: Path) -> None:
    """One source (the demo's OUTPUT_DIR) used to make one site named after the folder."""
    bids, table = make_study(tmp_path, n=12, p=4, sites=3)
    spec = spec_from_dict(_payload(table))
    data = assemble(spec, load_features(spec.features, tmp_path), bids)
    assert data.site_names == ["s0", "s1", "s2"]
    assert [data.site_names[k] for k in data.site[:4]] == ["s0", "s1", "s2", "s0"]


def test_spec_site_names_win_and_a_missing_site_is_named(tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=12, p=4, sites=3)
    named = spec_from_dict(_payload(table, sites=["scannerA"]))
    assert assemble(named, load_features(named.features, tmp_path), bids).site_names == ["scannerA"]
    participants = pd.read_csv(bids / "participants.tsv", sep="\t")
    participants.loc[2, "site"] = None
    participants.to_csv(bids / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    spec = spec_from_dict(_payload(table))
    with pytest.raises(InputError, match="site: no value for sub-002"):
        assemble(spec, load_features(spec.features, tmp_path), bids)


def test_report_has_the_methods_and_names_the_sites(tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=18, p=4, effect=1.0, sites=3)
    spec = spec_from_dict(_payload(table))
    result = run_analysis(spec, bids, tmp_path / "out", device="cpu")
    page = (result.folder / "report.html").read_text(encoding="utf-8")
    assert "<tr><th>sites</th><td>s0, s1, s2</td></tr>" in page
    text = " ".join(methods(result.results, spec_to_yaml(spec)).sections[0].paragraphs)
    for phrase in ("ridge regression", "3 stratified outer folds, never splitting a site", "3 inner folds",
                   "alpha in [1.0, 10.0]", "ComBat harmonization of site effects", "preserving age",
                   "7 random permutations", "20 bootstrap resamples", "3 sites (s0, s1 and s2)", "4 features"):
        assert phrase in text
    assert "<h2>Methods</h2>" in page and "Johnson WE" in page and "Random seed: 0." in page
