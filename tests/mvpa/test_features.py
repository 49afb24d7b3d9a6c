"""Feature readers on tiny derivative trees: morphometry, connectivity, IQMs, tables; pooling sites."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neurolearn_cli.errors import InputError
from neurolearn_cli.mvpa.dataset import assemble, detect_task
from neurolearn_cli.mvpa.features import load_features
from neurolearn_cli.mvpa.spec import FeatureSpec, spec_from_dict


def _morph(root: Path, label: str, values: list[float]) -> None:
    folder = root / f"sub-{label}" / "anat"
    folder.mkdir(parents=True)
    frame = pd.DataFrame([values], columns=["LH_A", "RH_B", "total_gm"])
    frame.to_csv(folder / f"sub-{label}_seg-schaefer100_stat-gmvolume_morph.tsv", sep="\t", index=False)


def test_morph_sites_are_pooled(tmp_path: Path) -> None:
    _morph(tmp_path / "siteA", "01", [1.0, 2.0, 3.0])
    _morph(tmp_path / "siteA", "02", [4.0, 5.0, 6.0])
    _morph(tmp_path / "siteB", "03", [7.0, 8.0, 9.0])
    table = load_features(FeatureSpec(kind="morph", sources=[tmp_path / "siteA", tmp_path / "siteB"]), tmp_path)
    assert list(table.values.index) == ["sub-01", "sub-02", "sub-03"]
    assert list(table.values.columns) == ["LH_A", "RH_B", "total_gm"]
    assert table.values.loc["sub-02", "RH_B"] == 5.0
    assert list(table.site) == ["siteA", "siteA", "siteB"]


def test_morph_normalized_by_tiv_is_a_fraction_and_drops_tiv(tmp_path: Path) -> None:
    for label, values in (("01", [2.0, 4.0, 1000.0]), ("02", [3.0, 3.0, 1500.0])):
        folder = tmp_path / f"sub-{label}" / "anat"
        folder.mkdir(parents=True)
        pd.DataFrame([values], columns=["LH_A", "RH_B", "TIV"]).to_csv(
            folder / f"sub-{label}_seg-x_stat-gmvolume_morph.tsv", sep="\t", index=False)
    table = load_features(FeatureSpec(kind="morph", normalize="tiv"), tmp_path)
    assert list(table.values.columns) == ["LH_A", "RH_B"]
    np.testing.assert_allclose(table.values.to_numpy(), [[0.002, 0.004], [0.002, 0.002]])
    with pytest.raises(InputError, match="needs a TIV column"):
        _morph(tmp_path / "other", "03", [1.0, 2.0, 3.0])
        load_features(FeatureSpec(kind="morph", normalize="tiv"), tmp_path / "other")
    with pytest.raises(ValueError, match="normalize: tiv applies to morph features"):
        FeatureSpec(kind="iqm", normalize="tiv")


def test_participant_in_two_sites_is_refused(tmp_path: Path) -> None:
    _morph(tmp_path / "siteA", "01", [1.0, 2.0, 3.0])
    _morph(tmp_path / "siteB", "01", [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="sub-01 is also in site 'siteA'"):
        load_features(FeatureSpec(kind="morph", sources=[tmp_path / "siteA", tmp_path / "siteB"]), tmp_path)


def test_morph_table_without_atlas_label_is_named(tmp_path: Path) -> None:
    """The glob's ``seg-*`` also matches an empty label, which names no atlas."""
    folder = tmp_path / "sub-01" / "anat"
    folder.mkdir(parents=True)
    pd.DataFrame([[1.0, 2.0]], columns=["A", "B"]).to_csv(folder / "sub-01_seg-_stat-gmvolume_morph.tsv",
                                                          sep="\t", index=False)
    with pytest.raises(InputError, match=r"sub-01_seg-_stat-gmvolume_morph.tsv: no atlas label in the file name"):
        load_features(FeatureSpec(kind="morph", sources=[tmp_path]), tmp_path)


def test_connectivity_upper_triangle_averaged_over_runs(tmp_path: Path) -> None:
    folder = tmp_path / "sub-01" / "func"
    folder.mkdir(parents=True)
    labels = ["a", "b", "c"]
    for run, r in ((1, 0.2), (2, 0.6)):
        matrix = np.array([[1, r, 0.1], [r, 1, -0.3], [0.1, -0.3, 1]])
        pd.DataFrame(matrix, columns=labels).to_csv(
            folder / f"sub-01_task-rest_run-{run}_seg-s100_stat-pearsoncorrelation_relmat.tsv", sep="\t", index=False)
    table = load_features(FeatureSpec(kind="connectivity", task="rest"), tmp_path)
    row = table.values.loc["sub-01"]
    assert list(row.index) == ["a__b", "a__c", "b__c"]
    assert row["a__b"] == pytest.approx(np.tanh((np.arctanh(0.2) + np.arctanh(0.6)) / 2))
    assert row["b__c"] == pytest.approx(-0.3)


def test_iqm_group_table_and_json(tmp_path: Path) -> None:
    pd.DataFrame({"bids_name": ["sub-01_T1w", "sub-02_T1w"], "cjv": [0.4, 0.5], "snr": [10.0, 12.0]}).to_csv(
        tmp_path / "group_T1w.tsv", sep="\t", index=False)
    table = load_features(FeatureSpec(kind="iqm"), tmp_path)
    assert table.values.loc["sub-02", "snr"] == 12.0
    other = tmp_path / "json"
    (other / "sub-03" / "anat").mkdir(parents=True)
    (other / "sub-03" / "anat" / "sub-03_T1w.json").write_text(json.dumps({"cjv": 0.3, "snr": 9, "bids_name": "x"}))
    table = load_features(FeatureSpec(kind="iqm", sources=[other]), tmp_path)
    assert table.values.loc["sub-03"].to_dict() == {"cjv": 0.3, "snr": 9.0}


def _spec(table: Path, **extra) -> object:
    return spec_from_dict({"name": "t", "features": {"kind": "table", "sources": [str(table)], **extra},
                           "target": {"column": "group"}})


def test_nan_feature_names_participant_feature_and_file(tmp_path: Path) -> None:
    bids = tmp_path / "bids"
    bids.mkdir()
    pd.DataFrame({"participant_id": ["sub-a", "sub-b"], "group": ["x", "y"]}).to_csv(bids / "participants.tsv", sep="\t", index=False)
    table = tmp_path / "f.csv"
    pd.DataFrame({"participant_id": ["a", "b"], "f1": [1.0, 2.0], "f2": [3.0, None]}).to_csv(table, index=False)
    spec = _spec(table)
    with pytest.raises(InputError) as error:
        assemble(spec, load_features(spec.features, tmp_path), bids)
    assert str(error.value).startswith(f"{table}: sub-b: feature 'f2' is nan")
    filled = _spec(table, missing="zero")
    data = assemble(filled, load_features(filled.features, tmp_path), bids)
    assert data.features.tolist() == [[1.0, 3.0], [2.0, 0.0]]


def test_missing_target_column_is_named(tmp_path: Path) -> None:
    bids = tmp_path / "bids"
    bids.mkdir()
    pd.DataFrame({"participant_id": ["sub-a"], "age": [3]}).to_csv(bids / "participants.tsv", sep="\t", index=False)
    table = tmp_path / "f.tsv"
    pd.DataFrame({"participant_id": ["sub-a"], "f1": [1.0]}).to_csv(table, sep="\t", index=False)
    spec = _spec(table)
    with pytest.raises(InputError, match=r"participants.tsv: target.column: no column 'group'"):
        assemble(spec, load_features(spec.features, tmp_path), bids)


def test_target_and_confounds_never_become_features(tmp_path: Path) -> None:
    bids = tmp_path / "bids"
    bids.mkdir()
    frame = pd.DataFrame({"participant_id": ["sub-a", "sub-b", "sub-c"], "group": ["x", "y", None],
                          "age": [30.0, 40.0, 50.0], "f1": [1.0, 2.0, 3.0]})
    frame.to_csv(bids / "participants.tsv", sep="\t", index=False)
    spec = spec_from_dict({"name": "t", "features": {"kind": "table", "sources": [str(bids / "participants.tsv")]},
                           "target": {"column": "group"}, "preprocessing": {"confounds": ["age"]}})
    data = assemble(spec, load_features(spec.features, tmp_path), bids)
    assert data.feature_names == ["f1"] and data.participant_ids == ["sub-a", "sub-b"]
    assert data.confounds[:, 0].tolist() == [30.0, 40.0] and data.classes == ["x", "y"]


def test_detect_task() -> None:
    assert detect_task(pd.Series(["a", "b"])) == "classification"
    assert detect_task(pd.Series([0, 1, 1, 0])) == "classification"
    assert detect_task(pd.Series(np.arange(40) % 20)) == "regression"
    assert detect_task(pd.Series([0.5, 1.5, 2.5])) == "regression"


def _thickness(root: Path, label: str, values: list[float]) -> None:
    frame = pd.DataFrame([values], columns=["LH_A", "RH_B", "deep"])
    frame.insert(0, "participant_id", f"sub-{label}")
    frame.to_csv(root / f"sub-{label}" / "anat" / f"sub-{label}_seg-schaefer100_stat-thickness_morph.tsv",
                 sep="\t", index=False, na_rep="n/a")


def test_thickness_is_read_beside_gm_volume(tmp_path: Path) -> None:
    """``stat`` names the tables; thickness columns are prefixed and a parcel no surface reaches is left out."""
    _morph(tmp_path, "01", [1.0, 2.0, 3.0])
    _morph(tmp_path, "02", [4.0, 5.0, 6.0])
    _thickness(tmp_path, "01", [2.5, float("nan"), float("nan")])
    _thickness(tmp_path, "02", [2.25, 3.0, float("nan")])
    both = load_features(FeatureSpec(kind="morph", stat=["gmvolume", "thickness"]), tmp_path).values
    assert list(both.columns) == ["LH_A", "RH_B", "total_gm", "thickness_LH_A", "thickness_RH_B"]
    assert both.loc["sub-02", "thickness_LH_A"] == 2.25 and both.loc["sub-02", "RH_B"] == 5.0
    assert np.isnan(both.loc["sub-01", "thickness_RH_B"])  # missing stays missing, for the spec's rule
    alone = load_features(FeatureSpec(kind="morph", stat="thickness"), tmp_path).values
    assert list(alone.columns) == ["thickness_LH_A", "thickness_RH_B"]
    with pytest.raises(InputError, match="no cortical thickness tables"):
        load_features(FeatureSpec(kind="morph", stat="thickness"), tmp_path / "sub-01")


def test_stat_is_checked() -> None:
    with pytest.raises(ValueError, match="stat applies to morph features"):
        FeatureSpec(kind="iqm", stat="thickness")
    with pytest.raises(ValueError, match="add gmvolume to stat"):
        FeatureSpec(kind="morph", stat="thickness", normalize="tiv")
    with pytest.raises(ValueError, match="each once"):
        FeatureSpec(kind="morph", stat=["thickness", "thickness"])
    with pytest.raises(ValueError):
        FeatureSpec(kind="morph", stat="area")
