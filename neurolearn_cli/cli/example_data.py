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
    site: Annotated[str | None, typer.Option(show_default="siteA and siteB in turn", help="Put every participant "
                                             "at this site (letters and digits), with its own simulated scanner and "
                                             "its own participants.")] = None,
    site_effect: Annotated[float, typer.Option(min=0.0, max=5.0, help="How much --site's scanner (intensity scale, "
                                               "contrast, noise, bias, grey matter) departs from siteA's.")] = 1.0,
) -> None:
    """Write a small, realistic BIDS dataset simulated from nilearn's bundled MNI152 template."""
    from neurolearn_cli.example_data import write_example_dataset
    from neurolearn_cli.logs import setup_logging

    setup_logging()
    path = write_example_dataset(bids_dir, participants=participants, seed=seed, bold_participants=bold_participants,
                                 site=site, site_effect=site_effect)
    typer.echo(f"example dataset with {participants} participants written to {path}")
