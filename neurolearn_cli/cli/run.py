"""The BIDS-App command: the bare form and the ``smri``, ``fmri`` and ``qc`` subcommands.

All of them share one signature, so the bare form accepts every stage's
options; the subcommand's name fixes the stage. The command only parses,
builds the :class:`~neurolearn_cli.config.RunConfig` and hands it to
:func:`neurolearn_cli.run.execute`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurolearn_cli.cli.clickcompat import ParameterSource
from neurolearn_cli.config import AnalysisLevel

STAGE_HELP = {
    "smri": "Structural preprocessing: bias correction, segmentation, brain mask, MNI normalization, morphometry.",
    "fmri": "Functional preprocessing: reference, motion, slice timing, distortion correction, resampling, confounds.",
    "qc": "Image-quality metrics and HTML reports (participant), group tables and reports with outliers (group).",
}

SELECT = "Selection"
RESOURCES = "Resources and reproducibility"
BEHAVIOUR = "Run behaviour"
STAGE_OPTIONS = "smri / fmri options"
MVPA_OPTIONS = "mvpa options (group level)"


def bids_app_command(
    ctx: typer.Context,
    bids_dir: Annotated[Path, typer.Argument(help="Root of the BIDS dataset.", show_default=False)],
    output_dir: Annotated[Path, typer.Argument(help="Where derivatives and reports are written.", show_default=False)],
    analysis_level: Annotated[AnalysisLevel, typer.Argument(help="participant or group.", show_default=False)],
    stages: Annotated[list[str] | None, typer.Option(help="Stages to run (bare form only), e.g. smri,fmri,qc.", rich_help_panel=SELECT)] = None,
    participant_label: Annotated[list[str] | None, typer.Option(help="Participant labels, with or without sub-.", rich_help_panel=SELECT)] = None,
    session_label: Annotated[list[str] | None, typer.Option(help="Session labels to process.", rich_help_panel=SELECT)] = None,
    task: Annotated[list[str] | None, typer.Option(help="Tasks to process.", rich_help_panel=SELECT)] = None,
    bids_filter_file: Annotated[Path | None, typer.Option(help="JSON file of BIDS entity filters (fMRIPrep format).", rich_help_panel=SELECT)] = None,
    skip_bids_validation: Annotated[bool, typer.Option("--skip-bids-validation", help="Skip dataset validation.", rich_help_panel=SELECT)] = False,
    bids_database_dir: Annotated[Path | None, typer.Option(help="Cache directory for the pybids index.", rich_help_panel=SELECT)] = None,
    work_dir: Annotated[Path | None, typer.Option("--work-dir", "-w", help="Scratch directory.", rich_help_panel=RESOURCES)] = None,
    nprocs: Annotated[int | None, typer.Option(help="Participants processed at once.", rich_help_panel=RESOURCES)] = None,
    omp_nthreads: Annotated[int | None, typer.Option(help="Torch threads per participant.", rich_help_panel=RESOURCES)] = None,
    mem_gb: Annotated[float | None, typer.Option(help="Memory budget in GB.", rich_help_panel=RESOURCES)] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.", rich_help_panel=RESOURCES)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).", rich_help_panel=RESOURCES)] = None,
    output_spaces: Annotated[list[str] | None, typer.Option(help="Output spaces, e.g. MNI152NLin2009aSym:res-2 T1w.", rich_help_panel=BEHAVIOUR)] = None,
    resume: Annotated[bool | None, typer.Option("--resume/--no-resume", help="Keep outputs made from the same inputs and settings.", rich_help_panel=BEHAVIOUR)] = None,
    stop_on_first_crash: Annotated[bool, typer.Option("--stop-on-first-crash", help="Stop at the first failing participant.", rich_help_panel=BEHAVIOUR)] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit.", rich_help_panel=BEHAVIOUR)] = False,
    config_file: Annotated[Path | None, typer.Option(help="TOML or YAML file with the same options (the command line wins).", rich_help_panel=BEHAVIOUR)] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (repeatable).", rich_help_panel=BEHAVIOUR)] = 0,
    quiet: Annotated[int, typer.Option("--quiet", "-q", count=True, help="Less log output (repeatable).", rich_help_panel=BEHAVIOUR)] = 0,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.", rich_help_panel=BEHAVIOUR)] = False,
    atlas: Annotated[Path | None, typer.Option(help="Parcellation in template space (default: the bundled one).", rich_help_panel=STAGE_OPTIONS)] = None,
    atlas_labels: Annotated[Path | None, typer.Option(help="Label table (TSV: index, name) for --atlas.", rich_help_panel=STAGE_OPTIONS)] = None,
    dummy_scans: Annotated[int | None, typer.Option(help="Non-steady-state volumes (default: detected).", rich_help_panel=STAGE_OPTIONS)] = None,
    ignore: Annotated[list[str] | None, typer.Option(help="Skip fieldmaps, slicetiming and/or sbref.", rich_help_panel=STAGE_OPTIONS)] = None,
    slice_time_ref: Annotated[float | None, typer.Option(help="Slice-timing reference, fraction of TR (0.5).", rich_help_panel=STAGE_OPTIONS)] = None,
    fd_spike_threshold: Annotated[float | None, typer.Option(help="FD threshold for motion outliers, mm (0.5).", rich_help_panel=STAGE_OPTIONS)] = None,
    dvars_spike_threshold: Annotated[float | None, typer.Option(help="std DVARS threshold for motion outliers (1.5).", rich_help_panel=STAGE_OPTIONS)] = None,
    spec: Annotated[Path | None, typer.Option(help="mvpa analysis spec (YAML).", rich_help_panel=MVPA_OPTIONS)] = None,
    features: Annotated[str | None, typer.Option(help="morph, connectivity, iqm or a TSV/CSV path.", rich_help_panel=MVPA_OPTIONS)] = None,
    target: Annotated[str | None, typer.Option(help="participants.tsv column to predict.", rich_help_panel=MVPA_OPTIONS)] = None,
    model: Annotated[str | None, typer.Option(help="Model name, e.g. svm, ridge, svr.", rich_help_panel=MVPA_OPTIONS)] = None,
    cv: Annotated[str | None, typer.Option(help="Outer folds K, or logo.", rich_help_panel=MVPA_OPTIONS)] = None,
    group_by: Annotated[str | None, typer.Option(help="Column whose groups folds never split.", rich_help_panel=MVPA_OPTIONS)] = None,
    permutations: Annotated[int | None, typer.Option(help="Permutations of the outer score (100).", rich_help_panel=MVPA_OPTIONS)] = None,
    name: Annotated[str | None, typer.Option(help="Analysis folder name.", rich_help_panel=MVPA_OPTIONS)] = None,
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
        if stages:
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
