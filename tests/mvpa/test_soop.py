"""SOOP (906 stroke patients): NIHSS from lesion territories with a leakage-free SVR."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from neurolearn_cli.mvpa.analysis import run_analysis
from neurolearn_cli.mvpa.spec import spec_from_dict

pytestmark = pytest.mark.realdata


def test_soop_nihss_svr_close_to_published(tmp_path: Path, soop_table: Path) -> None:
    """Default RBF SVR, non-zero filter and scaler inside 5 outer folds: r close to the published 0.550."""
    bids = tmp_path / "bids"
    bids.mkdir()
    shutil.copy(soop_table, bids / "participants.tsv")
    (bids / "dataset_description.json").write_text(json.dumps({"Name": "SOOP", "BIDSVersion": "1.9.0"}))
    spec = spec_from_dict({
        "name": "nihss", "target": {"column": "nihss"}, "model": {"name": "svr", "grid": {}},
        "features": {"kind": "table", "sources": [str(bids / "participants.tsv")], "missing": "zero"},
        "preprocessing": {"nonzero_fraction": 0.1},
        "validation": {"outer": 5, "permutations": 0, "bootstrap": 200},
    })
    results = run_analysis(spec, bids, tmp_path / "out", device="cpu").results
    assert results["n_samples"] == 906 and results["n_features"] == 33
    assert results["mean"] == pytest.approx(0.55, abs=0.03)
    assert results["summary"]["mae"] == pytest.approx(4.9, abs=0.3)
    assert results["ci95"][0] < 0.55 < results["ci95"][1]
