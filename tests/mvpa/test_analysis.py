"""End to end on synthetic studies: chance without signal, signal found, outputs reproducible and escaped."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurolearn_cli.errors import SpecError
from neurolearn_cli.mvpa.analysis import run_analysis
from neurolearn_cli.mvpa.outputs import timing_path
from neurolearn_cli.mvpa.spec import spec_from_dict

from .conftest import make_study

FAST = {"name": "fast", "model": {"name": "ridge", "grid": {"alpha": [1.0, 100.0]}},
        "validation": {"outer": 5, "inner": 3, "permutations": 0, "bootstrap": 50}}


def _spec(table: Path, target: str = "group", **overrides) -> object:
    payload = {**FAST, "features": {"kind": "table", "sources": [str(table)]}, "target": {"column": target}}
    for key, value in overrides.items():
        payload[key] = {**payload.get(key, {}), **value} if isinstance(value, dict) else value
    return spec_from_dict(payload)


def test_no_leakage_random_labels_give_chance(tmp_path: Path) -> None:
    """300 noise features for 40 participants, ANOVA selection: selecting outside the folds would score ~1."""
    bids, table = make_study(tmp_path, n=40, p=300, effect=0.0, seed=11)
    spec = _spec(table, preprocessing={"selection": {"method": "anova", "percentile": 5}},
                 validation={"permutations": 9})
    result = run_analysis(spec, bids, tmp_path / "out", device="cpu").results
    assert result["metric"] == "roc_auc"
    assert abs(result["mean"] - 0.5) < 0.2
    assert result["permutation_p"] >= 0.2
    assert result["ci95"][0] < 0.5 < result["ci95"][1]


def test_real_effect_is_found(tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=40, p=20, effect=0.8, seed=3)
    result = run_analysis(_spec(table, validation={"permutations": 24}), bids, tmp_path / "out", device="cpu")
    assert result.results["mean"] > 0.8
    assert result.results["permutation_p"] == pytest.approx(1 / 25)
    top = result.weights.reindex(result.weights["weight"].abs().sort_values(ascending=False).index)
    assert set(top["feature"].head(3)) == {"roi00", "roi01", "roi02"}


def test_results_are_byte_identical_and_complete(tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=40, p=10, effect=0.5, seed=4)
    spec = _spec(table, validation={"permutations": 3})
    first = run_analysis(spec, bids, tmp_path / "a", device="cpu").folder
    second = run_analysis(spec, bids, tmp_path / "b", device="cpu").folder
    for name in ("results.json", "predictions.tsv", "weights.tsv", "spec.yaml"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    results = json.loads((first / "results.json").read_text())
    assert len(results["outer_scores"]) == 5 and len(results["best_params"]) == 5
    assert results["classes"] == ["control", "patient"] and results["n_samples"] == 40
    assert set(results["summary"]) == {"accuracy", "balanced_accuracy"}
    assert results["null"]["n"] == 3 and "started" not in json.dumps(results)
    predictions = pd.read_csv(first / "predictions.tsv", sep="\t")
    assert list(predictions.columns) == ["participant_id", "fold", "true", "predicted", "decision"]
    assert sorted(predictions["fold"].unique()) == [0, 1, 2, 3, 4]
    provenance = json.loads((first / "provenance.json").read_text())
    out = tmp_path / "a"  # inputs are named relative to the output directory: no absolute path
    assert set(provenance["inputs"]) == {os.path.relpath(table, out), os.path.relpath(bids / "participants.tsv", out)}
    second_provenance = json.loads((second / "provenance.json").read_text())
    assert set(second_provenance["inputs"]) == set(provenance["inputs"])
    assert "started" not in provenance and provenance["seed"] == 0  # no time in an output: same run, same bytes
    for name in ("provenance.json", "report.html"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert "nested_cv_seconds" in json.loads(timing_path(tmp_path / "a", spec.name).read_text())


def test_report_escapes_data(tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=30, p=5, effect=1.0, seed=5)
    participants = pd.read_csv(bids / "participants.tsv", sep="\t")
    participants["group"] = participants["group"].replace("patient", "<script>alert(1)</script>")
    participants.to_csv(bids / "participants.tsv", sep="\t", index=False)
    folder = run_analysis(_spec(table, validation={"permutations": 3}), bids, tmp_path / "out", device="cpu").folder
    html = (folder / "report.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("data:image/png;base64,") == 4  # ROC, confusion, null, weights


def test_sites_combat_confounds_leave_site_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bids, table = make_study(tmp_path, n=45, p=6, effect=1.0, task="regression", seed=6, sites=3)
    sites = [tmp_path / f"site{s}.tsv" for s in range(3)]
    frame = pd.read_csv(table, sep="\t")
    for s, path in enumerate(sites):
        frame.iloc[s::3].to_csv(path, sep="\t", index=False)
    payload = {**FAST, "name": "sites", "target": {"column": "score"},
               "features": {"kind": "table", "sources": [str(p) for p in sites]},
               "preprocessing": {"harmonize": "combat", "confounds": ["age", "sex"]},
               "validation": {"outer": "logo", "inner": 3, "group_by": "site", "permutations": 0, "bootstrap": 0}}
    with caplog.at_level(logging.WARNING, logger="neurolearn.mvpa"):
        results = run_analysis(spec_from_dict(payload), bids, tmp_path / "out", device="cpu").results
    assert results["metric"] == "pearson_r" and results["n_folds"] == 3
    assert results["sites"] == ["s0", "s1", "s2"]  # participants.tsv's site column, not the file names
    assert results["confounds"] == ["age", "sex_M"]
    assert set(results["summary"]) == {"pearson_r", "mae", "r2"} and results["ci95"] is None
    assert results["mean"] > 0.5
    assert "not in the training fold" in caplog.text


def test_too_few_per_class_is_refused(tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=8, p=4, seed=7)
    with pytest.raises(SpecError, match=r"^field 'validation.outer': 8 participants with 4 in the smallest class cannot "
                                        r"fill 5 outer folds with 3 inner folds each: use at most --cv 4 --inner-cv 3 "):
        run_analysis(_spec(table), bids, tmp_path / "out", device="cpu")


def test_leave_one_out_with_a_single_participant_class_is_refused(tmp_path: Path) -> None:
    """Leaving out a class's only participant trains on one class: no ROC AUC (a torch model fits it anyway)."""
    bids, table = make_study(tmp_path, n=12, p=4, seed=7)
    participants = pd.read_csv(bids / "participants.tsv", sep="\t")
    participants["group"] = ["patient"] + ["control"] * 11
    participants.to_csv(bids / "participants.tsv", sep="\t", index=False)
    spec = _spec(table, model={"name": "torch-linear", "grid": None}, validation={"outer": "loo", "bootstrap": 0})
    with pytest.raises(SpecError, match=r"^field 'validation.outer': leave-one-out needs two participants per class, "
                                        r"but the smallest class has 1$"):
        run_analysis(spec, bids, tmp_path / "out", device="cpu")


def test_atlas_weight_map(tmp_path: Path) -> None:
    bids, _ = make_study(tmp_path, n=30, p=3, effect=1.0, seed=8)
    features = pd.read_csv(tmp_path / "features.tsv", sep="\t")
    derivatives = tmp_path / "derivatives"
    for _, row in features.iterrows():
        folder = derivatives / row["participant_id"] / "anat"
        folder.mkdir(parents=True)
        pd.DataFrame([row[["roi00", "roi01", "roi02"]].to_numpy()], columns=["LH_a", "RH_b", "RH_c"]).to_csv(
            folder / f"{row['participant_id']}_seg-toy_stat-gmvolume_morph.tsv", sep="\t", index=False)
    atlas = np.zeros((7, 8, 9), dtype=np.int16)
    atlas[1:3], atlas[3:5], atlas[5:7, :4] = 1, 2, 3
    nib.save(nib.Nifti1Image(atlas, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "atlas.nii.gz")
    pd.DataFrame({"index": [1, 2, 3], "label": ["LH_a", "RH_b", "RH_c"]}).to_csv(tmp_path / "atlas.tsv", sep="\t", index=False)
    spec = spec_from_dict({**FAST, "target": {"column": "group"},
                           "features": {"kind": "morph", "sources": [str(derivatives)], "atlas_image": str(tmp_path / "atlas.nii.gz"),
                                        "atlas_labels": str(tmp_path / "atlas.tsv")}})
    result = run_analysis(spec, bids, tmp_path / "out", device="cpu")
    painted = nib.load(result.folder / "weights.nii.gz")
    weights = result.weights.set_index("feature")["weight"]
    np.testing.assert_allclose(painted.affine, np.diag([2.0, 2.0, 2.0, 1.0]))
    data = painted.get_fdata()
    assert data[1, 0, 0] == pytest.approx(weights["LH_a"], rel=1e-6)
    assert data[5, 0, 0] == pytest.approx(weights["RH_c"], rel=1e-6)
    assert data[5, 5, 0] == 0.0 and data[0, 0, 0] == 0.0
