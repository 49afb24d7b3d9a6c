"""The mvpa command, registered on a throwaway typer app."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from neurolearn_cli.cli.mvpa import mvpa_command
from neurolearn_cli.errors import InputError, SpecError, UsageError

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


def test_bad_input_raises_one_line_errors(tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=30, p=5, seed=10)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "x", "features": {"kind": "table", "sources": [str(table)]},
                                    "target": {"column": "group"}, "modle": {"name": "svm"}}))
    runner = CliRunner()
    result = runner.invoke(app, ["mvpa", str(bids), str(tmp_path / "o"), "group", "--spec", str(spec)])
    assert isinstance(result.exception, InputError) and "field 'modle': unknown field" in str(result.exception)
    result = runner.invoke(app, ["mvpa", str(bids), str(tmp_path / "o"), "group", "--features", str(table), "--target", "nope"])
    assert isinstance(result.exception, InputError) and "target.column: no column 'nope'" in str(result.exception)
    result = runner.invoke(app, ["mvpa", str(bids), str(tmp_path / "o"), "participant", "--spec", str(spec)])
    assert isinstance(result.exception, UsageError)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("model", ["lasso", "svr"])
def test_regression_only_models_refuse_classification(tmp_path: Path, model: str) -> None:
    bids, table = make_study(tmp_path, n=30, p=5, seed=12)
    result = CliRunner().invoke(app, ["mvpa", str(bids), str(tmp_path / "o"), "group", "--features", str(table),
                                      "--target", "group", "--model", model])
    assert isinstance(result.exception, SpecError)
    assert str(result.exception).startswith("command line: field 'model.name':")


def test_spec_field_that_does_not_fit_the_data_exits_2_naming_file_and_field(cli, tmp_path: Path) -> None:
    bids, table = make_study(tmp_path, n=8, p=4, seed=7)
    spec = tmp_path / "analysis.yaml"
    spec.write_text(yaml.safe_dump({"name": "x", "features": {"kind": "table", "sources": [str(table)]},
                                    "target": {"column": "group"}, "validation": {"outer": 5, "permutations": 0}}))
    code, _, err = cli("mvpa", bids, tmp_path / "out", "group", "--spec", spec, "--device", "cpu")
    assert code == 2 and "Traceback" not in err
    assert f"{spec}: field 'validation.outer': 5 folds but the smallest class has 4 participants" in err
