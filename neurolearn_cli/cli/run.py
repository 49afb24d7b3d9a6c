"""The BIDS-App command: the bare form and the ``smri``, ``fmri`` and ``qc`` subcommands.

The bare form accepts every stage's options and both analysis levels; a
subcommand offers only the options its stage reads and the levels it has
(:func:`stage_command`), and its name fixes the stage. The command only
parses, builds the :class:`~neurolearn_cli.config.RunConfig` and hands it to
:func:`neurolearn_cli.run.execute`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from neurolearn_cli.cli.clickcompat import ParameterSource
from neurolearn_cli.cli.options import option_fields, panel_fields, with_config_options
from neurolearn_cli.config import GROUP_STAGES, MVPA_OPTIONS, PARTICIPANT_STAGES, AnalysisLevel

STAGE_HELP = {
    "smri": "Structural preprocessing: bias correction, segmentation, brain mask, MNI normalization, morphometry.",
    "fmri": "Functional preprocessing: reference, motion, slice timing, distortion correction, resampling, confounds.",
    "qc": "Image-quality metrics and HTML reports (participant), group tables and reports with outliers (group).",
}

BEHAVIOUR = "Run behaviour"

#: Options only the functional stage (and qc, which reads its outputs and may run it first) reads
#: (smri reads ``--output-spaces`` too: it writes its outputs in the TemplateFlow templates named there).
FMRI_ONLY = frozenset({"task", "dummy_scans", "ignore", "slice_time_ref", "fd_spike_threshold",
                       "dvars_spike_threshold"})
#: Options only the mvpa stage reads: those of its help panel.
MVPA_ONLY = frozenset(panel_fields(MVPA_OPTIONS))
#: Per stage subcommand, the options it does not offer; ``--stages`` is the bare form's.
NOT_OFFERED = {
    "smri": FMRI_ONLY | MVPA_ONLY | {"stages"},
    "fmri": MVPA_ONLY | {"stages"},
    "qc": MVPA_ONLY | {"stages"},
}


def bids_app_command(
    ctx: typer.Context,
    bids_dir: Annotated[Path, typer.Argument(metavar="BIDS_DIR", help="Root of the BIDS dataset.", show_default=False)],
    output_dir: Annotated[Path, typer.Argument(metavar="OUTPUT_DIR", help="Where derivatives and reports are written.",
                                               show_default=False)],
    analysis_level: Annotated[AnalysisLevel, typer.Argument(metavar="ANALYSIS_LEVEL", help="participant or group.",
                                                            show_default=False)],
    config_file: Annotated[Path | None, typer.Option(help="TOML or YAML file with the same options (the command line wins).", rich_help_panel=BEHAVIOUR)] = None,
    project: Annotated[Path | None, typer.Option(help="A collaborative project's project.yaml: run exactly its local workflow (an option that contradicts it is an error).", rich_help_panel=BEHAVIOUR)] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (repeatable).", rich_help_panel=BEHAVIOUR, show_default=False)] = 0,
    quiet: Annotated[int, typer.Option("--quiet", "-q", count=True, help="Less log output (repeatable).", rich_help_panel=BEHAVIOUR, show_default=False)] = 0,
    **options: Any,
) -> None:
    """Run the BIDS-App stages on BIDS_DIR, writing derivatives to OUTPUT_DIR."""
    from neurolearn_cli.config import build_config
    from neurolearn_cli.run import execute

    values = dict(ctx.params)
    values.pop("config_file")
    values.pop("project")
    values["verbosity"] = values.pop("verbose") - values.pop("quiet")
    values["analysis_level"] = AnalysisLevel(analysis_level.value)
    explicit = {
        key for key in ctx.params
        if ctx.get_parameter_source(key) not in (ParameterSource.DEFAULT, None)
    }
    if ctx.info_name in STAGE_HELP:  # a stage's command has no --stages: its name is the stage
        values["stages"] = [ctx.info_name]
        explicit.add("stages")
    if "verbose" in explicit or "quiet" in explicit:
        explicit.add("verbosity")
    for key in ("bids_dir", "output_dir", "analysis_level"):
        explicit.add(key)
    config = build_config(values, explicit, config_file)
    if project is not None:
        from neurolearn_cli.config import read_config_file
        from neurolearn_cli.project.model import load_project
        from neurolearn_cli.project.pin import pin_config, record_run

        pinned = load_project(project)
        given = explicit | (set(read_config_file(config_file)) if config_file is not None else set())
        config = pin_config(config, pinned, project, given)
    code = execute(config, argv=(ctx.find_root().obj or {}).get("argv", []))
    if project is not None and not config.dry_run and config.analysis_level is AnalysisLevel.participant:
        record_run(config, pinned, project)
    raise typer.Exit(code)


def stage_levels(stage: str) -> list[AnalysisLevel]:
    """The analysis levels at which ``stage`` runs."""
    return [level for level in AnalysisLevel
            if stage in (PARTICIPANT_STAGES if level is AnalysisLevel.participant else GROUP_STAGES)]


def stage_command(stage: str | None) -> Callable[..., Any]:
    """The BIDS-App command of ``stage`` (None: the bare form, with every option and both levels).

    A stage's command offers only the options its stage reads and takes only
    the analysis levels it has, so its ``--help`` lists nothing it ignores.
    """

    @functools.wraps(bids_app_command)
    def command(*args: Any, **kwargs: Any) -> None:
        bids_app_command(*args, **kwargs)

    levels = list(AnalysisLevel) if stage is None else stage_levels(stage)
    choice = Enum(f"{stage or 'Any'}Level", {level.value: level.value for level in levels}, type=str)  # type: ignore[misc]
    named = " or ".join(level.value for level in levels)
    argument = typer.Argument(metavar="ANALYSIS_LEVEL", show_default=False,
                              help=f"{named} (the only level of {stage})." if len(levels) == 1 else f"{named}.")
    signature = inspect.signature(bids_app_command, eval_str=True)
    parameters = [p.replace(annotation=Annotated[choice, argument]) if p.name == "analysis_level" else p
                  for p in signature.parameters.values()]
    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    names = None if stage is None else [name for name in option_fields() if name not in NOT_OFFERED[stage]]
    return with_config_options(command, names)
