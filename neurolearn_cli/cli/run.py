"""The BIDS-App command: the bare form and the ``smri``, ``fmri`` and ``qc`` subcommands.

All of them share one signature, so the bare form accepts every stage's
options; the subcommand's name fixes the stage. The command only parses,
builds the :class:`~neurolearn_cli.config.RunConfig` and hands it to
:func:`neurolearn_cli.run.execute`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from neurolearn_cli.cli.clickcompat import ParameterSource
from neurolearn_cli.cli.options import with_config_options
from neurolearn_cli.config import AnalysisLevel

STAGE_HELP = {
    "smri": "Structural preprocessing: bias correction, segmentation, brain mask, MNI normalization, morphometry.",
    "fmri": "Functional preprocessing: reference, motion, slice timing, distortion correction, resampling, confounds.",
    "qc": "Image-quality metrics and HTML reports (participant), group tables and reports with outliers (group).",
}

BEHAVIOUR = "Run behaviour"


def bids_app_command(
    ctx: typer.Context,
    bids_dir: Annotated[Path, typer.Argument(help="Root of the BIDS dataset.", show_default=False)],
    output_dir: Annotated[Path, typer.Argument(help="Where derivatives and reports are written.", show_default=False)],
    analysis_level: Annotated[AnalysisLevel, typer.Argument(help="participant or group.", show_default=False)],
    config_file: Annotated[Path | None, typer.Option(help="TOML or YAML file with the same options (the command line wins).", rich_help_panel=BEHAVIOUR)] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (repeatable).", rich_help_panel=BEHAVIOUR)] = 0,
    quiet: Annotated[int, typer.Option("--quiet", "-q", count=True, help="Less log output (repeatable).", rich_help_panel=BEHAVIOUR)] = 0,
    **options: Any,
) -> None:
    """Run the BIDS-App stages on BIDS_DIR, writing derivatives to OUTPUT_DIR."""
    from neurolearn_cli.config import build_config
    from neurolearn_cli.errors import UsageError
    from neurolearn_cli.run import execute

    values = dict(ctx.params)
    values.pop("config_file")
    values["verbosity"] = values.pop("verbose") - values.pop("quiet")
    explicit = {
        key for key in ctx.params
        if ctx.get_parameter_source(key) not in (ParameterSource.DEFAULT, None)
    }
    if ctx.info_name in STAGE_HELP:
        if options["stages"]:
            raise UsageError(f"--stages is for the bare form; 'neurolearn {ctx.info_name}' runs the {ctx.info_name} stage")
        values["stages"] = [ctx.info_name]
        explicit.add("stages")
    if "verbose" in explicit or "quiet" in explicit:
        explicit.add("verbosity")
    for key in ("bids_dir", "output_dir", "analysis_level"):
        explicit.add(key)
    config = build_config(values, explicit, config_file)
    code = execute(config, argv=(ctx.find_root().obj or {}).get("argv", []))
    raise typer.Exit(code)


with_config_options(bids_app_command)
