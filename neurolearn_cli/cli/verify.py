"""``neurolearn verify OUTPUT_DIR [--against OTHER]``: reproducibility check for CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def verify_command(
    output_dir: Annotated[Path, typer.Argument(help="A neurolearn derivatives directory.", show_default=False)],
    against: Annotated[Path | None, typer.Option(help="Another run's output directory to compare with.")] = None,
) -> None:
    """Check derivatives against their recorded hashes (exit 0 all match, 1 differences, 2 bad usage).

    A temporary file of an interrupted write, left anywhere, counts as a difference.
    """
    from neurolearn_cli.verify import verify

    report = verify(output_dir, against)
    found = (("changed", report.changed), ("missing", report.missing), ("extra", report.extra),
             ("temporary file left by an interrupted write", report.temporary))
    for label, paths in found:
        for path in paths:
            typer.echo(f"{label}: {path}")
    reference = against if against is not None else "recorded manifest"
    if report.ok:
        typer.echo(f"all {report.checked} files match the {reference}")
        return
    count = sum(len(paths) for _, paths in found)
    typer.echo(f"{count} difference(s) against the {reference}", err=True)
    raise typer.Exit(1)
