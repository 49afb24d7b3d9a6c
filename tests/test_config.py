"""RunConfig: validation, defaults, config files, command-line precedence."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from neurolearn_cli.config import AnalysisLevel, RunConfig, build_config
from neurolearn_cli.errors import InputError, UsageError


def base(tmp_path: Path, **extra) -> dict:
    return {"bids_dir": tmp_path / "bids", "output_dir": tmp_path / "out", "analysis_level": "participant", **extra}


def test_labels_lose_prefixes_and_duplicates(tmp_path):
    config = RunConfig(**base(tmp_path, participant_label=["sub-01", "01", "02"], session_label=["ses-a"], task=["task-rest"]))
    assert config.participant_label == ("01", "02")
    assert config.session_label == ("a",)
    assert config.task == ("rest",)


def test_default_stages_per_level(tmp_path):
    assert RunConfig(**base(tmp_path)).selected_stages == ("smri", "fmri", "qc")
    group = RunConfig(**base(tmp_path, analysis_level="group"))
    assert group.selected_stages == ("qc",)
    assert RunConfig(**base(tmp_path, analysis_level="group", target="age")).selected_stages == ("qc", "mvpa")
    assert RunConfig(**base(tmp_path, stages=["qc"])).selected_stages == ("qc",)


def test_unset_list_options_keep_their_defaults(tmp_path):
    config = build_config(base(tmp_path, output_spaces=[], participant_label=(), task=None), set(), None)
    assert [str(space) for space in config.output_spaces] == ["MNI152NLin2009aSym:res-2", "T1w"]
    assert config.participant_label == ()


def test_config_is_frozen_and_forbids_extras(tmp_path):
    config = RunConfig(**base(tmp_path))
    with pytest.raises(ValidationError, match="frozen"):
        config.seed = 3  # type: ignore[misc]
    with pytest.raises(UsageError, match="unknown option --colour"):
        build_config({**base(tmp_path), "colour": "red"}, set(), None)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"nprocs": 0}, "--nprocs"),
        ({"device": "tpu"}, "--device"),
        ({"stages": ["smri", "dwi"]}, "--stages: unknown stage"),
        ({"ignore": ["sdc"]}, "--ignore: unknown value"),
        ({"slice_time_ref": 2.0}, "--slice-time-ref"),
    ],
)
def test_bad_values_name_the_option(tmp_path, extra, message):
    with pytest.raises(UsageError, match=message):
        build_config(base(tmp_path, **extra), set(), None)


def test_output_must_differ_from_input(tmp_path):
    with pytest.raises(UsageError, match="is the BIDS directory"):
        build_config({**base(tmp_path), "output_dir": tmp_path / "bids"}, set(), None)
    with pytest.raises(UsageError, match="not under derivatives"):
        build_config({**base(tmp_path), "output_dir": tmp_path / "bids" / "out"}, set(), None)
    config = build_config({**base(tmp_path), "output_dir": tmp_path / "bids" / "derivatives" / "nl"}, set(), None)
    assert config.output_dir.name == "nl"


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_config_file_fills_in_and_command_line_wins(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    if suffix == ".toml":
        path.write_text('seed = 7\nnprocs = 3\nparticipant-label = ["01"]\n')
    else:
        path.write_text("seed: 7\nnprocs: 3\nparticipant_label: ['01']\n")
    values = base(tmp_path, seed=11, nprocs=1)
    config = build_config(values, explicit={"seed", "bids_dir", "output_dir", "analysis_level"}, config_file=path)
    assert config.seed == 11  # typed on the command line
    assert config.nprocs == 3  # from the file
    assert config.participant_label == ("01",)
    assert config.analysis_level is AnalysisLevel.participant


def test_bad_config_files(tmp_path):
    with pytest.raises(InputError, match="config file not found"):
        build_config(base(tmp_path), set(), tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("seed = = 1")
    with pytest.raises(InputError, match="cannot parse"):
        build_config(base(tmp_path), set(), broken)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("sed: 1\n")
    with pytest.raises(UsageError, match=r"unknown option --sed in .*unknown.yaml"):
        build_config(base(tmp_path), set(), unknown)


def test_bids_filter_file(tmp_path):
    good = tmp_path / "filters.json"
    good.write_text('{"t1w": {"acquisition": "tfl"}}')
    config = build_config(base(tmp_path, bids_filter_file=good), set(), None)
    assert config.bids_filters == {"t1w": {"acquisition": "tfl"}}
    bad = tmp_path / "bad.json"
    bad.write_text('["t1w"]')
    with pytest.raises(InputError, match="bad.json"):
        build_config(base(tmp_path, bids_filter_file=bad), set(), None)
