"""``neurolearn project init|export|pool``: a collaborative project's three file-based steps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

project_app = typer.Typer(
    name="project", no_args_is_help=True, rich_markup_mode="rich",
    help="Collaborative projects: define the local workflow (init), export a site's bundle (export), "
         "pool the sites' bundles and run the analyses (pool).")


def init_command(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to write project.yaml and README.md in.",
                                           show_default=False)],
    name: Annotated[str, typer.Option(help="Project name (letters, digits, ., - and _).", show_default=False)],
) -> None:
    """Write DIR/project.yaml (every workflow option pinned to today's default) and a README for the sites."""
    from neurolearn_cli.project.init import init_project

    path = init_project(folder, name)
    typer.echo(f"project '{name}' written to {path}; edit it, then send it to every site")


def export_command(
    project: Annotated[Path, typer.Argument(metavar="PROJECT", help="The project.yaml.", show_default=False)],
    bids_dir: Annotated[Path, typer.Argument(metavar="BIDS_DIR", help="The site's BIDS dataset (its participants.tsv).",
                                             show_default=False)],
    output_dir: Annotated[Path, typer.Argument(metavar="OUTPUT_DIR", help="The site's outputs of the run with --project.",
                                               show_default=False)],
    site: Annotated[str, typer.Option(help="The site's name in the pool.", show_default=False)],
    out: Annotated[Path, typer.Option(help="Bundle to write: a folder, or one file ending in .tar.gz.",
                                      show_default=False)],
    keep_ids: Annotated[bool, typer.Option("--keep-ids", help="Share the participant IDs as they are (default: keyed-hash "
                                                "pseudonyms, key kept in OUTPUT_DIR/logs/project/).")] = False,
    participant_label: Annotated[list[str] | None, typer.Option(help="Export only these participants (with or "
                                                                     "without sub-; default: all of participants.tsv).",
                                                                show_default=False)] = None,
) -> None:
    """Export the site's bundle: feature tables, shared columns, QC table and a checksummed manifest."""
    from neurolearn_cli.project.export import export_bundle
    from neurolearn_cli.project.model import load_project

    manifest = export_bundle(load_project(project), project, bids_dir, output_dir, site, out, keep_ids=keep_ids,
                             labels=participant_label)
    listed = ", ".join(f"{len(ids)} {state}" for state, ids in manifest.not_done.items())
    typer.echo(f"site {site}: {manifest.participants} participants exported to {out}"
               + (f" ({listed}: listed in qc.tsv, without features)" if listed else ""))


def pool_command(
    project: Annotated[Path, typer.Argument(metavar="PROJECT", help="The project.yaml.", show_default=False)],
    bundles: Annotated[list[Path], typer.Argument(metavar="BUNDLE...", help="The sites' bundles.", show_default=False)],
    out: Annotated[Path, typer.Option(help="Pool folder to write (absent, empty, or a previous pool).",
                                      show_default=False)],
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N, for the torch models.")] = "auto",
    nprocs: Annotated[int, typer.Option(min=1, help="Processes for the folds and permutations.")] = 1,
) -> None:
    """Verify the bundles (any bad one: exit 2, nothing written), pool them, run the analyses, write the report."""
    from neurolearn_cli.engine.device import configure_determinism
    from neurolearn_cli.logs import setup_logging
    from neurolearn_cli.project.pool import pool_project

    setup_logging()
    configure_determinism(0)
    folder = pool_project(project, bundles, out, device=device, n_jobs=nprocs)
    typer.echo(f"pooled {len(bundles)} bundles into {folder}; report: {folder / 'report.html'}")


#: The subcommands of ``neurolearn project`` (registered by :mod:`neurolearn_cli.cli.app`, which guards them).
COMMANDS: dict[str, Callable[..., Any]] = {"init": init_command, "export": export_command, "pool": pool_command}
