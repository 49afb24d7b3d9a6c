"""``neurolearn mvpa``: pattern analysis of participants (group) or decoding within each participant (participant)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from neurolearn_cli.cli.options import panel_fields, with_config_options
from neurolearn_cli.config import MVPA_OPTIONS, AnalysisLevel

#: The RunConfig options the command offers: its own panel's and a few shared ones (the rest are preprocessing's).
OFFERED = (*panel_fields(MVPA_OPTIONS), "participant_label", "seed", "device", "nprocs")
GROUP_ONLY = ("features", "target", "model", "cv", "inner_cv", "group_by", "derivatives")


def mvpa_command(
    ctx: typer.Context,
    bids_dir: Annotated[Path, typer.Argument(metavar="BIDS_DIR", help="BIDS dataset (its dataset_description.json and participants.tsv "
                                             "are enough for tables).", show_default=False)],
    output_dir: Annotated[Path, typer.Argument(metavar="OUTPUT_DIR", help="Derivatives folder; results go to OUTPUT_DIR/mvpa/<name>/.", show_default=False)],
    analysis_level: Annotated[AnalysisLevel, typer.Argument(metavar="ANALYSIS_LEVEL", help="group (between participants) or participant "
                                                            "(decoding within each, spec mode: within).", show_default=False)],
    mask: Annotated[Path | None, typer.Option(help="Participant level: mask image on the BOLD's space (replaces the spec's mask).", rich_help_panel=MVPA_OPTIONS)] = None,
    **options: Any,
) -> None:
    """Classify or regress participants (group), or decode conditions within each participant (participant)."""
    from neurolearn_cli.config import build_config
    from neurolearn_cli.engine.threads import configure_threads
    from neurolearn_cli.errors import UsageError
    from neurolearn_cli.mvpa.shorthand import spec_from_config
    from neurolearn_cli.run import execute

    level = AnalysisLevel(analysis_level)
    values = {"bids_dir": bids_dir, "output_dir": output_dir, "analysis_level": level, "stages": ["mvpa"], **options}
    config = build_config(values, set(values), None)  # validates every option; unset ones keep their defaults
    if level is AnalysisLevel.participant:
        given = [f"--{name.replace('_', '-')}" for name in GROUP_ONLY if options[name]]
        if given:
            raise UsageError(f"{given[0]} is a group-level option (participant level reads everything from --spec)")
        if config.spec is None:
            raise UsageError("mvpa participant needs --spec (a decoding spec with mode: within)")
        configure_threads(config.nprocs)  # before torch loads
        _decode(config.spec, bids_dir, output_dir, mask=mask, participants=list(config.participant_label) or None,
                permutations=config.permutations, name=config.name, seed=options["seed"], device=config.device,
                nprocs=config.nprocs)
        return
    if mask is not None or config.participant_label:
        raise UsageError("--mask and --participant-label are participant-level options")
    spec_from_config(config)  # bad options stop here, before any work; the analysis logs its result
    raise typer.Exit(execute(config, argv=(ctx.find_root().obj or {}).get("argv", [])))


def _decode(spec: Path, bids_dir: Path, output_dir: Path, *, mask: Path | None, participants: list[str] | None,
            permutations: int | None, name: str | None, seed: int | None, device: str, nprocs: int) -> None:
    """Decode within each participant from a ``mode: within`` spec and print one line per participant."""
    from neurolearn_cli.engine.device import configure_determinism
    from neurolearn_cli.errors import SpecError
    from neurolearn_cli.messages import format_p
    from neurolearn_cli.mvpa.decoding.run import run_decoding
    from neurolearn_cli.mvpa.decoding.spec import load_decoding_spec

    decoding = load_decoding_spec(spec, mask=mask, permutations=permutations, name=name, seed=seed)
    configure_determinism(decoding.seed)  # once for this process, as the runner does for the other commands
    try:
        results = run_decoding(decoding, bids_dir, output_dir, participants=participants, device=device, n_jobs=nprocs)
    except SpecError as error:
        raise error.located(spec) from None
    for result in results:
        r = result.results
        p = "" if r["permutation_p"] is None else f", permutation p = {format_p(r['permutation_p'])}"
        score = "undefined" if r["mean"] is None else f"{r['mean']:.3f}"
        typer.echo(f"{decoding.name} {r['participant']}: {r['metric']} = {score}{p} "
                   f"({r['n_samples']} {r['unit']}s, {r['cv']}); outputs in {result.folder}")


with_config_options(mvpa_command, OFFERED)
