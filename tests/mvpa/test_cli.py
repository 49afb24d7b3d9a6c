"""The mvpa command, registered on a throwaway typer app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from neurolearn_cli.cli.mvpa import mvpa_command
from neurolearn_cli.errors import SpecError, UsageError

from .conftest import make_study

app = typer.Typer()
app.command("mvpa")(mvpa_command)
app.command("other")(lambda: None)


def test_shorthand_runs_and_saves_spec(tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=30, p=5, effect=1.0, seed=9)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["mvpa", str(bids), str(out), "group", "--features", str(table), "--target", "group",
                                      "--model", "lda", "--cv", "3", "--permutations", "1", "--seed", "3", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "group_lda: roc_auc = " in result.output
    saved = yaml.safe_load((out / "mvpa" / "group_lda" / "spec.yaml").read_text())
    assert saved["seed"] == 3 and saved["validation"]["outer"] == 3 and saved["validation"]["permutations"] == 1
    assert saved["features"]["sources"] == [str(table)]


def test_bad_input_raises_one_line_errors(cli, tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=30, p=5, seed=10)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "x", "features": {"kind": "table", "sources": [str(table)]},
                                    "target": {"column": "group"}, "modle": {"name": "svm"}}))
    runner = CliRunner()
    result = runner.invoke(app, ["mvpa", str(bids), str(tmp_path / "o"), "group", "--spec", str(spec)])
    assert isinstance(result.exception, SpecError) and f"{spec}: field 'modle': unknown field" in str(result.exception)
    result = runner.invoke(app, ["mvpa", str(bids), str(tmp_path / "o"), "participant", "--spec", str(spec)])
    assert isinstance(result.exception, UsageError)
    assert not (tmp_path / "o").exists()  # refused before any work
    code, _, err = cli("mvpa", bids, tmp_path / "o", "group", "--features", table, "--target", "nope")
    assert code == 2 and "Traceback" not in err
    assert "participants.tsv: target.column: no column 'nope'" in err
    assert not (tmp_path / "o" / "mvpa").exists()


def test_missing_participants_table_exits_2(cli, tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=30, p=5, seed=10)
    (bids / "participants.tsv").unlink()
    code, _, err = cli("mvpa", bids, tmp_path / "o", "group", "--features", table, "--target", "group")
    assert code == 2 and "participants.tsv: file not found (mvpa reads the target from it)" in err


@pytest.mark.parametrize("model", ["lasso", "svr"])
def test_regression_only_models_refuse_classification(cli, tmp_path: Path, model: str) -> None:
    bids, table = make_study(tmp_path, n=30, p=5, seed=12)
    code, _, err = cli("mvpa", bids, tmp_path / "o", "group", "--features", table, "--target", "group",
                       "--model", model)
    assert code == 2 and "command line: field 'model.name':" in err


def test_group_outputs_are_in_the_manifest_and_verify(cli, tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=30, p=5, effect=1.0, seed=9)
    out = tmp_path / "out"
    code, stdout, err = cli("mvpa", bids, out, "group", "--features", table, "--target", "group", "--model", "lda",
                            "--cv", "3", "--permutations", "2", "--device", "cpu")
    assert code == 0 and stdout == ""
    results = [line for line in err.splitlines() if "roc_auc = " in line]  # the result, logged once, rounded
    assert len(results) == 1, err
    assert re.search(r"mvpa group_lda: roc_auc = \d\.\d{3} \(95% CI -?\d\.\d{3} to \d\.\d{3}\), "
                     r"permutation p = (1|0\.\d{1,3}), 30 participants; outputs in ", results[0]), results[0]
    written = {p.relative_to(out).as_posix() for p in (out / "mvpa").rglob("*") if p.is_file()}
    assert written >= {"mvpa/group_lda/results.json", "mvpa/group_lda/predictions.tsv", "mvpa/group_lda/weights.tsv",
                       "mvpa/group_lda/report.html", "mvpa/group_lda/provenance.json", "mvpa/group_lda/spec.yaml"}
    manifest = json.loads((out / "logs" / "manifest" / "mvpa-group_lda.json").read_text())
    assert set(manifest) == written
    assert json.loads((out / "dataset_description.json").read_text())["DatasetType"] == "derivative"
    record = json.loads(next((out / "logs").glob("config-*.json")).read_text())
    assert record["config"]["stages"] == ["mvpa"] and record["config"]["target"] == "group"
    assert cli("verify", out)[0] == 0


def test_spec_seed_applies_unless_seed_is_given(cli, tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=30, p=5, effect=1.0, seed=9)
    spec = tmp_path / "analysis.yaml"
    spec.write_text(yaml.safe_dump({"name": "s", "features": {"kind": "table", "sources": [str(table)]},
                                    "target": {"column": "group"}, "model": {"name": "lda"}, "seed": 7,
                                    "validation": {"outer": 3, "permutations": 0, "bootstrap": 0}}))
    assert cli("mvpa", bids, tmp_path / "a", "group", "--spec", spec, "--device", "cpu")[0] == 0
    assert json.loads((tmp_path / "a" / "mvpa" / "s" / "results.json").read_text())["seed"] == 7
    assert cli("mvpa", bids, tmp_path / "b", "group", "--spec", spec, "--seed", "2", "--device", "cpu")[0] == 0
    assert json.loads((tmp_path / "b" / "mvpa" / "s" / "results.json").read_text())["seed"] == 2


def test_spec_field_that_does_not_fit_the_data_exits_2_naming_file_and_field(cli, tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=8, p=4, seed=7)
    spec = tmp_path / "analysis.yaml"
    spec.write_text(yaml.safe_dump({"name": "x", "features": {"kind": "table", "sources": [str(table)]},
                                    "target": {"column": "group"}, "validation": {"outer": 5, "permutations": 0}}))
    code, _, err = cli("mvpa", bids, tmp_path / "out", "group", "--spec", spec, "--device", "cpu")
    assert code == 2 and "Traceback" not in err
    assert (f"{spec}: field 'validation.outer': 8 participants with 4 in the smallest class cannot fill 5 outer "
            "folds with 5 inner folds each: use at most --cv 4 --inner-cv 3 (outer: 4, inner: 3 in a spec)") in err


def test_a_small_sample_runs_with_the_folds_its_error_proposes(cli, tmp_path: Path) -> None:
    """8 participants, 3 in the smaller class: the default 5 x 5 folds are refused, the proposal runs without a spec."""
    bids, table = make_study(tmp_path, n=8, p=4, effect=1.0, seed=7)
    participants = pd.read_csv(bids / "participants.tsv", sep="\t")
    participants.loc[0, "group"] = "control"  # 3 patients, 5 controls
    participants.to_csv(bids / "participants.tsv", sep="\t", index=False)
    args = ["mvpa", bids, tmp_path / "out", "group", "--features", table, "--target", "group", "--permutations", "0",
            "--device", "cpu"]
    code, _, err = cli(*args)
    assert code == 2 and "8 participants with 3 in the smallest class" in err
    proposal = re.search(r"use at most (--cv \d) (--inner-cv \d)", err)
    assert proposal is not None and proposal.groups() == ("--cv 3", "--inner-cv 2"), err
    code, _, err = cli(*args, *proposal[1].split(), *proposal[2].split())
    assert code == 0, err
    saved = yaml.safe_load((tmp_path / "out" / "mvpa" / "group_svm" / "spec.yaml").read_text())
    assert saved["validation"]["outer"] == 3 and saved["validation"]["inner"] == 2


def test_bare_form_group_mvpa(cli, tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=30, p=5, effect=1.0, seed=9)
    code, _, err = cli(bids, tmp_path / "a", "group", "--stages", "mvpa", "--target", "group")
    assert code == 2 and "mvpa needs --spec, or both --features and --target" in err
    out = tmp_path / "b"
    code, _, _ = cli(bids, out, "group", "--stages", "mvpa", "--features", table, "--target", "group", "--model", "lda",
                     "--cv", "3", "--permutations", "0", "--device", "cpu")
    assert code == 0 and (out / "mvpa" / "group_lda" / "results.json").is_file()
    assert cli("verify", out)[0] == 0
