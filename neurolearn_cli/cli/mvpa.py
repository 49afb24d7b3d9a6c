"""``neurolearn mvpa``: pattern analysis of participants (group) or decoding within each participant (participant)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from neurolearn_cli.config import AnalysisLevel

SPEC = "Analysis"
RUN = "Resources and reproducibility"


def mvpa_command(
    ctx: typer.Context,
    bids_dir: Annotated[Path, typer.Argument(help="BIDS dataset (its dataset_description.json and participants.tsv "
                                             "are enough for tables).", show_default=False)],
    output_dir: Annotated[Path, typer.Argument(help="Derivatives folder; results go to OUTPUT_DIR/mvpa/<name>/.", show_default=False)],
    analysis_level: Annotated[AnalysisLevel, typer.Argument(help="group (between participants) or participant "
                                                            "(decoding within each, spec mode: within).", show_default=False)],
    spec: Annotated[Path | None, typer.Option(help="Analysis spec (YAML); options below override its fields.", rich_help_panel=SPEC)] = None,
    features: Annotated[str | None, typer.Option(help="morph, connectivity, iqm, or a TSV/CSV path with participant_id.", rich_help_panel=SPEC)] = None,
    target: Annotated[str | None, typer.Option(help="participants.tsv column to predict.", rich_help_panel=SPEC)] = None,
    model: Annotated[str | None, typer.Option(help="svm, logistic, ridge, lasso, elasticnet, svr, rf, knn, lda, mlp or torch-linear.", rich_help_panel=SPEC)] = None,
    cv: Annotated[str | None, typer.Option(help="Outer folds K (default 5), logo (leave one group out) or loo.", rich_help_panel=SPEC)] = None,
    group_by: Annotated[str | None, typer.Option(help="Column (or 'site') whose groups the folds never split.", rich_help_panel=SPEC)] = None,
    permutations: Annotated[int | None, typer.Option(help="Permutations of the outer score (default 100).", rich_help_panel=SPEC)] = None,
    name: Annotated[str | None, typer.Option(help="Analysis folder name (default <target>_<model>).", rich_help_panel=SPEC)] = None,
    derivatives: Annotated[list[Path] | None, typer.Option(help="Derivative folders to read features from, one per site (default OUTPUT_DIR).", rich_help_panel=SPEC)] = None,
    mask: Annotated[Path | None, typer.Option(help="Participant level: mask image on the BOLD's space (replaces the spec's mask).", rich_help_panel=SPEC)] = None,
    participant_label: Annotated[list[str] | None, typer.Option(help="Participant level: labels to decode (default all with fmri outputs).", rich_help_panel=SPEC)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).", rich_help_panel=RUN)] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (torch models).", rich_help_panel=RUN)] = "auto",
    nprocs: Annotated[int, typer.Option(help="Processes for outer folds and permutations.", rich_help_panel=RUN)] = 1,
) -> None:
    """Classify or regress participants (group), or decode conditions within each participant (participant)."""
    from neurolearn_cli.config import build_config
    from neurolearn_cli.errors import UsageError
    from neurolearn_cli.mvpa.shorthand import build_spec
    from neurolearn_cli.run import execute

    if nprocs < 1:
        raise UsageError(f"--nprocs {nprocs}: must be at least 1")
    if AnalysisLevel(analysis_level) is AnalysisLevel.participant:
        group_only = {"--features": features, "--target": target, "--model": model, "--cv": cv,
                      "--group-by": group_by, "--derivatives": derivatives}
        given = [option for option, value in group_only.items() if value]
        if given:
            raise UsageError(f"{given[0]} is a group-level option (participant level reads everything from --spec)")
        if spec is None:
            raise UsageError("mvpa participant needs --spec (a decoding spec with mode: within)")
        _decode(spec, bids_dir, output_dir, mask=mask, participants=participant_label, permutations=permutations,
                name=name, seed=seed, device=device, nprocs=nprocs)
        return
    if mask is not None or participant_label:
        raise UsageError("--mask and --participant-label are participant-level options")
    # the spec is built here too, so that bad options stop the run before any work and the result is found
    analysis = build_spec(spec, features=features, target=target, model=model, cv=cv, group_by=group_by,
                          permutations=permutations, name=name, seed=seed, derivatives=derivatives)
    values = {"bids_dir": bids_dir, "output_dir": output_dir, "analysis_level": AnalysisLevel.group,
              "stages": ["mvpa"], "spec": spec, "features": features, "target": target, "model": model, "cv": cv,
              "group_by": group_by, "permutations": permutations, "name": name, "derivatives": derivatives,
              "seed": seed, "device": device, "nprocs": nprocs}
    code = execute(build_config(values, set(values), None), argv=(ctx.find_root().obj or {}).get("argv", []))
    if code == 0:
        folder = output_dir / "mvpa" / analysis.name
        r = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        ci = "" if r["ci95"] is None else f", CI95 {r['ci95'][0]:.3f} to {r['ci95'][1]:.3f}"
        p = "" if r["permutation_p"] is None else f", permutation p = {r['permutation_p']:.4f}"
        typer.echo(f"{analysis.name}: {r['metric']} = {r['mean']:.3f}{ci}{p} ({r['n_samples']} participants); "
                   f"outputs in {folder}")
    raise typer.Exit(code)


def _decode(spec: Path, bids_dir: Path, output_dir: Path, *, mask: Path | None, participants: list[str] | None,
            permutations: int | None, name: str | None, seed: int | None, device: str, nprocs: int) -> None:
    """Decode within each participant from a ``mode: within`` spec and print one line per participant."""
    from neurolearn_cli.engine.device import configure_determinism
    from neurolearn_cli.errors import SpecError
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
        p = "" if r["permutation_p"] is None else f", permutation p = {r['permutation_p']:.4f}"
        score = "undefined" if r["mean"] is None else f"{r['mean']:.3f}"
        typer.echo(f"{decoding.name} {r['participant']}: {r['metric']} = {score}{p} "
                   f"({r['n_samples']} {r['unit']}s, {r['cv']}); outputs in {result.folder}")
