"""``neurolearn example-data DIR``: write the bundled, download-free example dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def example_data_command(
    bids_dir: Annotated[Path, typer.Argument(help="Directory to create the BIDS dataset in.", show_default=False)],
    participants: Annotated[int, typer.Option(min=1, help="Number of participants.")] = 8,
    seed: Annotated[int, typer.Option(min=0, help="Random seed; the same seed gives identical files.")] = 0,
    bold_participants: Annotated[
        int | None,
        typer.Option(min=0, show_default="all", help="How many participants (the first ones) have a BOLD run; "
                     "the others have a T1w only."),
    ] = None,
) -> None:
    """Write a small, realistic BIDS dataset simulated from nilearn's bundled MNI152 template."""
    from neurolearn_cli.example_data import write_example_dataset
    from neurolearn_cli.logs import setup_logging

    setup_logging()
    path = write_example_dataset(bids_dir, participants=participants, seed=seed, bold_participants=bold_participants)
    typer.echo(f"example dataset with {participants} participants written to {path}")
