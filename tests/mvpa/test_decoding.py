"""Within-participant decoding: LSS, blocks, folds, shuffles, and the command end to end on a synthetic run."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import typer
import yaml
from typer.testing import CliRunner

from neurolearn_cli.cli.mvpa import mvpa_command
from neurolearn_cli.errors import InputError, UsageError
from neurolearn_cli.mvpa.decoding.confounds import confound_columns
from neurolearn_cli.mvpa.decoding.crossval import SampleTimes, block_shuffles, plan_folds
from neurolearn_cli.mvpa.decoding.events import class_labels, samples_from_events
from neurolearn_cli.mvpa.decoding.lss import lss_weights
from neurolearn_cli.mvpa.decoding.samples import estimate_samples
from neurolearn_cli.mvpa.decoding.spec import (
    DecodingSpec,
    DecodingTarget,
    SampleSpec,
    decoding_spec_from_dict,
    decoding_spec_to_yaml,
    load_decoding_spec,
)

from .decoding_data import SHAPE, write_study

app = typer.Typer()
app.command("mvpa")(mvpa_command)
app.command("other")(lambda: None)


def test_lss_equals_one_least_squares_fit_per_sample() -> None:
    rng = np.random.default_rng(1)
    T, N, Q, V = 40, 5, 3, 6
    regressors, nuisance, data = rng.normal(size=(T, N)), rng.normal(size=(T, Q)), rng.normal(size=(T, V))
    weights = lss_weights(torch.tensor(regressors), torch.tensor(nuisance)).numpy()
    for i in range(N):
        design = np.column_stack([regressors[:, i], regressors.sum(axis=1) - regressors[:, i], nuisance])
        expected = np.linalg.lstsq(design, data, rcond=None)[0][0]
        np.testing.assert_allclose(weights[i] @ data, expected, rtol=1e-8, atol=1e-10)


def test_blocks_split_on_condition_change_and_on_gaps() -> None:
    events = pd.DataFrame({"onset": [0, 1, 2, 10, 11, 20, 21, 40, 41], "duration": [0.5] * 9,
                           "trial_type": ["a", "a", "b", "b", "b", "b", "b", "a", "a"]})
    trials = samples_from_events(events, "trial_type", SampleSpec(unit="trial", block_gap=4.0), Path("e.tsv"))
    assert trials["block"].tolist() == [0, 0, 1, 2, 2, 3, 3, 4, 4]
    blocks = samples_from_events(events, "trial_type", SampleSpec(block_gap=4.0), Path("e.tsv"))
    assert blocks["condition"].tolist() == ["a", "b", "b", "b", "a"]
    assert blocks["onset"].tolist() == [0, 2, 10, 20, 40] and blocks["duration"].tolist() == [1.5, 0.5, 1.5, 1.5, 1.5]
    with pytest.raises(InputError, match="e.tsv: no column 'trial_type'"):
        samples_from_events(events.drop(columns="trial_type"), "trial_type", SampleSpec(), Path("e.tsv"))


@pytest.mark.realdata
def test_studyforrest_events_give_twelve_blocks_two_per_category(shared_data: Path) -> None:
    path = shared_data / "studyforrest/bids/sub-02/func/sub-02_task-oneback_run-1_events.tsv"
    blocks = samples_from_events(pd.read_csv(path, sep="\t"), "trial_type", SampleSpec(), path)
    assert len(blocks) == 12 and set(blocks["condition"].value_counts()) == {2}
    decoded, y, classes = class_labels(blocks["condition"], DecodingTarget(positive=["face"]))
    assert decoded.all() and classes == ["other", "face"] and y.sum() == 2


def test_confound_presets_and_missing_columns() -> None:
    available = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "csf", "white_matter",
                 "non_steady_state_outlier00", "non_steady_state_outlier01"]
    chosen = confound_columns(available, ["motion", "wm_csf", "non_steady_state", "csf"], Path("c.tsv"))
    assert chosen == available[:6] + ["white_matter", "csf", "non_steady_state_outlier00", "non_steady_state_outlier01"]
    assert confound_columns(available, ["motion_outliers"], Path("c.tsv")) == []
    with pytest.raises(InputError, match="c.tsv: no column 'global_signal' \\(glm.confounds 'global_signal'\\)"):
        confound_columns(available, ["global_signal"], Path("c.tsv"))


def _times(n_blocks: int, per_block: int, period: float = 24.0) -> SampleTimes:
    block = np.repeat(np.arange(n_blocks), per_block)
    onset = block * period + np.tile(np.arange(per_block) * 2.0, n_blocks)
    return SampleTimes(np.zeros_like(block), block, onset.astype(float), onset + 1.5)


def _spec(**validation) -> DecodingSpec:
    return decoding_spec_from_dict({"name": "t", "mode": "within", "validation": validation})


def test_folds_keep_blocks_whole_every_class_and_a_buffer() -> None:
    times = _times(12, 4)
    y = np.array([1, 0, 0] * 4)[times.block]
    plan = plan_folds(_spec(buffer=20.0), y, times, ["other", "face"])
    assert len(plan.splits) == 4
    tested = np.concatenate([test for _, test in plan.splits])
    assert np.sort(tested).tolist() == list(range(len(y)))
    for train, test in plan.splits:
        assert not set(times.block[train]) & set(times.block[test])
        for block in set(times.block[test]):
            assert set(np.flatnonzero(times.block == block)) <= set(test)
        gaps = np.maximum(times.onset[train][:, None] - times.onset[test].max() - 1.5,
                          times.onset[test].min() - times.onset[train][:, None] - 1.5)
        assert gaps.min() >= 20.0
        assert set(y[train]) == set(y[test]) == {0, 1}
    with pytest.raises(InputError, match="validation.folds"):
        plan_folds(_spec(folds=5), y, times, ["other", "face"])


def test_estimate_samples_needs_a_run() -> None:
    with pytest.raises(ValueError, match="needs at least one run"):
        estimate_samples([], _spec(), torch.device("cpu"))


def test_shuffles_move_whole_blocks_within_folds_and_enumerate_exactly() -> None:
    times = _times(12, 3)
    y = np.array([1, 0, 0] * 4)[times.block]
    plan = plan_folds(_spec(buffer=0.0), y, times, ["other", "face"])
    shuffles = block_shuffles(y, times.block, plan, count=1000, seed=0)
    assert len(shuffles) == 3**4 - 1
    assert len({s.tobytes() for s in shuffles}) == len(shuffles) and y.tobytes() not in {s.tobytes() for s in shuffles}
    for shuffled in shuffles:
        for block in range(12):
            assert np.unique(shuffled[times.block == block]).size == 1
        for fold in np.unique(plan.fold_of):
            assert shuffled[plan.fold_of == fold].sum() == y[plan.fold_of == fold].sum()
    drawn = block_shuffles(y, times.block, plan, count=10, seed=0)
    assert len(drawn) == 10 and all(d.sum() == y.sum() for d in drawn)
    assert [d.tobytes() for d in drawn] == [d.tobytes() for d in block_shuffles(y, times.block, plan, count=10, seed=0)]


def _run(tmp_path: Path, amplitude: float, seed: int, permutations: int = 100):
    """Decode faces in a 9-block run (3 folds of 3 blocks): 26 valid shuffles at most, so the test is exact."""
    bids, out, voxels = write_study(tmp_path, signal={"face": amplitude}, seed=seed, n_blocks=9)
    bold = next((out / "sub-01" / "func").glob("*_bold.nii.gz"))
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.uint8), nib.load(bold).affine), mask)
    spec = tmp_path / "decode.yaml"
    spec.write_text(yaml.safe_dump({"name": "faces", "mode": "within", "task": "loc", "samples": {"unit": "trial"},
                                    "target": {"positive": ["face"]}, "glm": {"confounds": ["motion", "wm_csf"]},
                                    "validation": {"permutations": permutations}}))
    result = CliRunner().invoke(app, ["mvpa", str(bids), str(out), "participant", "--spec", str(spec),
                                      "--mask", str(mask), "--device", "cpu"])
    return result, out / "mvpa" / "faces" / "sub-01", voxels


def test_known_signal_is_decoded_and_outputs_are_complete(tmp_path: Path) -> None:
    result, folder, voxels = _run(tmp_path, amplitude=10.0, seed=0)
    assert result.exit_code == 0, result.output
    assert "faces sub-01: roc_auc = " in result.output
    results = json.loads((folder / "results.json").read_text())
    assert results["mean"] > 0.8 and results["permutation_p"] < 0.05
    assert results["null"]["n"] <= 26 and results["n_samples"] == 72 and results["n_blocks"] == 9
    assert results["permutation_p"] == 1 / (1 + results["null"]["n"])
    predictions = pd.read_csv(folder / "predictions.tsv", sep="\t")
    assert (predictions.groupby("block")["fold"].nunique() == 1).all()
    weights = np.asanyarray(nib.load(folder / "weights.nii.gz").dataobj)
    strongest = np.unravel_index(np.argsort(-np.abs(weights), axis=None)[:4], SHAPE)
    assert {tuple(v) for v in np.transpose(strongest)} & {tuple(v) for v in voxels["face"]}
    assert (folder / "report.html").read_text().count("data:image/png;base64") >= 3
    manifest = json.loads((folder.parents[2] / "logs/manifest/mvpa-faces_sub-01.json").read_text())
    assert "mvpa/faces/sub-01/results.json" in manifest
    out = folder.parents[2]
    recorded = {path for m in (out / "logs" / "manifest").glob("*.json") for path in json.loads(m.read_text())}
    assert {p.relative_to(out).as_posix() for p in (out / "mvpa").rglob("*") if p.is_file()} <= recorded
    assert yaml.safe_load((folder.parent / "spec.yaml").read_text())["mask"]["image"].endswith("mask.nii.gz")


def test_random_labels_decode_at_chance_and_rerun_is_byte_identical(tmp_path: Path) -> None:
    result, folder, _ = _run(tmp_path, amplitude=0.0, seed=1)
    assert result.exit_code == 0, result.output
    first = (folder / "results.json").read_bytes()
    results = json.loads(first)
    assert results["permutation_p"] > 0.05 and abs(results["null"]["mean"] - 0.5) < 0.1
    result = CliRunner().invoke(app, ["mvpa", str(tmp_path / "bids"), str(tmp_path / "out"), "participant",
                                      "--spec", str(tmp_path / "decode.yaml"), "--mask", str(tmp_path / "mask.nii.gz"),
                                      "--device", "cpu"])
    assert result.exit_code == 0 and (folder / "results.json").read_bytes() == first


def test_spec_and_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="field 'validation.buffr': unknown field"):
        decoding_spec_from_dict({"name": "x", "mode": "within", "validation": {"buffr": 3}}, "d.yaml")
    with pytest.raises(InputError, match="space T1w needs mask.image"):
        decoding_spec_from_dict({"name": "x", "mode": "within", "space": "T1w", "res": None}, "d.yaml")
    within = tmp_path / "within.yaml"
    within.write_text(yaml.safe_dump({"name": "x", "mode": "within"}))
    between = tmp_path / "between.yaml"
    between.write_text(yaml.safe_dump({"name": "x", "features": {"kind": "morph"}, "target": {"column": "age"}}))
    runner = CliRunner()
    bids = tmp_path / "bids"  # OUTPUT_DIR may not lie inside it (unless under derivatives/)
    bids.mkdir()
    result = runner.invoke(app, ["mvpa", str(bids), str(tmp_path / "o"), "participant", "--spec", str(between)])
    assert isinstance(result.exception, UsageError) and "mode: within" in str(result.exception)
    result = runner.invoke(app, ["mvpa", str(bids), str(tmp_path / "o"), "group", "--spec", str(within)])
    assert isinstance(result.exception, UsageError) and "participant level" in str(result.exception)
    result = runner.invoke(app, ["mvpa", str(bids), str(tmp_path / "o"), "participant", "--spec", str(within),
                                 "--target", "age"])
    assert isinstance(result.exception, UsageError) and "--target" in str(result.exception)
    result = runner.invoke(app, ["mvpa", str(bids), str(tmp_path / "o"), "participant", "--spec", str(within)])
    assert isinstance(result.exception, InputError) and "no participant has fmri outputs" in str(result.exception)
    assert not (tmp_path / "o" / "mvpa").exists()


def test_spec_yaml_names_paths_relative_to_its_folder_and_reads_back(tmp_path: Path) -> None:
    written = []
    for copy in ("site1", "site2"):
        root = tmp_path / copy
        (root / "masks").mkdir(parents=True)
        (root / "masks" / "roi.nii.gz").write_bytes(b"")
        spec_file = root / "spec.yaml"
        spec_file.write_text("mode: within\nname: vis\ntarget: {column: trial_type}\nmask: {image: masks/roi.nii.gz}\n")
        spec = load_decoding_spec(spec_file)
        folder = root / "out" / "mvpa" / "vis"
        folder.mkdir(parents=True)
        text = decoding_spec_to_yaml(spec, folder)
        assert str(tmp_path) not in text
        (folder / "spec.yaml").write_text(text)
        assert load_decoding_spec(folder / "spec.yaml").mask.image.resolve() == spec.mask.image.resolve()
        written.append(text)
    assert written[0] == written[1]
