"""Each option is declared once: the command line is generated from RunConfig's fields."""

from __future__ import annotations

import pytest
import typer

from neurolearn_cli.cli.app import app
from neurolearn_cli.cli.options import list_options, option_fields
from neurolearn_cli.config import RunConfig


def _command(name: str):
    return typer.main.get_command(app).commands[name]


def _offered(command: str) -> dict:
    return {param.name: param for param in _command(command).params if param.param_type_name == "option"}


def test_the_bare_form_offers_every_config_option_with_its_declared_help():
    options = _offered("run")
    for name in option_fields():
        field = RunConfig.model_fields[name]
        assert name in options, name
        assert options[name].help.startswith(field.description.rstrip(".")), name
        assert f"--{name.replace('_', '-')}" in options[name].opts


@pytest.mark.parametrize("stage", ["smri", "fmri", "qc"])
def test_a_stage_offers_exactly_the_options_it_reads(stage):
    """The settings a stage's resume fingerprint leaves out are the options its subcommand does not offer."""
    from neurolearn_cli.run import STAGE_UNREAD_SETTINGS

    offered = {name for name in _offered(stage) if name in RunConfig.model_fields}
    assert offered == set(option_fields()) - STAGE_UNREAD_SETTINGS[stage] - {"stages"}
    bare = _offered("run")
    for name in offered:
        assert _offered(stage)[name].help == bare[name].help, name


def test_the_cli_and_the_fingerprint_agree_on_what_only_fmri_and_mvpa_read():
    from neurolearn_cli.cli.run import FMRI_ONLY, MVPA_ONLY
    from neurolearn_cli.run import FMRI_SETTINGS, MVPA_SETTINGS

    assert FMRI_ONLY == FMRI_SETTINGS and MVPA_ONLY == MVPA_SETTINGS


def test_mvpa_offers_its_options_with_the_same_help():
    from neurolearn_cli.cli.mvpa import OFFERED

    bare = {param.name: param for param in _command("run").params}
    mvpa = {param.name: param for param in _command("mvpa").params}
    for name in OFFERED:
        assert mvpa[name].help == bare[name].help and mvpa[name].opts == bare[name].opts, name
    assert "output_spaces" not in mvpa


def test_help_shows_the_config_default():
    options = {param.name: param for param in _command("fmri").params if param.param_type_name == "option"}
    assert "(default: 0.5)" in options["fd_spike_threshold"].help
    assert "(default: MNI152NLin2009aSym:res-2 T1w)" in options["output_spaces"].help
    assert "(default: 1)" in options["nprocs"].help
    assert options["resume"].secondary_opts == ["--no-resume"] and options["work_dir"].opts == ["--work-dir", "-w"]


def test_unset_options_take_the_config_default(cli, make_bids, tmp_path, monkeypatch):
    captured = {}

    def capture(config, argv):
        captured["config"] = config
        return 0

    monkeypatch.setattr("neurolearn_cli.run.execute", capture)
    code, _, _ = cli(str(make_bids()), str(tmp_path / "out"), "participant", "--fd-spike-threshold", "0.3")
    assert code == 0
    config = captured["config"]
    defaults = RunConfig(bids_dir=config.bids_dir, output_dir=config.output_dir)
    assert config.fd_spike_threshold == 0.3
    assert config.model_copy(update={"fd_spike_threshold": defaults.fd_spike_threshold}) == defaults


def test_list_options_are_the_tuple_fields():
    assert {"--participant-label", "--output-spaces", "--ignore", "--stages"} <= list_options()
    assert "--seed" not in list_options()
