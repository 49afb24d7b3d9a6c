"""The spec refuses unknown or bad fields in one line, and the shorthand builds a valid spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neurolearn_cli.errors import InputError, UsageError
from neurolearn_cli.mvpa.shorthand import build_spec
from neurolearn_cli.mvpa.spec import spec_from_dict, spec_to_yaml

MINIMAL = {"name": "a", "features": {"kind": "table", "sources": ["f.tsv"]}, "target": {"column": "group"}}


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "validation": {"outer": 5, "folds": 3}}))
    with pytest.raises(InputError) as error:
        build_spec(path)
    assert str(error.value) == f"{path}: field 'validation.folds': unknown field"
    assert "\n" not in str(error.value)


def test_bad_value_is_named() -> None:
    with pytest.raises(InputError, match=r"field 'model.name'"):
        spec_from_dict({**MINIMAL, "model": {"name": "deepnet"}})
    with pytest.raises(InputError, match=r"field 'validation': .*logo needs group_by"):
        spec_from_dict({**MINIMAL, "validation": {"outer": "logo"}})
    with pytest.raises(InputError, match=r"field 'validation.outer'"):
        spec_from_dict({**MINIMAL, "validation": {"outer": 1}})


def test_spec_is_frozen_and_round_trips(tmp_path: Path) -> None:
    spec = spec_from_dict(MINIMAL)
    with pytest.raises(ValueError):
        spec.seed = 3
    path = tmp_path / "again.yaml"
    path.write_text(spec_to_yaml(spec))
    assert build_spec(path) == spec.model_copy(update={"features": spec.features.model_copy(
        update={"sources": [tmp_path / "f.tsv"]})})


def test_shorthand_defaults(tmp_path: Path) -> None:
    spec = build_spec(features=str(tmp_path / "t.tsv"), target="group", model="ridge", cv="logo",
                      group_by="site", permutations=7)
    assert spec.name == "group_ridge"
    assert spec.features.kind == "table" and spec.features.sources == [tmp_path / "t.tsv"]
    assert (spec.validation.outer, spec.validation.group_by, spec.validation.permutations) == ("logo", "site", 7)
    derived = build_spec(features="morph", target="age", derivatives=[tmp_path / "a", tmp_path / "b"])
    assert derived.features.sources == [tmp_path / "a", tmp_path / "b"] and derived.name == "age_svm"
    assert derived.validation.permutations == 100


def test_shorthand_overrides_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "seed": 4}))
    spec = build_spec(path, cv="3", seed=9)
    assert (spec.validation.outer, spec.seed, spec.name) == (3, 9, "a")
    with pytest.raises(UsageError, match="--cv"):
        build_spec(path, cv="three")
    with pytest.raises(UsageError, match="--features"):
        build_spec(target="group")
