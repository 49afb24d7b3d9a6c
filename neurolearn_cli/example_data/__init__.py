"""Simulated, download-free example BIDS dataset (``neurolearn example-data``).

T1w and task BOLD images for any number of participants, built from nilearn's
bundled MNI152 template with a synthetic head, per-participant warps, two
sites, and a patient group with regional atrophy; seeded and byte-reproducible.
"""

from neurolearn_cli.example_data.writer import write_example_dataset

__all__ = ["write_example_dataset"]
